"""Worker processes of one PostgreSQL journal (spec/workers.md): draining, kill -9, timers that
outlive their worker, a cut connection, and a client's answers and errors. Each test runs
`interruptible worker` subprocesses on a fresh schema and sends requests from this process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from interruptible import Coordinator, EffectStarted, RunStatus
from interruptible._errors import CommandTimeoutError, InterruptibleError
from interruptible._journal import PostgresJournal
from tests._postgres import POSTGRES
from tests.runtime.support import arun, check_journal, until
from tests.workers.app import MODES, TIMER_SECONDS, TOOLS
from tests.workers.support import Worker, Workers, kept_ran_again, read_ledger


def _pool(tmp_path: Path, *, step_seconds: float, lease: float) -> tuple[Workers, Path]:
    ledger = tmp_path / "ledger"
    env = {
        "INTERRUPTIBLE_TEST_LEDGER": str(ledger),
        "INTERRUPTIBLE_TEST_STEP_SECONDS": str(step_seconds),
    }
    return Workers(env=env, lease=lease), ledger


def _started(journal: PostgresJournal, cid: str, step_id: str) -> list[EffectStarted]:
    return [
        r.event
        for r in journal.read(cid)
        if isinstance(r.event, EffectStarted) and r.event.step_id == step_id
    ]


def _owner_of(journal: PostgresJournal, cid: str, workers: list[Worker]) -> Worker:
    record = journal.owner(cid)
    assert record is not None
    (owner,) = [w for w in workers if w.owner_id == record.owner_id]
    return owner


def _check(journal: PostgresJournal, ledger: Path, *, runs: int) -> dict[tuple[str, str], Any]:
    facts = check_journal(journal, Coordinator(MODES))
    facts.assert_ok()
    assert len(facts.runs) == runs
    assert kept_ran_again(facts.kept, read_ledger(ledger)) == []
    return facts.runs


def test_wrk_3_sigterm_drains_and_another_worker_takes_over_at_once(tmp_path: Path) -> None:
    """WRK-3: a worker told to stop with SIGTERM exits 0, interrupts nothing, and releases its
    lease; the other worker claims its conversation at once (reason `released`, far within the
    10 s lease), and the run completes with no kept step run again (RT-4)."""
    pool, ledger = _pool(tmp_path, step_seconds=0.2, lease=10.0)
    try:
        workers = pool.start(2)
        journal = pool.journal()

        async def scenario() -> float:
            async with pool.client(MODES) as client:
                handle = await client.run("c1", None, mode="ten", run_id="r1")
                await until(lambda: bool(_started(journal, "c1", "s3")), timeout=20)
                draining = _owner_of(journal, "c1", workers)
                began = time.monotonic()
                out = await asyncio.to_thread(pool.stop, draining)
                assert "drained" in out
                await until(lambda: journal.owner("c1").owner_id != draining.owner_id, 10)
                took = time.monotonic() - began
                final = await asyncio.wait_for(handle.wait("terminal"), 30)
                assert final.status is RunStatus.completed
                return took

        took = arun(scenario(), timeout=60)
        assert took < 3.0, f"the takeover took {took:.2f} s"
        record = journal.owner("c1")
        assert record is not None and record.reason == "released"
        runs = _check(journal, ledger, runs=1)
        assert runs == {("c1", "r1"): RunStatus.completed}
        assert not any(type(r.event).__name__ == "InterruptRequested" for r in journal.read("c1"))
    finally:
        pool.close()


def test_wrk_3_after_kill_9_the_run_moves_when_the_lease_expires(tmp_path: Path) -> None:
    """WRK-3: after SIGKILL, the other worker claims the conversation once the lease expired
    (reason `lease_expired`), within the lease plus a second, and the run completes."""
    lease = 1.5
    pool, ledger = _pool(tmp_path, step_seconds=0.2, lease=lease)
    try:
        workers = pool.start(2)
        journal = pool.journal()

        async def scenario() -> float:
            async with pool.client(MODES) as client:
                handle = await client.run("c1", None, mode="ten", run_id="r1")
                await until(lambda: bool(_started(journal, "c1", "s2")), timeout=20)
                killed = _owner_of(journal, "c1", workers)
                pool.kill(killed)
                began = time.monotonic()
                await until(lambda: journal.owner("c1").owner_id != killed.owner_id, 10)
                took = time.monotonic() - began
                final = await asyncio.wait_for(handle.wait("terminal"), 30)
                assert final.status is RunStatus.completed
                return took

        took = arun(scenario(), timeout=60)
        assert took <= lease + 1.0, f"the takeover took {took:.2f} s"
        record = journal.owner("c1")
        assert record is not None and record.reason == "lease_expired"
        _check(journal, ledger, runs=1)
    finally:
        pool.close()


def test_wrk_7_a_timer_fires_at_its_journaled_deadline_on_the_worker_that_took_over(
    tmp_path: Path,
) -> None:
    """WRK-7: the worker driving a run dies during its 2 s timer; the worker that takes the run
    over fires the timer at the deadline journaled with its first start, not 2 s after the
    takeover."""
    pool, ledger = _pool(tmp_path, step_seconds=0.01, lease=1.0)
    try:
        workers = pool.start(2)
        journal = pool.journal()

        async def scenario() -> None:
            async with pool.client(MODES) as client:
                handle = await client.run("t1", None, mode="timed", run_id="r1")
                await until(lambda: bool(_started(journal, "t1", "wait")), timeout=20)
                pool.kill(_owner_of(journal, "t1", workers))
                final = await asyncio.wait_for(handle.wait("terminal"), 30)
                assert final.status is RunStatus.completed

        arun(scenario(), timeout=60)
        first = _started(journal, "t1", "wait")[0].at
        assert len(_started(journal, "t1", "wait")) == 2  # started again by the taker
        (after,) = [row for row in read_ledger(ledger) if row[1] == "after"]
        waited = after[4] - first
        # Taken over after about 1 s (the lease); a timer restarted from then would end at 3 s.
        assert TIMER_SECONDS <= waited < TIMER_SECONDS + 0.8, waited
        record = journal.owner("t1")
        assert record is not None and record.reason == "lease_expired"
        _check(journal, ledger, runs=1)
    finally:
        pool.close()


def test_wrk_6_cutting_every_worker_connection_loses_no_run(tmp_path: Path) -> None:
    """WRK-6: with runs in flight, every database connection of both workers is terminated;
    the workers reconnect, claim back what their cut writes left unknown, and every run
    completes with one terminal status and no kept step run again (RT-3, RT-4)."""
    pool, ledger = _pool(tmp_path, step_seconds=0.02, lease=3.0)
    runs = 30
    try:
        workers = pool.start(2)

        async def submit() -> None:
            async with pool.client(MODES) as client:
                for n in range(runs):
                    await client.run(f"c{n}", None, mode="ten", run_id=f"r{n}")

        arun(submit(), timeout=60)
        with psycopg.connect(pool.dsn, autocommit=True) as admin:
            pids = [w.pid for w in workers]
            assert all(w.alive() for w in workers)
            cut = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() "
                "AND application_name LIKE 'interruptible worker%%' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert cut is not None and cut[0] >= 4  # a journal and a listener per worker
        journal = pool.journal()

        def ended() -> bool:
            state = check_journal(journal, Coordinator(MODES)).runs
            return len(state) == runs and all(
                status is RunStatus.completed for status in state.values()
            )

        arun(until(ended, timeout=60), timeout=90)
        assert [w.pid for w in workers if w.alive()] == pids  # reconnected, not restarted
        _check(journal, ledger, runs=runs)
        assert journal.active_conversations() == []
    finally:
        pool.close()


def test_wrk_5_a_client_gets_the_owners_typed_error_and_a_timeout_without_workers(
    tmp_path: Path,
) -> None:
    """WRK-5: with no worker running, a client's `run` raises `CommandTimeoutError` and stays
    queued; a worker started later claims and applies it once; a request the owner refuses
    comes back to the client as the owner's typed error."""
    pool, ledger = _pool(tmp_path, step_seconds=0.01, lease=3.0)
    try:

        async def scenario() -> None:
            async with pool.client(MODES, command_timeout=0.3) as client:
                with pytest.raises(CommandTimeoutError):
                    await client.run("c1", None, mode="ten", run_id="r1")
                pool.start(1)
                await until(lambda: _ended(client, "c1", "r1"), timeout=30)
                with pytest.raises(InterruptibleError) as caught:
                    await client.resume_run("c1", "r1")
                assert not isinstance(caught.value, CommandTimeoutError)
                assert "r1" in caught.value.message

        arun(scenario(), timeout=60)
        _check(pool.journal(), ledger, runs=1)
        assert len({row[1] for row in read_ledger(ledger)}) == 10
    finally:
        pool.close()


