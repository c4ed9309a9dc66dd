"""The journal's side of the runtime contracts: journal-first (JRN-13), restart (JRN-14)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from interruptible import (
    EffectLost,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepStatus,
    type_name,
)
from interruptible._journal import Journal, MemoryJournal, PostgresJournal, SQLiteJournal, restore
from interruptible._runtime import Runtime
from tests._postgres import POSTGRES

from ._workload import coordinator, drive_conversation


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal of each kind."""
    if request.param == "postgres":
        journal: Journal = POSTGRES.journal()
    elif request.param == "sqlite":
        journal = SQLiteJournal(tmp_path / "journal.db")
    else:
        journal = MemoryJournal()
    yield journal
    journal.close()
    if isinstance(journal, PostgresJournal):
        POSTGRES.drop_schema(journal.schema)


def test_jrn_13_a_directive_runs_only_after_its_cause_is_journaled(any_journal: Journal) -> None:
    """When a step's effect runs, the event that caused its `start_effect` is in the journal
    (memory, SQLite and PostgreSQL alike)."""
    journal = any_journal
    seen: dict[str, list[str]] = {}

    def probe(tag: str) -> str:
        seen[tag] = [type_name(record.event) for record in journal.read("c1")]
        return tag

    mode = Sequence(
        "probed",
        tuple(
            StepDefinition(tag, StepClass.tool, {"name": "probe", "arguments": {"tag": tag}})
            for tag in ("first", "second")
        ),
    )

    async def scenario() -> None:
        async with Runtime(journal, modes=[mode], tools={"probe": probe}) as runtime:
            handle = await runtime.run("c1", {"x": 1}, mode="probed", run_id="r1")
            await handle.wait()

    asyncio.run(asyncio.wait_for(scenario(), 20))
    # The first effect was caused by run_requested; the second by the first's completion.
    assert seen["first"][0] == "run_requested"
    assert seen["second"].count("effect_completed") == 1


def test_jrn_14_a_restored_journal_names_the_lost_effects_and_restarts_them() -> None:
    """After restore, an in-flight effect is visible; answering it lost starts a new attempt."""
    journal = MemoryJournal()
    driver = drive_conversation("c1")  # leaves run r3's first step running, as at a crash
    journal.append("c1", 0, driver.events)
    state = restore(journal, coordinator())["c1"]
    run = state.active_run
    assert run is not None and run.run_id == "r3"
    [lost] = run.live_steps()
    assert (lost.step_id, lost.status, lost.attempt) == ("plan", StepStatus.running, 1)

    # The restarted runtime journals the answer first (JRN-13), then reduces it.
    answer = EffectLost("restart-1", "c1", "r3", "plan", lost.effect_id or "", lost.attempt)
    last = journal.append("c1", journal.last_sequence("c1"), [answer])
    outcome = coordinator().reduce(state, answer)
    [start] = [d for d in outcome.directives if isinstance(d, StartEffect)]
    assert start.step_id == "plan" and start.attempt == 2 and start.effect_id != lost.effect_id
    assert start.idempotency_key.startswith("r3:plan:")
    restarted = outcome.state.runs["r3"].step("plan")
    assert restarted is not None and restarted.failures == lost.failures  # not counted
    assert last == len(driver.events) + 1
    assert restore(journal, coordinator())["c1"] == outcome.state
