"""The step lifecycle: statuses, finals, effects, cancels, retries, human gates and progress."""

from __future__ import annotations

import itertools

import pytest

from interruptible import DirectiveKind, IllegalTransition, StepClass, StepStatus
from interruptible._interpreter import compile_lifecycle
from interruptible._lifecycle import (
    GUARD_MEANINGS,
    LIVE_STEP_STATUSES,
    STEP_CLASS_TRAITS,
    StepLifecycle,
)

STEP = compile_lifecycle(StepLifecycle, StepStatus)
S = StepStatus
FINALS = {S.completed, S.failed, S.canceled}
ALL_TRUE = dict.fromkeys(GUARD_MEANINGS, True)
UNCANCELLED_LIVE = {S.scheduled, S.running, S.waiting_input}


def _declaring(kind: DirectiveKind) -> set[tuple[StepStatus, str, StepStatus]]:
    return {(t.source, t.event, t.target) for t in STEP.transitions if t.emits(kind)}


def test_step_1_statuses_initial_and_finals() -> None:
    """The nine step statuses; pending is initial; completed, failed, canceled are the finals."""
    assert [s.value for s in STEP.statuses] == [
        "pending",
        "scheduled",
        "running",
        "waiting_input",
        "cancelling",
        "retrying",
        "completed",
        "failed",
        "canceled",
    ]
    assert STEP.initial is S.pending
    assert STEP.finals == FINALS


@pytest.mark.parametrize("status", sorted(FINALS))
@pytest.mark.parametrize("event", [*STEP.events, "no_such_event"])
def test_step_2_no_event_leaves_final(status: StepStatus, event: str) -> None:
    """In a final step status every event, known or not, is an IllegalTransition."""
    with pytest.raises(IllegalTransition):
        STEP.fire(status, event, ALL_TRUE)


def test_step_2_completed_step_is_never_scheduled_again() -> None:
    """A step with a kept result cannot be scheduled: resume never re-executes finished work."""
    assert not STEP.can_fire(S.completed, "schedule")
    assert not any(t.source in FINALS for t in STEP.transitions)


def test_step_3_start_effect_only_and_always_on_schedule() -> None:
    """start_effect is declared exactly by schedule, from the two statuses without a live effect."""
    assert _declaring(DirectiveKind.start_effect) == {
        (S.pending, "schedule", S.scheduled),
        (S.retrying, "schedule", S.scheduled),
    }
    assert {t.source for t in STEP.transitions if t.event == "schedule"} == {S.pending, S.retrying}
    assert not ({S.pending, S.retrying} & set(LIVE_STEP_STATUSES))


def test_step_4_cancel_effects_at_most_once_per_live_effect() -> None:
    """Only transitions leaving a live, not-yet-cancelled effect declare cancel_effects."""
    assert _declaring(DirectiveKind.cancel_effects) == {
        *((source, "interrupt", S.cancelling) for source in UNCANCELLED_LIVE),
        *((source, "abandon", S.canceled) for source in UNCANCELLED_LIVE),
        (S.scheduled, "effect_started", S.completed),
        (S.waiting_input, "human_input_received", S.completed),
    }
    assert not any(
        t.emits(DirectiveKind.cancel_effects) for t in STEP.transitions if t.source is S.cancelling
    )


def test_step_5_cancel_answer_decides() -> None:
    """From cancelling: canceled or failed -> pending, completed -> completed; never failed."""
    outcomes = {t.event: t.target for t in STEP.transitions if t.source is S.cancelling}
    assert outcomes == {
        "effect_canceled": S.pending,
        "effect_failed": S.pending,
        "effect_lost": S.pending,
        "effect_completed": S.completed,
        "abandon": S.canceled,
    }
    assert {(t.event, t.source) for t in STEP.transitions if t.target is S.cancelling} == {
        ("interrupt", source) for source in UNCANCELLED_LIVE
    }


@pytest.mark.parametrize("source", sorted(UNCANCELLED_LIVE))
@pytest.mark.parametrize(
    ("attempts_left", "is_retryable"), list(itertools.product([True, False], repeat=2))
)
def test_step_6_failure_retries_only_with_attempts_and_retryable(
    source: StepStatus, attempts_left: bool, is_retryable: bool
) -> None:
    """effect_failed retries iff attempts_left and is_retryable, and fails the step otherwise."""
    guards = {"attempts_left": attempts_left, "is_retryable": is_retryable}
    target = STEP.fire(source, "effect_failed", guards).target
    assert target is (S.retrying if attempts_left and is_retryable else S.failed)