def _ended(client: Any, cid: str, run_id: str) -> bool:
    try:
        return client.snapshot(cid, run_id).status is RunStatus.completed
    except InterruptibleError:
        return False


def test_wrk_3_a_worker_exits_0_on_sigint_too(tmp_path: Path) -> None:
    """WRK-3: Ctrl-C (SIGINT) drains a worker as SIGTERM does: exit 0, lease released."""
    pool, _ledger = _pool(tmp_path, step_seconds=0.01, lease=10.0)
    try:
        (worker,) = pool.start(1)
        os.kill(worker.pid, signal.SIGINT)
        out, _ = worker.process.communicate(timeout=20)
        assert worker.process.returncode == 0
        assert "drained" in out
        journal = pool.journal()
        with psycopg.connect(pool.dsn, autocommit=True) as conn:
            expires = conn.execute(
                f'SELECT expires FROM "{journal.schema}".leases WHERE owner_id = %s'.encode(),
                (worker.owner_id,),
            ).fetchone()
        assert expires == (0.0,)
    finally:
        pool.close()


def test_wrk_5_a_client_publishes_nothing_and_roles_need_a_shared_journal(
    tmp_path: Path,
) -> None:
    """WRK-5: `subscribe` on a client is refused with what to do (it drives no run, so nothing
    would ever arrive); a worker or client role on a one-process journal, an unknown role and a
    limit below 1 are refused before anything is opened."""
    from interruptible._journal import MemoryJournal
    from interruptible._runtime import Runtime

    pool = Workers()
    try:

        async def scenario() -> None:
            async with pool.client(MODES) as client:
                with pytest.raises(InterruptibleError) as caught:
                    client.subscribe("c1")
                assert caught.value.reason == "client_role"
            for role in ("worker", "client"):
                with pytest.raises(ValueError, match="needs a journal that workers share"):
                    await Runtime(MemoryJournal(), modes=MODES, role=role).start()  # type: ignore[arg-type]

        arun(scenario(), timeout=30)
    finally:
        pool.close()
    with pytest.raises(ValueError, match="role must be one of"):
        Runtime(tmp_path / "j.db", role="boss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be"):
        Runtime(tmp_path / "j.db", role="worker", limit=0)


