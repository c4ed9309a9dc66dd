"""The writer: journal-first, group commit, fencing of a stale writer, journal failures."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from interruptible import (
    ConversationFailedError,
    ConversationState,
    Coordinator,
    EffectStarted,
    EmitAudit,
    Event,
    JournalError,
    Mode,
    Outcome,
    RunStatus,
    StepClass,
    StepDefinition,
    StepStatus,
)
from interruptible._journal import AppendBatch, MemoryJournal, SQLiteJournal
from interruptible._runtime import Runtime, current_effect
from tests.runtime.support import arun, check_journal, pipeline, system_step, tool_step, until


class _Recording(MemoryJournal):
    """A memory journal that can be told to fail, and counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False
        self.writes = 0

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        if self.fail:
            raise JournalError("disk full")
        self.writes += 1
        return super().append_many(batches)


def test_rt_1_an_effect_starts_only_after_its_start_is_journaled() -> None:
    """Journal-first: when an executor runs, the journal already holds the `effect_started` of
    its effect (and the event that asked for it); each step costs one journal write, the next
    step's start sharing the commit of the previous step's completion."""
    journal = _Recording()
    seen: list[bool] = []

    def check() -> str:
        effect = current_effect()
        events = [r.event for r in journal.read(effect.conversation_id)]
        seen.append(
            any(isinstance(e, EffectStarted) and e.effect_id == effect.effect_id for e in events)
        )
        return "ok"

    async def scenario() -> None:
        mode = pipeline("p", [tool_step(f"s{n}", "check") for n in range(5)])
        async with Runtime(journal, modes=[mode], tools={"check": check}) as rt:
            handle = await rt.run("c", None, mode="p")
            assert (await handle.wait()).status is RunStatus.completed
            assert rt.commits == journal.writes

    arun(scenario())
    assert seen == [True] * 5
    assert journal.writes <= 6  # the run request (with s0's start), then one per step


def test_rt_1_a_failed_write_commits_nothing_and_fences_the_conversation() -> None:
    """If the journal refuses a write, the caller gets the error, the state is unchanged, no
    directive of those events is carried out (the tool never runs), and the conversation is
    fenced: later calls raise the same error until a new runtime recovers it from the journal."""
    journal = _Recording()
    calls: list[str] = []

    async def scenario() -> None:
        mode = pipeline("p", [tool_step("t", "tool")])
        async with Runtime(journal, modes=[mode], tools={"tool": lambda: calls.append("x")}) as rt:
            journal.fail = True
            with pytest.raises(JournalError, match="disk full"):
                await rt.run("c", None, mode="p", run_id="r")
            journal.fail = False
            assert rt.state("c").run_ids == frozenset()  # the refused request changed nothing
            with pytest.raises(JournalError, match="disk full"):
                await rt.interrupt_run("c", run_id="r")
            await rt.run("other", None, mode="p")  # other conversations go on

    arun(scenario())
    assert calls == ["x"]  # only the other conversation's tool
    assert journal.last_sequence("c") == 0


def test_rt_2_own_3_a_stale_owner_is_fenced_and_its_request_delivered(tmp_path: Path) -> None:
    """Two runtimes on one SQLite journal: once the second took the conversation over (the
    first's lease lapsed), the first one's write for it is refused by the epoch fence (nothing
    written, nothing carried out), the first stops driving it, and its request is delivered to
    the new owner, which answers it; the journal stays one history."""
    db = tmp_path / "two.db"
    release = asyncio.Event()

    async def tool() -> str:
        await release.wait()
        return "done"

    mode = pipeline("p", [tool_step("t", "tool"), system_step("u", "noop")])
    options: dict[str, Any] = {
        "modes": [mode],
        "tools": {"tool": tool},
        "functions": {"noop": lambda: 1},
    }

    seen: dict[str, int] = {}

    async def scenario() -> None:
        async with Runtime(db, **options) as first:
            await first.run("c", None, mode="p", run_id="r")
            await until(lambda: first.snapshot("c").steps[0].status is StepStatus.running)
            # The first owner stalls past its lease (a paused process): the second takes the
            # conversation over when it opens, and starts the tool again under its own epoch.
            first.journal.renew(first.owner_id, 1.0)
            async with Runtime(db, **options) as second:
                assert [(cid, old) for cid, old, _, _ in second.recovery.taken_over] == [
                    ("c", first.owner_id)
                ]
                # The stale owner's write is refused by the epoch fence; its request reaches
                # the new owner, which answers it.
                answered = await first.cancel_run("c", "r")
                assert answered.status is RunStatus.canceled
                release.set()
                assert (await second.wait("c", "r")).status is RunStatus.canceled
                seen["last"] = second.journal.last_sequence("c")
            assert first.snapshot("c").status is RunStatus.canceled  # its view, from the journal

    arun(scenario())
    # The stale owner wrote nothing after the takeover: one terminal output, every record in
    # sequence and under the epoch current when it was written.
    with SQLiteJournal(db) as journal:
        assert journal.last_sequence("c") == seen["last"]
        assert [r.epoch for r in journal.ownership_history("c")] == [1, 2]
        facts = check_journal(journal, Coordinator([mode]))
    facts.assert_ok()
    assert facts.runs == {("c", "r"): RunStatus.canceled}
    assert facts.rejected == {}
    conn = sqlite3.connect(db)
    epochs = [epoch for (epoch,) in conn.execute("SELECT epoch FROM events ORDER BY sequence")]
    conn.close()
    assert epochs == sorted(epochs) and epochs[-1] == 2