def test_step_6_retrying_leaves_only_by_schedule_or_abandon() -> None:
    """A retrying step has no live effect and leaves only by schedule or abandon."""
    assert set(STEP.allowed[S.retrying]) == {"schedule", "abandon"}
    assert S.retrying not in LIVE_STEP_STATUSES


@pytest.mark.parametrize(
    ("awaits_input", "has_input"), list(itertools.product([True, False], repeat=2))
)
def test_step_7_effect_started_routes_human_gates(awaits_input: bool, has_input: bool) -> None:
    """effect_started: early answer -> completed, a gate -> waiting_input, otherwise running."""
    guards = {"awaits_input": awaits_input, "has_input": has_input}
    target = STEP.fire(S.scheduled, "effect_started", guards).target
    if awaits_input and has_input:
        assert target is S.completed
    elif awaits_input:
        assert target is S.waiting_input
    else:
        assert target is S.running


def test_step_7_human_input_only_while_waiting() -> None:
    """human_input_received is legal in waiting_input only."""
    assert {t.source for t in STEP.transitions if t.event == "human_input_received"} == {
        S.waiting_input
    }


def test_step_8_progress_is_internal_and_emits_progress_only() -> None:
    """effect_progress keeps running / waiting_input and emits emit_progress; elsewhere illegal."""
    for status in STEP.statuses:
        if status in (S.running, S.waiting_input):
            t = STEP.fire(status, "effect_progress")
            assert (t.target, t.internal, t.directives) == (
                status,
                True,
                (DirectiveKind.emit_progress,),
            )
        else:
            with pytest.raises(IllegalTransition):
                STEP.fire(status, "effect_progress")


def test_step_9_abandon_ends_every_unfinished_step() -> None:
    """abandon leads every non-final status to canceled."""
    for status in set(STEP.statuses) - FINALS:
        assert STEP.fire(status, "abandon").target is S.canceled


def test_step_10_lifecycle_on_status_changes_only() -> None:
    """Each status-changing transition emits emit_lifecycle; internal ones do not."""
    for t in STEP.transitions:
        assert t.emits(DirectiveKind.emit_lifecycle) is not t.internal, t
        assert t.internal is (t.source is t.target), t


def test_step_11_live_statuses_are_those_awaiting_an_effect_answer() -> None:
    """LIVE_STEP_STATUSES are exactly the non-final statuses where effect_completed is legal."""
    expected = {s for s in STEP.statuses if STEP.can_fire(s, "effect_completed")}
    assert (
        set(LIVE_STEP_STATUSES)
        == expected
        == {
            S.scheduled,
            S.running,
            S.waiting_input,
            S.cancelling,
        }
    )


def test_step_12_one_traits_record_per_class_and_no_class_in_the_table() -> None:
    """Every step class has one traits record; no transition, event or guard names a class."""
    assert set(STEP_CLASS_TRAITS) == set(StepClass)
    class_names = {c.value for c in StepClass}
    names = set(STEP.events) | STEP.guard_names() | {s.value for s in STEP.statuses}
    assert not (names & class_names)


def test_step_13_only_human_gates_await_input() -> None:
    """awaits_input holds for human_gate only, so only a human gate can wait for input."""
    awaiting = {cls for cls, traits in STEP_CLASS_TRAITS.items() if traits.awaits_input}
    assert awaiting == {StepClass.human_gate}
    for cls, traits in STEP_CLASS_TRAITS.items():
        target = STEP.fire(
            S.scheduled, "effect_started", {"awaits_input": traits.awaits_input, "has_input": False}
        ).target
        assert (target is S.waiting_input) is (cls is StepClass.human_gate)


def test_step_14_a_lost_effect_leaves_the_step_pending() -> None:
    """STEP-14: effect_lost takes every live status, and only those, back to pending."""
    lost = {t.source: t.target for t in STEP.transitions if t.event == "effect_lost"}
    assert lost == {source: S.pending for source in (*UNCANCELLED_LIVE, S.cancelling)}
