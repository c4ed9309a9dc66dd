"""Our own built-in modes and journals, tested through the public conformance kit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence as Sequence_
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from interruptible import (
    AgentLoop,
    NextStep,
    Plan,
    StepClass,
    StepDefinition,
    StepResult,
)
from interruptible._journal import (
    AppendBatch,
    Journal,
    MemoryJournal,
    PostgresJournal,
    SQLiteJournal,
)
from interruptible._vocabulary import JsonValue
from interruptible.testing._machines import JournalConformance, ModeConformance
from interruptible.testing._ownership import OwnershipRules
from tests._pipeline import PIPELINE
from tests._postgres import POSTGRES


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


class PostgresJournalConformance(JournalConformance):
    """JRN: the PostgreSQL journal obeys the journal protocol (a schema of its own per example,
    dropped at its teardown)."""

    def make_journal(self) -> PostgresJournal:
        return POSTGRES.journal()

    def make_second_writer(self, journal: Journal) -> PostgresJournal:
        """OWN-1 to OWN-6: the second writer is a second connection to the same schema."""
        assert isinstance(journal, PostgresJournal)
        return POSTGRES.journal(journal.schema)

    def teardown(self) -> None:
        super().teardown()
        assert isinstance(self.journal, PostgresJournal)
        POSTGRES.drop_schema(self.journal.schema)


# A smaller budget than the profile's for these: each step folds the whole history again
# (replay parity), and the SQLite and PostgreSQL machines commit to disk (PostgreSQL makes a
# schema per example). The profile's derandomize still holds.
for machine in (SequenceConformance, AgentConformance, MemoryJournalConformance):
    machine.TestCase.settings = settings(settings.default, max_examples=60, stateful_step_count=25)
for machine in (SQLiteJournalConformance, PostgresJournalConformance):
    machine.TestCase.settings = settings(settings.default, max_examples=25, stateful_step_count=15)

TestMode2SequenceConformance = SequenceConformance.TestCase
TestMode4AgentLoopConformance = AgentConformance.TestCase
TestMemoryJournalConformance = MemoryJournalConformance.TestCase
TestSQLiteJournalConformance = SQLiteJournalConformance.TestCase
TestPostgresJournalConformance = PostgresJournalConformance.TestCase


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


class _NoEpochFenceConformance(OwnershipRules):
    """`JournalConformance`'s ownership rules alone, on a journal without the epoch fence."""

    def __init__(self) -> None:
        super().__init__()
        self.journal = _NoEpochFence()
        self.model = {c: [] for c in self.owned_conversations}

    def teardown(self) -> None:
        super().teardown()
        self.journal.close()


def test_own_3_the_journal_conformance_catches_a_journal_without_the_epoch_fence() -> None:
    """OWN-3: two writers interleaved at random find the stale owner's accepted append."""
    with pytest.raises(AssertionError, match="stale owner's append was accepted"):
        run_state_machine_as_test(
            _NoEpochFenceConformance,
            settings=settings(BROKEN, stateful_step_count=30),
        )


@dataclass(frozen=True, slots=True)
class _RunsAnyTool(AgentLoop):
    """An agent loop that lets the model call any tool, offered or not (the MODE-5 hole)."""

    def _offers(self, name: object) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class _KindsFromStepIds(AgentLoop):
    """An agent loop that puts raw call ids into step ids and takes a result for a model turn
    when its step id ends with `.llm` (the MODE-6 hole)."""

    def plan(self, context: JsonValue) -> Plan:
        plan = AgentLoop.plan(self, context)
        if isinstance(plan, NextStep) and plan.step.step_class is StepClass.tool:
            raw = f"turn-{context['turn']}.tool-{context['pending'][0]['id']}"
            return NextStep(replace(plan.step, step_id=raw))
        return plan

    def on_result(self, context: JsonValue, result: StepResult) -> JsonValue:
        if not result.step_id.endswith(".llm"):
            return AgentLoop.on_result(self, context, result)
        turn = {**context, "pending": []}  # what the loop would plan if this were a model turn
        planned = AgentLoop.plan(self, turn)
        assert isinstance(planned, NextStep)
        step_id = planned.step.step_id
        return AgentLoop.on_result(self, turn, replace(result, step_id=step_id))


# Derandomized and unshrunk, as the race machines' seeded defects (VER-15).
BROKEN = settings(
    settings(),
    derandomize=True,
    max_examples=200,
    stateful_step_count=25,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    print_blob=False,
)


@pytest.mark.parametrize(
    ("mode", "property_id"),
    [
        pytest.param(_RunsAnyTool(tools=("search",), max_turns=3), "MODE-5", id="runs_any_tool"),
        pytest.param(
            _KindsFromStepIds(tools=("search",), max_turns=3), "MODE-6", id="kinds_from_step_ids"
        ),
    ],
)
def test_mode_5_to_6_the_kit_catches_a_trusting_agent_loop(
    mode: AgentLoop, property_id: str
) -> None:
    """MODE-5, MODE-6: the conformance kit fails an agent loop that runs a tool it did not offer,
    and one that reads a tool's output as a model turn because of the step id the model chose
    (style rule 14: deliberately broken machines must fail)."""
    machine = type("Trusting", (AgentConformance,), {"mode": mode})
    with pytest.raises(AssertionError, match=property_id):
        run_state_machine_as_test(machine, settings=BROKEN)