@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        (["--modes", "tests.workers.app:TOOLS"], 2, "neither a Mode"),
        (
            ["--modes", "tests.workers.app:MODES", "--tools", "tests.workers.app:MODES"],
            2,
            "not a mapping of names to callables",
        ),
        (
            ["--modes", "tests.workers.app:MODES", "--model", "tests.workers.app:TOOLS"],
            2,
            "not a chat model",
        ),
        (["--modes", "tests.workers.app:MODES", "--limit", "0"], 2, "expected at least 1"),
        (
            ["--modes", "tests.workers.app:MODES", "--dsn", "host=127.0.0.1 port=1"],
            1,
            "cannot connect to PostgreSQL",
        ),
    ],
)
def test_wrk_3_a_worker_refuses_bad_options_in_one_line(
    extra: list[str], status: int, says: str
) -> None:
    """WRK-3 (its command line, spec/cli.md CLI-1): a bad option or an unreachable server is one
    line on stderr and exit status 2 (usage) or 1 (error), never a traceback."""
    import subprocess
    import sys

    from tests.workers.support import ROOT

    dsn = ["--dsn", "host=127.0.0.1 dbname=nowhere"] if "--dsn" not in extra else []
    done = subprocess.run(
        [sys.executable, "-m", "interruptible", "worker", *dsn, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == status, done.stderr
    lines = done.stderr.strip().splitlines()
    assert says in lines[-1]
    assert "Traceback" not in done.stderr
    # One line; argparse's own refusals put the usage above it.
    assert len(lines) == 1 or lines[0].startswith("usage:")


def test_wrk_1_a_worker_forgets_idle_conversations_and_folds_them_again_for_a_command() -> None:
    """WRK-1: a worker keeps in memory only the conversations with something to drive; one it
    forgot is still its own, and a command for it (a new run, from a client) folds it again
    from the journal and is applied there, not claimed by anyone else."""
    from interruptible._runtime import Runtime

    pool = Workers()
    try:

        async def scenario() -> None:
            worker = Runtime(pool.journal(), modes=MODES, tools=TOOLS, role="worker")
            async with worker, pool.client(MODES) as client:
                first = await client.run("c1", None, mode="ten", run_id="r1")
                assert (await first.wait("terminal")).status is RunStatus.completed
                owner = worker._owner
                assert owner is not None
                # Its marker is cleared in the run's last write; then it is forgotten (here, or
                # by the worker's own sweep first).
                await until(
                    lambda: owner.evict_idle() >= 0 and "c1" not in worker.conversations(), 10
                )
                assert "c1" not in worker.conversations()
                second = await client.run("c1", None, mode="ten", run_id="r2")
                assert (await second.wait("terminal")).status is RunStatus.completed
                assert "c1" in worker.conversations()
                history = pool.journal().ownership_history("c1")
                assert [(r.epoch, r.owner_id) for r in history] == [(1, worker.owner_id)]
                assert worker.snapshot("c1", "r1").status is RunStatus.completed

        arun(scenario(), timeout=60)
        _check(pool.journal(), Path("/nonexistent-ledger"), runs=2)
    finally:
        pool.close()


def test_wrk_5_a_client_closes_while_notifications_pour_in() -> None:
    """WRK-5, WRK-4: closing a client while notifications keep arriving ends promptly, every
    time (its listening loop is cancelled even when the cancel lands as a notification wakes
    it: on Python 3.11 `asyncio.wait_for` returned instead of raising there, and the close
    hung for ever)."""
    from interruptible import RunRequested
    from interruptible._runtime import Runtime

    async def once(journal: PostgresJournal) -> None:
        client = Runtime(journal, role="client")
        await client.start()
        for n in range(20):  # no worker runs: each `c` wakes the client, unanswered
            event = RunRequested(f"e{n}", f"c{n}", f"r{n}", "m", None, None, False, time.time())
            journal.submit(f"c{n}", event, time.time())
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(client.close())
        done, _ = await asyncio.wait({closing}, timeout=5)
        if not done:  # hung: a second cancel gets it out, and the test fails
            closing.cancel()
            await asyncio.wait({closing}, timeout=5)
        assert done, "the client's close hung"

    for _ in range(5):
        journal = POSTGRES.journal()
        try:
            arun(once(journal), timeout=30)
        finally:
            journal.close()
            POSTGRES.drop_schema(journal.schema)


def test_wrk_1_a_claim_the_worker_never_took_up_is_taken_up_at_its_next_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WRK-1: a conversation the journal says a worker owns, with work, that the worker does
    not drive (its claim committed but the reply was lost with the connection; simulated by
    claiming for it from outside while its own claims are off) is taken up at the worker's
    next sweep, and its run completes; a conversation it forgot and then only read (a view)
    still gets its commands applied there."""
    from interruptible._runtime import Runtime

    monkeypatch.setenv("INTERRUPTIBLE_TEST_STEP_SECONDS", "0.2")
    pool = Workers()
    try:

        async def scenario() -> None:
            outside = pool.journal()
            ghost = Runtime(pool.journal(), modes=MODES, tools=TOOLS, role="worker")
            worker = Runtime(pool.journal(), modes=MODES, tools=TOOLS, role="worker")
            async with pool.client(MODES) as client:
                await ghost.start()
                await client.run("lost", None, mode="ten", run_id="r1")
                await until(lambda: bool(_started(outside, "lost", "s2")), timeout=20)
                await worker.start()
                owner = worker._owner
                assert owner is not None
                claim = owner.claim
                owner.claim = lambda: 0  # type: ignore[method-assign]
                await ghost.close()  # drained: released, its run still marked active
                claimed = outside.claim_work(worker.owner_id, limit=5, at=time.time())
                assert [(c.conversation_id, c.reason) for c in claimed] == [("lost", "released")]
                assert "lost" not in worker.conversations()
                await until(lambda: _ended(client, "lost", "r1"), timeout=20)
                owner.claim = claim  # type: ignore[method-assign]
                # Forgotten, then read here (a view), then a command for it.
                await until(lambda: "lost" not in worker.conversations(), timeout=10)
                assert worker.snapshot("lost", "r1").status is RunStatus.completed
                second = await client.run("lost", None, mode="ten", run_id="r2")
                assert (await second.wait("terminal")).status is RunStatus.completed
                await worker.close()
                history = outside.ownership_history("lost")
                assert [(r.epoch, r.owner_id) for r in history] == [
                    (1, ghost.owner_id),
                    (2, worker.owner_id),
                ]

        arun(scenario(), timeout=90)
        _check(pool.journal(), Path("/nonexistent-ledger"), runs=2)
    finally:
        pool.close()
