"""The embedded runtime end to end on `PostgresJournal`: runs complete, interrupt and resume,
a restart on a new connection recovers, many conversations share group commits, and the
journal's history folds clean (RT-3, RT-4). Ownership across runtimes and processes on
PostgreSQL is in test_ownership.py and test_two_processes.py (parametrized over both journals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from interruptible import Coordinator, RunStatus, StepStatus
from interruptible._journal import PostgresJournal
from interruptible._runtime import Runtime
from tests._postgres import POSTGRES
from tests.runtime.support import Ledger, arun, check_journal, pipeline, tool_step, until


class Schema:
    """One PostgreSQL schema; each runtime gets a connection of its own to it."""

    def __init__(self) -> None:
        self.name = POSTGRES.new_schema()
        self.opened: list[PostgresJournal] = []

    def journal(self) -> PostgresJournal:
        journal = POSTGRES.journal(self.name)
        self.opened.append(journal)
        return journal


@pytest.fixture
def schema() -> Iterator[Schema]:
    POSTGRES.require()
    shared = Schema()
    yield shared
    for journal in shared.opened:
        journal.close()
    POSTGRES.drop_schema(shared.name)


class Tools:
    """`step` counts its executions; `hold` blocks until released."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.release = asyncio.Event()

    def step(self) -> str:
        return self.ledger.record()

    async def hold(self) -> str:
        key = self.ledger.record()
        await self.release.wait()
        return key


MODE = pipeline("p", [tool_step("a", "step"), tool_step("b", "hold"), tool_step("c", "step")])


def options(tools: Tools, **extra: Any) -> dict[str, Any]:
    return {"modes": [MODE], "tools": {"step": tools.step, "hold": tools.hold}, **extra}


def test_rt_3_rt_4_a_run_completes_and_survives_interrupt_and_resume(schema: Schema) -> None:
    """On PostgreSQL: a run is interrupted in its held step, resumed, and completes; the kept
    step never runs again, and the journal folds to one terminal output per run."""
    tools = Tools()

    async def scenario() -> None:
        async with Runtime(schema.journal(), **options(tools)) as rt:
            await rt.run("c1", {"x": 1}, mode="p", run_id="r1")
            await until(lambda: tools.ledger.keys["r1:b:1"] == 1)
            assert (await rt.interrupt_run("c1", "pause")).status is RunStatus.interrupted
            await until(lambda: rt.snapshot("c1").steps[1].status is StepStatus.pending)
            assert (await rt.resume_run("c1", "r1")).status is RunStatus.running
            await until(lambda: tools.ledger.keys["r1:b:2"] == 1)
            tools.release.set()
            assert (await rt.wait("c1", "r1")).status is RunStatus.completed

    arun(scenario())
    assert tools.ledger.steps() == {"r1:a": 1, "r1:b": 2, "r1:c": 1}
    facts = check_journal(schema.journal(), Coordinator([MODE]))
    facts.assert_ok()
    assert facts.runs == {("c1", "r1"): RunStatus.completed}


def test_rt_8_a_runtime_reopened_on_a_new_connection_finishes_the_run(schema: Schema) -> None:
    """A runtime closed while a step runs releases its lease; a runtime on a new connection
    takes the conversation over (`released`), restarts the lost step as a new attempt, and
    finishes the run."""
    tools = Tools()

    async def scenario() -> None:
        first = Runtime(schema.journal(), **options(tools))
        await first.start()
        await first.run("c1", None, mode="p", run_id="r1")
        await until(lambda: tools.ledger.keys["r1:b:1"] == 1)
        await first.close()
        tools.release.set()
        async with Runtime(schema.journal(), **options(tools)) as second:
            assert second.recovery.taken_over == [("c1", first.owner_id, 2, "released")]
            assert (await second.wait("c1", "r1")).status is RunStatus.completed

    arun(scenario())
    assert tools.ledger.keys["r1:a:1"] == 1 and tools.ledger.keys["r1:c:1"] == 1
    assert tools.ledger.steps()["r1:b"] == 2  # at least once: the lost attempt, and its restart
    check_journal(schema.journal(), Coordinator([MODE])).assert_ok()


def test_rt_3_many_conversations_share_the_group_commits(schema: Schema) -> None:
    """200 conversations at once on one runtime (the pump writes their events by group
    commit): every run completes, each step once, and the journal folds clean."""
    tools = Tools()
    tools.release.set()

    async def scenario() -> None:
        async with Runtime(schema.journal(), **options(tools)) as rt:
            for i in range(200):
                await rt.run(f"c{i:03d}", None, mode="p", run_id=f"r{i:03d}")
            finals = await asyncio.gather(*(rt.wait(f"c{i:03d}", f"r{i:03d}") for i in range(200)))
            assert {final.status for final in finals} == {RunStatus.completed}

    arun(scenario(), timeout=60)
    assert set(tools.ledger.keys.values()) == {1} and len(tools.ledger.keys) == 600
    facts = check_journal(schema.journal(), Coordinator([MODE]))
    facts.assert_ok()
    assert facts.conversations == 200
