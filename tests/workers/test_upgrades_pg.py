"""Upgrades on PostgreSQL workers (spec/upgrades.md): a run interrupted under one worker version
meets the next deploy in another worker process; the refusal crosses processes typed, and a
declared migration moves it (UPG-3, UPG-5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interruptible import DefinitionChangedError, RunStatus, StepStatus
from tests.runtime.support import arun
from tests.workers.support import Workers
from tests.workers.upgrade_app import V1, V2, V3

APP = "tests.workers.upgrade_app"
TOOLS = "tests.workers.app:TOOLS"


async def _until_gate(rt: Any) -> None:
    for _ in range(2000):
        snapshot = rt.snapshot("c", "r")
        if snapshot.steps and snapshot.steps[-1].status is StepStatus.waiting_input:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the run never reached its gate")


def test_upg_3_and_5_a_worker_of_the_next_version_refuses_or_migrates_the_run() -> None:
    """UPG-3: a worker started with a version that inserts a step before the run's position
    refuses the client's resume with `DefinitionChangedError` (its fields cross processes), and
    the run stays interrupted; UPG-5: a worker with a version that renames a done step and the
    migration for it moves the run, which then finishes without running a kept step again."""
    workers = Workers(modes=[f"{APP}:V1"], tools=[TOOLS])
    try:
        worker = workers.start()[0]

        async def first() -> None:
            async with workers.client([V1]) as rt:
                await rt.run("c", None, mode="gated", run_id="r")
                await _until_gate(rt)
                assert (await rt.interrupt_run("c", run_id="r")).status is RunStatus.interrupted

        arun(first(), timeout=60)
        workers.stop(worker)
        workers.modes = [f"{APP}:V2"]
        worker = workers.start()[0]

        async def refused() -> DefinitionChangedError:
            async with workers.client([V2]) as rt:
                with pytest.raises(DefinitionChangedError) as caught:
                    await rt.resume_run("c", "r")
                assert rt.snapshot("c", "r").status is RunStatus.interrupted
                return caught.value

        error = arun(refused(), timeout=60)
        assert (error.run_id, error.step_id, error.reason) == ("r", "approve", "definition_changed")
        assert error.run_fingerprint != error.current_fingerprint
        assert error.run_fingerprint and error.current_fingerprint
        workers.stop(worker)
        workers.modes = [f"{APP}:V3"]
        workers.migrations = [f"{APP}:MIGRATIONS"]
        workers.start()

        async def migrated() -> Any:
            async with workers.client([V3]) as rt:
                await rt.resume_run("c", "r")
                await _until_gate(rt)
                await rt.provide_input("c", "r", "approve", True)
                return await rt.wait("c", "r", until="terminal")

        final = arun(migrated(), timeout=60)
        assert final.status is RunStatus.completed
        assert sorted(final.output["outputs"]) == ["approve", "fetch", "last"]
        assert [s.attempt for s in final.steps if s.step_id == "fetch"] == [1]
    finally:
        workers.close()
