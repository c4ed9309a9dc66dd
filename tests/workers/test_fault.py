"""The fault test of spec/workers.md: four worker processes drive 1,000 conversations of
10-step runs while a separate process sends random interrupts, resumes and cancels; workers are
killed with SIGKILL at random moments and restarted (at least 20 kills), and once, mid-test,
every worker's database connection is cut. At the end every run has exactly one terminal
status, no history forked, no kept step ran again, and every command took effect once or got a
typed error."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

from interruptible import Coordinator, RunStatus
from interruptible._errors import CommandTimeoutError, InterruptibleError
from tests.runtime.support import check_journal
from tests.workers.app import MODES
from tests.workers.support import ROOT, Workers, kept_ran_again, read_ledger

RUNS = 1000
WORKERS = 4
KILLS = 20
LEASE = 1.0
STEP_SECONDS = 0.1
SEED = 20261207


def _submit(pool: Workers, problems: list[str]) -> None:
    """Request every run from a client, 50 at a time; a request not answered in time stays
    queued and is applied later (WRK-5), which the end of the test checks."""

    async def submit() -> None:
        async with pool.client(MODES, command_timeout=60.0) as client:

            async def one(n: int) -> None:
                try:
                    await client.run(f"c{n}", None, mode="ten", run_id=f"r{n}")
                except CommandTimeoutError:
                    pass
                except InterruptibleError as exc:
                    problems.append(f"run r{n} refused: {exc}")

            for first in range(0, RUNS, 50):
                await asyncio.gather(*(one(n) for n in range(first, min(first + 50, RUNS))))

    try:
        asyncio.run(submit())
    except Exception as exc:  # reported by the test, not lost in the thread
        problems.append(f"submitting failed: {type(exc).__name__}: {exc}")


def _cut_every_connection(pool: Workers) -> int:
    with psycopg.connect(pool.dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            "AND application_name LIKE 'interruptible worker%%' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _finish(pool: Workers, deadline: float) -> dict[tuple[str, str], RunStatus]:
    """Resume every interrupted run until every run has ended."""

    async def finish() -> dict[tuple[str, str], RunStatus]:
        journal = pool.journal()
        async with pool.client(MODES, command_timeout=30.0) as client:
            while True:
                runs = check_journal(journal, Coordinator(MODES)).runs
                waiting = [key for key, status in runs.items() if status is RunStatus.interrupted]
                if len(runs) == RUNS and all(
                    status in (RunStatus.completed, RunStatus.failed, RunStatus.canceled)
                    for status in runs.values()
                ):
                    return runs
                assert time.monotonic() < deadline, (
                    f"not ended in time: {Counter(s.value for s in runs.values())}, "
                    f"{RUNS - len(runs)} runs never started"
                )
                for cid, run_id in waiting:
                    # A refusal means it raced with its own end or another resume: looked at
                    # again at the next round.
                    with contextlib.suppress(InterruptibleError):
                        await client.resume_run(cid, run_id)
                await asyncio.sleep(0.5)

    return asyncio.run(finish())


def test_wrk_1_to_7_four_workers_a_thousand_runs_twenty_kills_and_a_cut(tmp_path: Path) -> None:
    """WRK-1..WRK-7 (and RT-3, RT-4, OWN-3, OWN-6) under faults: see the module docstring."""
    rng = random.Random(SEED)
    ledger = tmp_path / "ledger"
    commands_out = tmp_path / "commands"
    stop = tmp_path / "stop"
    pool = Workers(
        env={
            "INTERRUPTIBLE_TEST_LEDGER": str(ledger),
            "INTERRUPTIBLE_TEST_STEP_SECONDS": str(STEP_SECONDS),
        },
        lease=LEASE,
        limit=60,
    )
    commander: subprocess.Popen[bytes] | None = None
    problems: list[str] = []
    try:
        workers = pool.start(WORKERS)
        began = time.monotonic()
        commander = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workers.commander",
                *("--dsn", pool.dsn, "--schema", pool.schema, "--runs", str(RUNS)),
                *("--out", str(commands_out), "--stop", str(stop), "--seed", str(SEED)),
            ],
            cwd=ROOT,
        )
        submitter = threading.Thread(target=_submit, args=(pool, problems), daemon=True)
        submitter.start()
        kills = cuts = 0
        cut_connections = 0
        while kills < KILLS:
            time.sleep(rng.uniform(0.1, 0.6))
            victim = rng.choice(workers)
            pool.kill(victim)
            kills += 1
            workers.remove(victim)
            if kills == KILLS // 2:
                cut_connections = _cut_every_connection(pool)
                cuts += 1
            workers += pool.start(1)
        chaos_ended = time.monotonic()
        submitter.join(timeout=300)
        assert not submitter.is_alive(), "submitting did not end"
        submitted = time.monotonic()
        stop.touch()
        assert commander.wait(timeout=120) == 0
        runs = _finish(pool, time.monotonic() + 180)
        print(
            f"fault test: chaos {chaos_ended - began:.1f} s, submitting ended "
            f"{submitted - began:.1f} s, every run ended {time.monotonic() - began:.1f} s"
        )
        assert kills >= 20 and cuts == 1
        assert cut_connections >= 2 * (WORKERS - 1)  # each live worker: a journal, a listener
        assert problems == []

        journal = pool.journal()
        # Every run has ended, with exactly one terminal output, and no step started after
        # its kept result (RT-3, RT-4).
        facts = check_journal(journal, Coordinator(MODES))
        facts.assert_ok()
        assert len(runs) == RUNS
        # No kept step ran again, and no attempt ran twice, whatever the kills did.
        assert kept_ran_again(facts.kept, read_ledger(ledger)) == []
        assert journal.active_conversations() == []
        with psycopg.connect(pool.dsn, autocommit=True) as conn:
            s = f'"{pool.schema}"'
            # No history forked: along each conversation's sequence the writers' epochs never
            # go back, and each is an epoch of its owner history (OWN-3).
            forked = conn.execute(
                f"SELECT e.conversation_id, e.sequence FROM {s}.events AS e WHERE e.epoch < "
                f"(SELECT max(p.epoch) FROM {s}.events AS p WHERE p.conversation_id = "
                "e.conversation_id AND p.sequence < e.sequence) OR NOT EXISTS (SELECT 1 FROM "
                f"{s}.owners AS o WHERE o.conversation_id = e.conversation_id "
                "AND o.epoch = e.epoch) LIMIT 5".encode()
            ).fetchall()
            assert forked == []
            # Every command was answered, once (OWN-6), and none of their events was
            # journaled twice (applied once).
            unanswered = conn.execute(
                f"SELECT count(*) FROM {s}.commands WHERE NOT answered".encode()
            ).fetchone()
            assert unanswered == (0,)
            twice = conn.execute(
                f"SELECT k.command_id FROM {s}.commands AS k WHERE (SELECT count(*) FROM "
                f"{s}.events AS e WHERE e.conversation_id = k.conversation_id AND "
                "e.body ->> 'event_id' = k.body::jsonb ->> 'event_id') > 1 LIMIT 5".encode()
            ).fetchall()
            assert twice == []
            takeovers = Counter(
                reason
                for (reason,) in conn.execute(
                    f"SELECT reason FROM {s}.owners WHERE epoch > 1".encode()
                ).fetchall()
            )
        assert takeovers["lease_expired"] > 0, takeovers
        # Every request of the commanding process got the owner's answer or a typed error.
        sent = [line.split(" ", 4) for line in commands_out.read_text().splitlines()]
        assert len(sent) > 50
        untyped = [line for line in sent if line[3] not in ("ok", "error")]
        assert untyped == []
        outcomes = Counter((kind, outcome) for kind, _cid, _run, outcome, _rest in sent)
        assert outcomes[("interrupt", "ok")] > 0 and outcomes[("resume", "ok")] > 0, outcomes
        print(f"fault test: {len(sent)} commands {dict(outcomes)}; takeovers {dict(takeovers)}")
        print(f"fault test: runs {Counter(s.value for s in runs.values())}")
    finally:
        stop.touch()
        if commander is not None and commander.poll() is None:
            commander.kill()
            commander.wait(timeout=20)
        pool.close()
