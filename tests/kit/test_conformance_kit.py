"""Our own built-in modes and journals, tested through the public conformance kit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence as Sequence_
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from interruptible import AgentLoop, Sequence, StepClass, StepDefinition, StepPolicy
from interruptible._journal import AppendBatch, Journal, MemoryJournal, SQLiteJournal
from interruptible.testing._machines import JournalConformance, ModeConformance

PIPELINE = Sequence(
    "pipeline",
    (
        StepDefinition("a", StepClass.tool, policy=StepPolicy(max_attempts=2)),
        StepDefinition("b", StepClass.llm),
        StepDefinition("c", StepClass.system),
    ),
)


class SequenceConformance(ModeConformance):
    """MODE-2: the Sequence mode obeys the mode protocol."""

    mode = PIPELINE
    run_inputs = st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers()))


def _llm_or_tool_output(step: StepDefinition) -> st.SearchStrategy[object]:
    if step.step_class is StepClass.llm:
        call = st.fixed_dictionaries(
            {"id": st.sampled_from(["x", "y"]), "name": st.just("search"), "arguments": st.just({})}
        )
        return st.fixed_dictionaries(
            {
                "content": st.text(max_size=5),
                "tool_calls": st.lists(call, max_size=2, unique_by=lambda c: c["id"]),
            }
        )
    return st.text(max_size=5)


class AgentConformance(ModeConformance):
    """MODE-4: the agent loop obeys the mode protocol."""

    mode = AgentLoop(tools=("search",), max_turns=3)
    run_inputs = st.just({"prompt": "go"})

    def step_outputs(self, step: StepDefinition) -> st.SearchStrategy[object]:
        return _llm_or_tool_output(step)


class MemoryJournalConformance(JournalConformance):
    """JRN: the memory journal obeys the journal protocol."""

    def make_journal(self) -> MemoryJournal:
        return MemoryJournal()


class SQLiteJournalConformance(JournalConformance):
    """JRN: the SQLite journal obeys the journal protocol."""

    def make_journal(self) -> SQLiteJournal:
        return SQLiteJournal(Path(mkdtemp()) / "journal.db", synchronous="NORMAL")

    def make_second_writer(self, journal: Journal) -> SQLiteJournal:
        """OWN-1 to OWN-6: the second writer is a second connection to the same file."""
        assert isinstance(journal, SQLiteJournal)
        return SQLiteJournal(journal.path, synchronous="NORMAL")


# A smaller budget than the profile's for these four: each step folds the whole history again
# (replay parity) and the SQLite machine commits to disk. The profile's derandomize still holds.
for machine in (SequenceConformance, AgentConformance, MemoryJournalConformance):
    machine.TestCase.settings = settings(settings.default, max_examples=60, stateful_step_count=25)
SQLiteJournalConformance.TestCase.settings = settings(
    settings.default, max_examples=25, stateful_step_count=15
)

TestMode2SequenceConformance = SequenceConformance.TestCase
TestMode4AgentLoopConformance = AgentConformance.TestCase
TestMemoryJournalConformance = MemoryJournalConformance.TestCase
TestSQLiteJournalConformance = SQLiteJournalConformance.TestCase


def test_plugin_fixtures(core_driver, golden_traces, memory_journal, journal_path) -> None:  # type: ignore[no-untyped-def]
    """TRACE-1: the pytest plugin is registered and its fixtures work."""
    driver = core_driver([PIPELINE])
    assert driver.run("r1", "pipeline").applied
    assert {trace.name for trace in golden_traces} >= {"completes", "interrupt-resume"}
    assert memory_journal.conversations() == []
    assert journal_path.suffix == ".db"


class _NoEpochFence(MemoryJournal):
    """A journal that forgets the epoch fence: it writes every batch as its current owner's."""

    def append_many(self, batches: Sequence_[AppendBatch]) -> list[int]:
        return super().append_many(
            [
                dataclasses.replace(batch, epoch=owner.epoch if owner is not None else None)
                for batch in batches
                for owner in [self.owner(batch.conversation_id)]
            ]
        )


class _NoEpochFenceConformance(JournalConformance):
    def make_journal(self) -> MemoryJournal:
        return _NoEpochFence()


def test_own_3_the_journal_conformance_catches_a_journal_without_the_epoch_fence() -> None:
    """OWN-3: two writers interleaved at random find the stale owner's accepted append."""
    with pytest.raises(AssertionError, match="stale owner's append was accepted"):
        run_state_machine_as_test(
            _NoEpochFenceConformance,
            settings=settings(settings.default, max_examples=200, stateful_step_count=30),
        )
