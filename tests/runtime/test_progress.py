"""Progress: a chatty effect cannot grow the journal faster than the runtime commits."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interruptible import (
    Coordinator,
    EffectProgress,
    EmitProgress,
    Event,
    RunStatus,
    initial_state,
)
from interruptible._journal import AppendBatch, MemoryJournal, restore
from interruptible._runtime import Runtime, current_effect
from tests.runtime.support import arun, pipeline, tool_step

REPORTS = 100_000


class _Batches(MemoryJournal):
    """A memory journal that keeps the events of each write (one write: one commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[Event]] = []

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        lasts = super().append_many(batches)
        self.writes.append([event for batch in batches for event in batch.events])
        return lasts


def _replayed_progress(coordinator: Coordinator, journal: MemoryJournal, cid: str) -> list[Any]:
    state = initial_state()
    published = []
    for record in journal.read(cid):
        outcome = coordinator.reduce(state, record.event)
        state = outcome.state
        published += [d for d in outcome.directives if isinstance(d, EmitProgress)]
    return published


def test_rt_19_100000_progress_reports_of_one_step_write_one_row(tmp_path: Path) -> None:
    """RT-19: an effect reporting progress 100,000 times between two commits leaves one
    `effect_progress` row in the SQLite journal, with the latest value and its sequence; the
    run's journal stays a handful of rows (not 100,003), and the run completes."""

    async def chatty() -> str:
        effect = current_effect()
        for i in range(REPORTS):
            effect.progress({"done": i + 1})
        return "done"

    db = tmp_path / "chatty.db"

    async def scenario() -> None:
        mode = pipeline("p", [tool_step("t", "chatty")])
        async with Runtime(db, modes=[mode], tools={"chatty": chatty}) as rt:
            handle = await rt.run("c", None, mode="p")
            assert (await handle.wait()).status is RunStatus.completed

    arun(scenario(), timeout=120)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, body FROM events ORDER BY sequence").fetchall()
    conn.close()
    types = [type_ for type_, _ in rows]
    assert types.count("effect_progress") == 1, Counter(types)
    assert len(rows) < 10, Counter(types)
    [body] = [body for type_, body in rows if type_ == "effect_progress"]
    assert f'"progress":{{"done":{REPORTS}}}' in body and f'"sequence":{REPORTS}' in body


def test_rt_19_progress_from_a_thread_is_at_most_one_row_per_effect_per_commit() -> None:
    """RT-19: progress reported from a tool's worker thread as fast as it can: each journal
    write holds at most one `effect_progress` per effect; the last value reported is journaled;
    subscribers get exactly the journaled reports (the `emit_progress` replay gives), in order;
    replay parity holds (JRN-12)."""
    reports = 20_000

    def threaded(n: int) -> int:
        effect = current_effect()
        for i in range(n):
            effect.progress(i + 1)
        return n

    journal = _Batches()
    mode = pipeline("p", [tool_step("t", "threaded", n=reports)])

    async def scenario() -> tuple[list[Any], Any, Coordinator]:
        async with Runtime(journal, modes=[mode], tools={"threaded": threaded}) as rt:
            subscription = rt.subscribe("c")
            handle = await rt.run("c", None, mode="p")
            assert (await handle.wait()).status is RunStatus.completed
            subscription.close()
            seen = [d async for d in subscription if isinstance(d, EmitProgress)]
            return seen, rt.state("c"), rt.coordinator

    seen, live_state, coordinator = arun(scenario(), timeout=120)
    for write in journal.writes:
        per_effect = Counter(e.effect_id for e in write if isinstance(e, EffectProgress))
        assert all(n == 1 for n in per_effect.values()), per_effect
    journaled = [r.event for r in journal.read("c") if isinstance(r.event, EffectProgress)]
    assert journaled and journaled[-1].progress == reports
    assert len(journaled) <= len(journal.writes)
    assert seen == _replayed_progress(coordinator, journal, "c")
    assert [d.progress for d in seen] == [e.progress for e in journaled]
    assert [d.sequence for d in seen] == sorted({d.sequence for d in seen})
    assert restore(journal, coordinator)["c"] == live_state
