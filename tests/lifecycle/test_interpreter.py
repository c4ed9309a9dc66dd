"""The generic interpreter: compiled tables, typed refusals, guards that cannot be bypassed."""

from __future__ import annotations

import dataclasses
import itertools
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import pytest
from statemachine import State, StateMachine

from interruptible import (
    IllegalTransition,
    LifecycleDefinitionError,
    MissingGuardError,
    RunStatus,
    StepStatus,
)
from interruptible._interpreter import compile_lifecycle
from interruptible._lifecycle import GUARD_MEANINGS, RunLifecycle, StepLifecycle

RUN = compile_lifecycle(RunLifecycle, RunStatus)
STEP = compile_lifecycle(StepLifecycle, StepStatus)


# --- INT-1: compiling --------------------------------------------------------------------------


def test_int_1_one_transition_per_declared_transition_in_order() -> None:
    """The table keeps each (status, event)'s candidates in declaration order; allowed matches."""
    effect_started = STEP.index[(StepStatus.scheduled, "effect_started")]
    assert [t.target for t in effect_started] == [
        StepStatus.completed,
        StepStatus.waiting_input,
        StepStatus.running,
    ]
    for compiled in (RUN, STEP):
        for status in compiled.statuses:
            expected = {event for (source, event) in compiled.index if source is status}
            assert set(compiled.allowed[status]) == expected
            assert (compiled.allowed[status] == ()) is (status in compiled.finals)


def test_int_1_table_is_read_only() -> None:
    """The compiled table is frozen: its records, index and allowed map cannot be changed."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        RUN.initial = RunStatus.running  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RUN.transitions[0].target = RunStatus.failed  # type: ignore[misc]
    assert isinstance(RUN.index, MappingProxyType)
    assert isinstance(RUN.allowed, MappingProxyType)
    assert isinstance(RUN.transitions, tuple)
    # What `fire` reads for a guarded event is frozen too: its answers cannot be swapped.
    for plan in (
        RUN._fire_table[(RunStatus.running, "complete")],
        STEP._fire_table[(StepStatus.running, "effect_failed")],
    ):
        with pytest.raises(AttributeError, match="read-only"):
            plan.answers = ()  # type: ignore[union-attr]
        with pytest.raises(AttributeError, match="read-only"):
            del plan.first  # type: ignore[union-attr]


# --- INT-3: illegal events -----------------------------------------------------------------------


def test_int_3_illegal_transition_names_status_event_and_allowed() -> None:
    """An event not allowed in a status raises IllegalTransition naming all three."""
    with pytest.raises(IllegalTransition) as info:
        RUN.fire(RunStatus.pending, "resume")
    error = info.value
    assert (error.machine, error.status, error.event) == ("RunLifecycle", "pending", "resume")
    assert error.allowed == ("cancel", "fail", "start")
    assert error.failed_guards == ()
    for word in ("RunLifecycle", "'pending'", "'resume'", "cancel, fail, start"):
        assert word in error.message


def test_int_3_final_status_says_so() -> None:
    """In a final status the message says that no event is allowed."""
    with pytest.raises(IllegalTransition) as info:
        STEP.fire(StepStatus.completed, "schedule")
    assert info.value.allowed == ()
    assert "none (final status)" in info.value.message


# --- INT-4: guards cannot be bypassed ----------------------------------------------------------


def test_int_4_false_guard_is_refused_with_failed_guards() -> None:
    """A guard without its expected value refuses the transition and is named in failed_guards."""
    with pytest.raises(IllegalTransition) as info:
        RUN.fire(RunStatus.running, "complete", {"no_step_left": False})
    assert info.value.failed_guards == ("no_step_left",)
    assert "no_step_left" in info.value.message


def test_int_4_missing_guard_raises_missing_guard_error() -> None:
    """A guard the evaluation needs but the mapping lacks raises MissingGuardError, naming it."""
    with pytest.raises(MissingGuardError) as info:
        RUN.fire(RunStatus.running, "complete")
    assert info.value.guard == "no_step_left"
    with pytest.raises(MissingGuardError) as step_info:
        STEP.fire(StepStatus.scheduled, "effect_started", {"has_input": True})
    assert step_info.value.guard == "awaits_input"


def test_int_4_truthy_non_bool_is_not_true() -> None:
    """INT-4: a guard value must be a bool: 1 is refused, not taken as True."""
    with pytest.raises(MissingGuardError):
        RUN.fire(RunStatus.running, "complete", {"no_step_left": 1})  # type: ignore[dict-item]


def test_int_4_every_candidate_guard_is_required() -> None:
    """INT-4: a guard only a later candidate reads is still required, so none is forgotten."""
    with pytest.raises(MissingGuardError, match="is_retryable"):
        STEP.fire(StepStatus.running, "effect_failed", {"attempts_left": False})


class Gates(StrEnum):
    start = "start"
    one = "one"
    two = "two"
    three = "three"
    done = "done"


class GuardedEverywhere(StateMachine):
    """Events guarded by one, two and three guard names (the interpreter's three fire paths)."""

    start = State(initial=True)
    one = State()
    two = State()
    three = State()
    done = State(final=True)
    single = start.to(one, cond="x") | start.to(two, unless="x")
    pair = start.to(one, cond=["x", "y"]) | start.to(two, cond="y", unless="x")
    triple = (
        start.to(one, cond=["x", "y"])
        | start.to(two, cond="z", unless="y")
        | start.to(three, unless=["x", "z"])
    )
    finish = one.to(done) | two.to(done) | three.to(done)


GATES = compile_lifecycle(GuardedEverywhere, Gates)
GUARD_VALUES = (True, False, None, 1)  # None: the guard is not given; 1: truthy, not a bool


def oracle(event: str, guards: dict[str, Any]) -> Gates | type[Exception]:
    """What `fire` must answer, read straight from the declared candidates (INT-4)."""
    candidates = GATES.index[(Gates.start, event)]
    for candidate in candidates:
        for guard in candidate.guards:
            if type(guards.get(guard.name)) is not bool:
                return MissingGuardError
    for candidate in candidates:
        if all(guards[g.name] is g.expected for g in candidate.guards):
            return candidate.target
    return IllegalTransition


@pytest.mark.parametrize("event", ["single", "pair", "triple"])
def test_int_4_fire_agrees_with_the_candidates_for_every_guard_value(event: str) -> None:
    """One, two or three guards, each True, False, missing or truthy: the declared answer."""
    names = sorted({g.name for t in GATES.index[(Gates.start, event)] for g in t.guards})
    for values in itertools.product(GUARD_VALUES, repeat=len(names)):
        guards = {n: v for n, v in zip(names, values, strict=True) if v is not None}
        expected = oracle(event, guards)
        if isinstance(expected, Gates):
            assert GATES.fire(Gates.start, event, guards).target is expected, guards
            continue
        with pytest.raises(expected) as caught:
            GATES.fire(Gates.start, event, guards)
        if isinstance(caught.value, IllegalTransition):  # each candidate's first failing guard
            assert caught.value.failed_guards == tuple(
                next(str(g) for g in t.guards if guards[g.name] is not g.expected)
                for t in GATES.index[(Gates.start, event)]
            ), guards


# --- INT-5: definitions the table cannot express ----------------------------------------------


class AB(StrEnum):
    a = "a"
    b = "b"


class ABC(StrEnum):
    a = "a"
    b = "b"
    c = "c"


class ExpressionGuard(StateMachine):
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, cond="ready and not blocked")


