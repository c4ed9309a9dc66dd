"""How an application reads what the core answers: outcomes and the vocabulary's names."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

import pytest

from interruptible import (
    Disposition,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectStarted,
    Fail,
    FailureCategory,
    IgnoredReason,
    InterruptRequested,
    Outcome,
    RunRequested,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepFailure,
    StepPolicy,
    UnknownCategoryError,
    dumps,
    initial_state,
    loads_event,
    to_json,
)
from interruptible._core import Coordinator
from interruptible._vocabulary import DIRECTIVE_TYPES, EVENT_TYPES


def _coordinator() -> Coordinator:
    steps = (StepDefinition("a", StepClass.tool),)
    return Coordinator([Sequence("seq", steps)])


def test_core_30_outcome_reads_as_three_booleans_with_reason_and_error() -> None:
    """CORE-30: exactly one of `applied`, `ignored`, `rejected` is true; `reason` is set exactly
    when ignored, `error` exactly when rejected."""
    core = _coordinator()
    request = RunRequested("e1", "c1", "r1", "seq", at=1.0)
    applied = core.reduce(initial_state("c1"), request)
    again = core.reduce(applied.state, request)
    refused = core.reduce(applied.state, InterruptRequested("e2", "c1", "unknown", at=2.0))
    for outcome, expected in (
        (applied, Disposition.applied),
        (again, Disposition.ignored),
        (refused, Disposition.rejected),
    ):
        flags = (outcome.applied, outcome.ignored, outcome.rejected)
        assert all(type(flag) is bool for flag in flags)
        assert flags == tuple(expected is d for d in Disposition)
        assert (outcome.reason is not None) is outcome.ignored
        assert (outcome.error is not None) is outcome.rejected
    assert again.reason is IgnoredReason.duplicate_request
    assert "reason" in {f.name for f in dataclasses.fields(Outcome)}


@pytest.mark.parametrize("name", sorted({*EVENT_TYPES, *DIRECTIVE_TYPES}))
def test_core_31_every_event_and_directive_has_its_kind(name: str) -> None:
    """CORE-31: `kind` is the vocabulary name, a class attribute that no instance stores and
    that the JSON encoding does not repeat."""
    cls = {**EVENT_TYPES, **DIRECTIVE_TYPES}[name]
    assert cls.kind == name
    assert "kind" not in {f.name for f in dataclasses.fields(cls)}
    assert "kind" not in cls.__slots__


def test_core_31_kind_of_an_instance_matches_its_encoding() -> None:
    """CORE-31: an instance's `kind` is the `type` its encoding carries, and the encoding has no
    `kind` of its own."""
    event = EffectCompleted("e3", "c1", "r1", "a", "r1/a/1", 1, {"x": 1}, at=3.0)
    assert event.kind == "effect_completed" == to_json(event)["type"]
    assert "kind" not in to_json(event)
    assert '"kind"' not in dumps(event)


def _start() -> StartEffect:
    core = _coordinator()
    outcome = core.reduce(initial_state("c1"), RunRequested("e1", "c1", "r1", "seq", at=1.0))
    (start,) = (d for d in outcome.directives if d.kind == "start_effect")
    assert isinstance(start, StartEffect)
    return start


def test_core_32_start_effect_builds_its_answers() -> None:
    """CORE-32: the answers a `StartEffect` builds equal the events written out by hand; ids and
    times come from the caller."""
    d = _start()
    ids = (d.conversation_id, d.run_id, d.step_id, d.effect_id, d.attempt)
    assert d.started(event_id="s", at=2.0) == EffectStarted("s", *ids, 2.0, d.cause_id)
    assert d.completed({"x": 1}, event_id="e", at=3.0) == EffectCompleted(
        "e", *ids, {"x": 1}, 3.0, d.cause_id
    )
    assert d.failed("timeout", "slow", event_id="f", at=4.0, retryable=True) == EffectFailed(
        "f", *ids, FailureCategory.timeout, "slow", True, None, 4.0, d.cause_id
    )
    assert d.canceled(event_id="k", at=5.0) == EffectCanceled("k", *ids, 5.0, d.cause_id)
    with pytest.raises(TypeError):
        d.completed(1)  # type: ignore[call-arg]  # no event id, no time: never made here


def test_core_32_an_answer_built_from_the_directive_drives_the_run() -> None:
    """CORE-32: feeding back `start.completed(...)` completes the step and the run."""
    core = _coordinator()
    first = core.reduce(initial_state("c1"), RunRequested("e1", "c1", "r1", "seq", at=1.0))
    start = next(d for d in first.directives if isinstance(d, StartEffect))
    done = core.reduce(first.state, start.completed("page", event_id="e2", at=2.0))
    assert done.applied
    assert done.state.run("r1") is not None
    assert done.state.run("r1").status.value == "completed"  # type: ignore[union-attr]


def test_core_33_failure_categories_may_be_plain_strings() -> None:
    """CORE-33: a category given as its string is the member from construction on: equal,
    hashed and encoded alike."""
    by_name = StepFailure("transient", "flaky")  # type: ignore[arg-type]
    by_member = StepFailure(FailureCategory.transient, "flaky")
    assert by_name.category is FailureCategory.transient
    assert (by_name, hash(by_name), repr(by_name)) == (
        by_member,
        hash(by_member),
        repr(by_member),
    )
    event = EffectFailed("e", "c1", "r1", "a", "r1/a/1", 1, "timeout", "slow")  # type: ignore[arg-type]
    assert event.category is FailureCategory.timeout
    assert loads_event(dumps(event)) == event
    assert dumps(event) == dumps(replace(event, category=FailureCategory.timeout))
    assert Fail("no", "invalid_input").category is FailureCategory.invalid_input  # type: ignore[arg-type]
    policy = StepPolicy(retry_on=("rate_limited",))  # type: ignore[arg-type]
    assert policy.retry_on == (FailureCategory.rate_limited,)
    assert policy == StepPolicy(retry_on=(FailureCategory.rate_limited,))


@pytest.mark.parametrize(
    "build",
    [
        lambda: StepFailure("flakey", "x"),
        lambda: EffectFailed("e", "c1", "r1", "a", "r1/a/1", 1, "Timeout", "x"),
        lambda: Fail("no", "nope"),
        lambda: StepPolicy(retry_on=("timeout", "later")),
        lambda: _start().failed("oops", "x", event_id="f", at=1.0),
    ],
)
def test_core_33_an_unknown_category_string_is_a_typed_error(build: Any) -> None:
    """CORE-33: a string that names no category raises `UnknownCategoryError`, which names the
    string and the categories there are."""
    with pytest.raises(UnknownCategoryError) as raised:
        build()
    assert isinstance(raised.value, ValueError)
    assert "transient" in str(raised.value)
    assert raised.value.category in str(raised.value)


def test_core_33_a_category_of_the_wrong_type_is_rejected_by_reduce() -> None:
    """CORE-33 with CORE-1: a category that is not a string is kept, and `reduce` rejects it."""
    core = _coordinator()
    first = core.reduce(initial_state("c1"), RunRequested("e1", "c1", "r1", "seq", at=1.0))
    start = next(d for d in first.directives if isinstance(d, StartEffect))
    bad = EffectFailed("e", "c1", "r1", "a", start.effect_id, 1, 7, "x")  # type: ignore[arg-type]
    assert core.reduce(first.state, bad).rejected
