"""The load test: 500 conversations at once, 10-step runs, random interrupts and resumes."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from interruptible import InterruptibleError, RunStatus, StepClass, StepDefinition
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime
from tests.runtime.support import Ledger, arun, check_journal, pipeline

CONVERSATIONS = int(__import__("os").environ.get("LOAD_N", "500"))
STEPS = 10


def test_rt_2_five_hundred_conversations_with_random_interrupts_and_resumes(tmp_path: Path) -> None:
    """500 conversations each run a 10-step pipeline (async tools, system steps, short timers)
    at once on one SQLite journal, while a seeded random driver interrupts and resumes them;
    every run completes exactly once, no kept result is executed again, the runtime group-commits
    (far fewer commits than events), and the journal folds back to the live state (RT-2, RT-11).
    """
    db = tmp_path / "load.db"
    ledger = Ledger()
    rng = random.Random(7)

    async def work(ms: float) -> float:
        ledger.record()
        await asyncio.sleep(ms / 1000)
        return ms

    steps = []
    for n in range(STEPS):
        if n % 5 == 4:
            steps.append(StepDefinition(f"s{n}", StepClass.timer, {"seconds": 0.005}))
        elif n % 3 == 2:
            steps.append(
                StepDefinition(f"s{n}", StepClass.system, {"name": "sys", "arguments": {"n": n}})
            )
        else:
            steps.append(
                StepDefinition(
                    f"s{n}", StepClass.tool, {"name": "work", "arguments": {"ms": 1 + n % 4}}
                )
            )
    mode = pipeline("load", steps)

    async def drive(rt: Runtime, cid: str, seed: float) -> RunStatus:
        local = random.Random(seed)
        handle = await rt.run(cid, {"cid": cid}, mode="load", run_id=f"{cid}-run")
        for _ in range(local.randrange(0, 4)):
            await asyncio.sleep(local.random() * 0.05)
            try:
                snapshot = await handle.interrupt()
                await asyncio.sleep(local.random() * 0.02)
                if snapshot.status is RunStatus.interrupted:
                    await handle.resume()
            except InterruptibleError:
                pass
        return (await handle.wait()).status

    async def scenario() -> None:
        async with Runtime(
            db, modes=[mode], tools={"work": work}, functions={"sys": lambda n: n}
        ) as rt:
            started = time.perf_counter()
            statuses = await asyncio.gather(
                *(drive(rt, f"c{i}", rng.random()) for i in range(CONVERSATIONS))
            )
            # A run whose last interrupt landed after its resume is waited for again.
            for i, status in enumerate(statuses):
                while status is RunStatus.interrupted:
                    await rt.resume_run(f"c{i}", f"c{i}-run")
                    status = (await rt.wait(f"c{i}", f"c{i}-run")).status
                statuses[i] = status
            elapsed = time.perf_counter() - started
            assert set(statuses) == {RunStatus.completed}
            states = {cid: rt.state(cid) for cid in rt.conversations()}
            commits = rt.commits
        journal = SQLiteJournal(db)
        try:
            facts = check_journal(journal, rt.coordinator)
            from interruptible._journal import restore

            assert restore(journal, rt.coordinator) == states
        finally:
            journal.close()
        facts.assert_ok()
        assert len(facts.runs) == CONVERSATIONS
        assert commits * 5 < facts.events, (commits, facts.events)
        for (_cid, run_id, step_id), attempt in facts.kept.items():
            key = f"{run_id}:{step_id}:{attempt}"
            if key in ledger.keys:
                assert ledger.keys[key] == 1
                later = [
                    k
                    for k in ledger.keys
                    if k.startswith(f"{run_id}:{step_id}:") and int(k.rsplit(":", 1)[1]) > attempt
                ]
                assert not later, later
        print(f"{CONVERSATIONS} runs, {facts.events} events, {commits} commits, {elapsed:.2f}s")

    arun(scenario(), timeout=60)
