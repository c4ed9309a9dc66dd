"""JSON round trip of every event, directive and nested value; frozen values."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from interruptible import (
    Backoff,
    EmitOutput,
    FailureCategory,
    StepDefinition,
    StepFailure,
    StepPolicy,
    StepResult,
    directive_from_json,
    dumps,
    event_from_json,
    loads_event,
    to_json,
    type_name,
    value_from_json,
    value_to_json,
)
from interruptible._codec import json_schema
from interruptible._vocabulary import DIRECTIVE_TYPES, EVENT_TYPES
from interruptible.testing.strategies import directives, events, step_definitions, values_of

NESTED = (StepDefinition, StepPolicy, Backoff, StepResult, StepFailure)


@given(events())
def test_voc_1_every_event_round_trips(event: object) -> None:
    """An event decoded from its JSON text equals the event; its `type` comes first."""
    assert loads_event(dumps(event)) == event  # type: ignore[arg-type]
    document = to_json(event)  # type: ignore[arg-type]
    assert next(iter(document)) == "type"
    assert document["type"] == type_name(event)
    assert event_from_json(json.loads(json.dumps(document))) == event


@given(directives())
def test_voc_1_every_directive_round_trips(directive: object) -> None:
    """A directive decoded from its JSON text equals the directive; its `type` comes first."""
    document = json.loads(dumps(directive))  # type: ignore[arg-type]
    assert directive_from_json(document) == directive
    assert document["type"] == type_name(directive)


@given(step_definitions())
def test_voc_1_step_definitions_round_trip(definition: StepDefinition) -> None:
    """A step definition (with its policy and backoff) round-trips through JSON text."""
    text = json.dumps(value_to_json(definition), allow_nan=False)
    assert value_from_json(StepDefinition, json.loads(text)) == definition


@pytest.mark.parametrize("cls", NESTED, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_voc_1_nested_values_round_trip(cls: type, data: st.DataObject) -> None:
    """Every nested value class round-trips through JSON text."""
    value = data.draw(values_of(cls))
    text = json.dumps(value_to_json(value), allow_nan=False)
    assert value_from_json(cls, json.loads(text)) == value


def test_voc_1_strategies_cover_the_whole_vocabulary() -> None:
    """The strategies draw every event and directive type, so the round trips cover them all."""
    for cls in (*EVENT_TYPES.values(), *DIRECTIVE_TYPES.values()):
        strategy = events() if cls in EVENT_TYPES.values() else directives()
        find(strategy, lambda value, cls=cls: type(value) is cls)


def test_voc_5_values_are_frozen() -> None:
    """Every event, directive and nested value is a frozen, slotted dataclass."""
    classes = [*EVENT_TYPES.values(), *DIRECTIVE_TYPES.values(), *NESTED]
    for cls in classes:
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, cls
        assert hasattr(cls, "__slots__"), cls
        assert json_schema(cls)["additionalProperties"] is False
    output = EmitOutput("c", "r", "failed", None, StepFailure(FailureCategory.timeout, "slow"), "e")
    with pytest.raises(dataclasses.FrozenInstanceError):
        output.status = "completed"  # type: ignore[misc]
    assert dataclasses.replace(output, status="completed").status == "completed"
