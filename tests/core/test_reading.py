"""How an application reads what the core answers: outcomes and the vocabulary's names."""

from __future__ import annotations

import dataclasses

import pytest

from interruptible import (
    Disposition,
    EffectCompleted,
    IgnoredReason,
    InterruptRequested,
    Outcome,
    RunRequested,
    Sequence,
    StepClass,
    StepDefinition,
    dumps,
    initial_state,
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