def test_rt_2_conversations_share_commits() -> None:
    """Group commit: 200 conversations stepping at once share journal writes (one
    `append_many` per round), far fewer writes than events."""
    journal = _Recording()

    async def scenario() -> int:
        mode = pipeline("p", [system_step(f"s{n}", "noop") for n in range(5)])
        async with Runtime(journal, modes=[mode], functions={"noop": lambda: None}) as rt:
            handles = await asyncio.gather(*(rt.run(f"c{i}", None, mode="p") for i in range(200)))
            finals = await asyncio.gather(*(h.wait() for h in handles))
            assert {f.status for f in finals} == {RunStatus.completed}
            return sum(journal.last_sequence(cid) for cid in journal.conversations())

    events = arun(scenario())
    assert events == 200 * 11  # run_requested, then started and completed per step
    assert journal.writes * 20 < events, (journal.writes, events)


def test_answered_effects_leave_no_reference_cycles() -> None:
    """Steps run inline, as tasks and in worker threads, with progress, leave nothing for the
    cyclic GC: what the writer and the effect manager make per step is freed by reference
    counting (the cyclic GC's passes cost the many-conversation round a large share)."""

    def report() -> str:
        current_effect().progress({"pct": 50})
        return "ok"

    async def slow() -> str:
        current_effect().progress("half")
        await asyncio.sleep(0)
        return "done"

    async def scenario() -> list[Any]:
        steps = []
        for n in range(5):
            steps += [
                system_step(f"inline{n}", "noop"),
                tool_step(f"threaded{n}", "report"),
                tool_step(f"awaited{n}", "slow"),
            ]
        mode = pipeline("p", steps)
        async with Runtime(
            MemoryJournal(),
            modes=[mode],
            functions={"noop": lambda: None},
            tools={"report": report, "slow": slow},
        ) as rt:
            await rt.run("warm", None, mode="p")
            await rt.wait("warm", rt.snapshot("warm").run_id)
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                handle = await rt.run("c", None, mode="p")
                assert (await handle.wait()).status is RunStatus.completed
                gc.collect()
                return list(gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()

    garbage = arun(scenario())
    kinds = {type(thing).__name__ for thing in garbage}
    assert not kinds & {"StartEffect", "Effect", "_Reporter", "_Live", "cell"}, kinds


class _BrokenFor(Coordinator):
    """A core whose `reduce` raises for one conversation: a bug, since `reduce` is total."""

    def __init__(self, broken: str, modes: Sequence[Mode]) -> None:
        super().__init__(modes)
        self.broken = broken

    def reduce(self, state: ConversationState, event: Event) -> Outcome:
        if event.conversation_id == self.broken:
            raise RuntimeError("a bug in the core")
        return super().reduce(state, event)


def test_rt_17_a_fold_that_raises_for_one_conversation_never_stalls_the_others() -> None:
    """RT-17: when folding one conversation's events raises, that conversation alone is fenced
    (its callers get `ConversationFailedError`, nothing of it is journaled) and the others of
    the same round are written, committed and carried out: their runs complete."""
    journal = _Recording()
    mode = pipeline("p", [system_step("s", "noop")])

    async def scenario() -> None:
        rt = Runtime(journal, modes=[mode], functions={"noop": lambda: "ok"})
        rt.coordinator = _BrokenFor("bad", [mode])
        async with rt:
            requests = [rt.run("bad", None, mode="p", run_id="rb")]
            requests += [rt.run(f"c{i}", None, mode="p") for i in range(3)]
            bad, *good = await asyncio.gather(*requests, return_exceptions=True)
            assert isinstance(bad, ConversationFailedError), bad
            assert "RuntimeError: a bug in the core" in str(bad)
            finals = await asyncio.gather(*(handle.wait() for handle in good))
            assert [final.status for final in finals] == [RunStatus.completed] * 3
            with pytest.raises(ConversationFailedError):
                await rt.interrupt_run("bad", run_id="rb")

    arun(scenario(), timeout=5.0)
    assert journal.last_sequence("bad") == 0
    assert [journal.last_sequence(f"c{i}") for i in range(3)] == [3, 3, 3]  # requested, s ran


def test_rt_17_a_directive_that_raises_for_one_conversation_never_stalls_the_others() -> None:
    """RT-17: when carrying out one conversation's directives raises (here the application's
    `on_audit`), that conversation alone is fenced: its caller gets `ConversationFailedError`.
    The others of the same round are committed and answered, and go on: no later write of theirs
    is refused as stale."""

    def on_audit(audit: EmitAudit) -> None:
        if audit.conversation_id == "bad":
            raise RuntimeError("the audit sink is down")

    gate = StepDefinition("g", StepClass.human_gate, {"question": "go?"})
    mode = pipeline("p", [gate, system_step("s", "noop")])

    async def scenario() -> None:
        async with Runtime(
            "memory", modes=[mode], functions={"noop": lambda: "ok"}, on_audit=on_audit
        ) as rt:
            for conversation in ("bad", "good"):
                await rt.run(conversation, None, mode="p", run_id="r")
            await until(
                lambda: all(
                    rt.snapshot(c).steps[0].status is StepStatus.waiting_input
                    for c in ("bad", "good")
                )
            )
            bad, good = await asyncio.gather(
                rt.interrupt_run("bad", run_id="r"),
                rt.interrupt_run("good", run_id="r"),
                return_exceptions=True,
            )
            assert isinstance(bad, ConversationFailedError), bad
            assert "the audit sink is down" in str(bad)
            assert not isinstance(good, BaseException) and good.status is RunStatus.interrupted
            await rt.resume_run("good", "r")
            await until(lambda: rt.snapshot("good").steps[0].status is StepStatus.waiting_input)
            await rt.provide_input("good", "r", "g", "yes")
            assert (await rt.wait("good", "r")).status is RunStatus.completed
            with pytest.raises(ConversationFailedError):
                await rt.resume_run("bad", "r")

    arun(scenario(), timeout=5.0)