class NegatedExpressionGuard(StateMachine):
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, unless="!ready")


class UnknownDirective(StateMachine):
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, on=["emit_lifecycle", "launch_rockets"])


class WithValidator(StateMachine):
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, validators="check_it")


class Fine(StateMachine):
    a = State(initial=True)
    b = State(final=True)
    go = a.to(b, cond="ready", on="emit_lifecycle")


@pytest.mark.parametrize(
    ("machine", "status_type", "words"),
    [
        (ExpressionGuard, AB, "not a plain name"),
        (NegatedExpressionGuard, AB, "not a plain name"),
        (UnknownDirective, AB, "launch_rockets"),
        (WithValidator, AB, "validators"),
        (Fine, ABC, "differ from ABC"),
    ],
)
def test_int_5_bad_declarations_are_definition_errors(
    machine: type[Any], status_type: type[StrEnum], words: str
) -> None:
    """compile_lifecycle refuses what its table cannot express, with LifecycleDefinitionError."""
    with pytest.raises(LifecycleDefinitionError) as info:
        compile_lifecycle(machine, status_type)
    assert words in info.value.message
    assert not isinstance(info.value, IllegalTransition)


def test_int_5_a_sound_small_declaration_compiles() -> None:
    """The same small machine without the defect compiles, so the refusals above are specific."""
    compiled = compile_lifecycle(Fine, AB)
    assert compiled.fire(AB.a, "go", {"ready": True}).target is AB.b


# --- INT-6: guard meanings ----------------------------------------------------------------------


def test_int_6_every_guard_has_a_meaning_and_every_meaning_a_guard() -> None:
    """GUARD_MEANINGS names exactly the guards the two lifecycles use."""
    assert set(GUARD_MEANINGS) == RUN.guard_names() | STEP.guard_names()
    assert all(meaning.strip() for meaning in GUARD_MEANINGS.values())
