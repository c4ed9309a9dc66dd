"""Our own built-in modes and journals, tested through the public conformance kit."""

from __future__ import annotations

from pathlib import Path
from tempfile import mkdtemp

from hypothesis import settings
from hypothesis import strategies as st

from interruptible import AgentLoop, Sequence, StepClass, StepDefinition, StepPolicy
from interruptible._journal import MemoryJournal, SQLiteJournal
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
