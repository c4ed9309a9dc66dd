"""Decoding never trusts its input: every refusal is a DecodeError naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from interruptible import (
    DecodeError,
    EffectFailed,
    EffectStarted,
    FailureCategory,
    StartEffect,
    StepClass,
    StepPolicy,
    directive_from_json,
    event_from_json,
    loads_event,
    to_json,
)

STARTED = to_json(EffectStarted("e1", "c1", "r1", "s1", "r1/s1/1", 1, at=1.5))
FAILED = to_json(
    EffectFailed("e2", "c1", "r1", "s1", "r1/s1/1", 1, FailureCategory.transient, "flaky")
)
START = to_json(
    StartEffect(
        "c1", "r1", "s1", "r1/s1/1", 1, StepClass.tool, {"q": 1}, StepPolicy(), "r1:s1:1", 0.0, "e1"
    )
)


def _with(document: dict[str, object], path: str, value: object) -> dict[str, Any]:
    """A deep copy of `document` with the dotted `path` set to `value`."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[key]
    node[last] = value
    return copy


def _without(document: dict[str, object], key: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    del copy[key]
    return copy


def test_voc_2_integral_float_is_an_integer() -> None:
    """JSON has one number type: 1.0 decodes as the integer 1, as the schema's "integer" says."""
    event = event_from_json(_with(STARTED, "attempt", 1.0))
    assert event.attempt == 1 and type(event.attempt) is int


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (_with(STARTED, "attempt", "1"), "attempt"),
        (_with(STARTED, "attempt", True), "attempt"),
        (_with(STARTED, "attempt", 1.5), "attempt"),
        (_with(STARTED, "run_id", 7), "run_id"),
        (_with(STARTED, "cause_id", ["x"]), "cause_id"),
        (_with(FAILED, "retryable", "yes"), "retryable"),
    ],
)
def test_voc_2_wrong_type_names_the_field(document: dict[str, Any], path: str) -> None:
    """A field of the wrong JSON type raises DecodeError at that field."""
    with pytest.raises(DecodeError) as info:
        event_from_json(document)
    assert info.value.path == path
    assert repr(path) in info.value.message


def test_voc_2_nested_wrong_type_names_the_full_path() -> None:
    """A nested field of the wrong type is named by its dotted path."""
    with pytest.raises(DecodeError) as info:
        directive_from_json(_with(START, "policy.backoff.initial", "soon"))
    assert info.value.path == "policy.backoff.initial"


def test_voc_2_missing_field_names_it() -> None:
    """A missing required field raises DecodeError at that field."""
    with pytest.raises(DecodeError) as info:
        event_from_json(_without(STARTED, "effect_id"))
    assert info.value.path == "effect_id"
    assert "required" in info.value.message


def test_voc_2_unknown_field_names_it() -> None:
    """A field the type does not have raises DecodeError at that field, nested ones included."""
    with pytest.raises(DecodeError) as info:
        event_from_json(_with(STARTED, "colour", "blue"))
    assert info.value.path == "colour"
    with pytest.raises(DecodeError) as nested:
        directive_from_json(_with(START, "policy.jitter", 0.1))
    assert nested.value.path == "policy.jitter"


def test_voc_2_unknown_enum_value_names_the_field() -> None:
    """An enum value outside the enum raises DecodeError at that field, list items by index."""
    with pytest.raises(DecodeError) as info:
        event_from_json(_with(FAILED, "category", "cosmic_rays"))
    assert info.value.path == "category"
    assert "transient" in info.value.message  # the message lists the allowed values
    with pytest.raises(DecodeError) as item:
        directive_from_json(_with(START, "policy.retry_on", ["timeout", "cosmic_rays"]))
    assert item.value.path == "policy.retry_on[1]"
    with pytest.raises(DecodeError) as step_class:
        directive_from_json(_with(START, "step_class", "robot"))
    assert step_class.value.path == "step_class"


@pytest.mark.parametrize("document", [{"type": "run_exploded"}, {"type": 3}, {}, [], "text"])
def test_voc_2_unknown_type_is_refused(document: object) -> None:
    """A document without a known `type` is refused at `type` (or `$` when not an object)."""
    with pytest.raises(DecodeError) as info:
        event_from_json(document)
    assert info.value.path in ("type", "$")


def test_voc_2_directive_is_not_an_event() -> None:
    """A directive document given to the event decoder is refused at `type`."""
    with pytest.raises(DecodeError) as info:
        event_from_json(START)
    assert info.value.path == "type"


@pytest.mark.parametrize("text", ["{not json", "", '{"type": "effect_started",', b"\xff\xfe"])
def test_voc_3_non_json_text_is_refused_at_root(text: str | bytes) -> None:
    """Text that is not JSON raises DecodeError at `$`."""
    with pytest.raises(DecodeError) as info:
        loads_event(text)
    assert info.value.path == "$"


@pytest.mark.parametrize(
    ("field", "literal"), [("at", "NaN"), ("at", "Infinity"), ("at", "-Infinity")]
)
def test_voc_3_non_finite_number_field_is_refused(field: str, literal: str) -> None:
    """NaN and infinities in a number field are refused at that field."""
    text = json.dumps(STARTED).replace('"at": 1.5', f'"{field}": {literal}')
    with pytest.raises(DecodeError) as info:
        loads_event(text)
    assert info.value.path == field


def test_voc_3_non_finite_number_in_a_payload_is_refused() -> None:
    """A non-finite number inside a JSON payload is refused at the payload's field."""
    completed = {
        "type": "effect_completed",
        "event_id": "e3",
        "conversation_id": "c1",
        "run_id": "r1",
        "step_id": "s1",
        "effect_id": "r1/s1/1",
        "attempt": 1,
        "output": {"score": float("nan")},
    }
    with pytest.raises(DecodeError) as info:
        event_from_json(completed)
    assert info.value.path == "output"
    with pytest.raises(DecodeError) as directive:
        directive_from_json(_with(START, "delay", float("inf")))
    assert directive.value.path == "delay"
