"""The run lifecycle: statuses, the status matrix, terminal statuses and directive templates."""

from __future__ import annotations

import pytest

from interruptible import (
    CancelEffects,
    CancelRequested,
    Coordinator,
    DirectiveKind,
    EffectStarted,
    IllegalTransition,
    InterruptRequested,
    RunRequested,
    RunStatus,
    Sequence,
    StepClass,
    StepDefinition,
    initial_state,
)
from interruptible._interpreter import compile_lifecycle
from interruptible._lifecycle import ACTIVE_RUN_STATUSES, RunLifecycle

RUN = compile_lifecycle(RunLifecycle, RunStatus)
S = RunStatus

# design.md's matrix, written out by hand so that the declaration is checked against it.
EXPECTED_EDGES = {
    (S.pending, S.running),
    (S.pending, S.failed),
    (S.pending, S.canceled),
    (S.running, S.interrupted),
    (S.running, S.completed),
    (S.running, S.failed),
    (S.running, S.canceled),
    (S.interrupted, S.running),
    (S.interrupted, S.failed),
    (S.interrupted, S.canceled),
}
EXPECTED_TRANSITIONS = {
    ("start", S.pending, S.running),
    ("interrupt", S.running, S.interrupted),
    ("resume", S.interrupted, S.running),
    ("complete", S.running, S.completed),
    ("fail", S.pending, S.failed),
    ("fail", S.running, S.failed),
    ("fail", S.interrupted, S.failed),
    ("cancel", S.pending, S.canceled),
    ("cancel", S.running, S.canceled),
    ("cancel", S.interrupted, S.canceled),
}
TERMINAL = {S.completed, S.failed, S.canceled}


def test_run_1_statuses_initial_and_terminals() -> None:
    """The run statuses are the six of design.md; pending is initial; exactly three are final."""
    assert [s.value for s in RUN.statuses] == [
        "pending",
        "running",
        "interrupted",
        "completed",
        "failed",
        "canceled",
    ]
    assert RUN.initial is S.pending
    assert RUN.finals == TERMINAL


def test_run_2_matrix_is_exactly_designs() -> None:
    """The set of (source, target) pairs joined by a transition is exactly design.md's matrix."""
    assert {(t.source, t.target) for t in RUN.transitions} == EXPECTED_EDGES


@pytest.mark.parametrize("status", sorted(TERMINAL))
@pytest.mark.parametrize("event", [*RUN.events, "no_such_event"])
def test_run_3_no_event_leaves_terminal(status: RunStatus, event: str) -> None:
    """In a terminal status every event, known or not, is an IllegalTransition."""
    assert RUN.allowed[status] == ()
    with pytest.raises(IllegalTransition) as info:
        RUN.fire(status, event, {"no_step_left": True})
    assert info.value.allowed == ()


def test_run_4_events_and_their_transitions() -> None:
    """Each run event has exactly the transitions of the spec's event table."""
    assert {(t.event, t.source, t.target) for t in RUN.transitions} == EXPECTED_TRANSITIONS
    assert len(RUN.transitions) == len(EXPECTED_TRANSITIONS)


def test_run_5_complete_needs_no_step_left() -> None:
    """`complete` is guarded by no_step_left: false refuses it, true completes the run."""
    (complete,) = RUN.index[(S.running, "complete")]
    assert [str(g) for g in complete.guards] == ["no_step_left"]
    assert RUN.fire(S.running, "complete", {"no_step_left": True}).target is S.completed
    with pytest.raises(IllegalTransition) as info:
        RUN.fire(S.running, "complete", {"no_step_left": False})
    assert info.value.failed_guards == ("no_step_left",)
    assert all(not t.guards for t in RUN.transitions if t.event != "complete")


def test_run_6_lifecycle_on_every_transition_output_on_terminal_ones() -> None:
    """Every run transition emits emit_lifecycle; exactly those into a terminal emit emit_output."""
    for t in RUN.transitions:
        assert t.emits(DirectiveKind.emit_lifecycle), t
        assert t.emits(DirectiveKind.emit_output) == (t.target in TERMINAL), t
        assert t.directives.count(DirectiveKind.emit_output) <= 1


def test_run_7_cancel_effects_only_when_leaving_running() -> None:
    """Only the run transitions from running to interrupted, failed, canceled cancel effects."""
    declaring = {
        (t.source, t.target) for t in RUN.transitions if t.emits(DirectiveKind.cancel_effects)
    }
    assert declaring == {(S.running, S.interrupted), (S.running, S.failed), (S.running, S.canceled)}


def test_run_8_active_statuses_are_the_non_terminal_ones() -> None:
    """A run occupies its conversation exactly while its status is not terminal."""
    assert set(ACTIVE_RUN_STATUSES) == set(RUN.statuses) - RUN.finals


# --- RUN-9 through the public core: one merged cancel per run per event ---------------------------

TOOL_RUN = Sequence("one_tool", (StepDefinition("fetch", StepClass.tool, {"url": "u"}),))


def _started_run() -> tuple[Coordinator, object, str]:
    coordinator = Coordinator([TOOL_RUN])
    outcome = coordinator.reduce(
        initial_state(),
        RunRequested("e1", "c1", "r1", "one_tool", principal="alice"),
    )
    (effect_id,) = [d.effect_id for d in outcome.directives if hasattr(d, "idempotency_key")]
    outcome = coordinator.reduce(
        outcome.state, EffectStarted("e2", "c1", "r1", "fetch", effect_id, 1)
    )
    return coordinator, outcome.state, effect_id


def test_run_9_interrupt_emits_one_cancel_first() -> None:
    """Interrupting a run with a live effect emits one CancelEffects, first, naming that effect."""
    coordinator, state, effect_id = _started_run()
    outcome = coordinator.reduce(state, InterruptRequested("e3", "c1", "r1", principal="alice"))
    cancels = [d for d in outcome.directives if isinstance(d, CancelEffects)]
    assert len(cancels) == 1
    assert outcome.directives[0] is cancels[0]
    assert cancels[0].effect_ids == (effect_id,)


def test_run_9_no_second_cancel_for_a_cancelling_step() -> None:
    """Cancelling an interrupted run whose effect was already asked to cancel emits no cancel."""
    coordinator, state, _ = _started_run()
    state = coordinator.reduce(state, InterruptRequested("e3", "c1", "r1", principal="alice")).state
    outcome = coordinator.reduce(state, CancelRequested("e4", "c1", "r1", principal="alice"))
    assert outcome.applied
    assert not [d for d in outcome.directives if isinstance(d, CancelEffects)]


def test_run_9_cancel_of_running_run_emits_one_cancel() -> None:
    """Cancelling a running run with a live effect emits exactly one CancelEffects, first."""
    coordinator, state, effect_id = _started_run()
    outcome = coordinator.reduce(state, CancelRequested("e3", "c1", "r1", principal="alice"))
    cancels = [d for d in outcome.directives if isinstance(d, CancelEffects)]
    assert [c.effect_ids for c in cancels] == [(effect_id,)]
    assert outcome.directives[0] is cancels[0]
