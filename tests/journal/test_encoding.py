"""The journal's record format: `dumps` writes what the codec's field-by-field encoding says."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interruptible import (
    EffectCompleted,
    EffectFailed,
    EffectStarted,
    Event,
    FailureCategory,
    RunRequested,
    dumps,
    loads_event,
    to_json,
)
from interruptible._codec import _BY_CLASS
from interruptible.testing.strategies import directives, events, json_values


def reference_dumps(value: Any) -> str:
    """The record format written out the slow way: each field through its codec, then json."""
    record = _BY_CLASS[type(value)]
    document: dict[str, object] = {"type": record.type_name}
    for name, codec, _ in record.fields:
        document[name] = codec.encode(getattr(value, name))
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


def outcome(encode: Any, value: Any) -> tuple[object, ...]:
    """What `encode(value)` gives: its text, or the type and message of what it raised."""
    try:
        return ("text", encode(value))
    except Exception as exc:
        return ("error", type(exc), str(exc))


@given(st.one_of(events(), directives()))
def test_jrn_2_dumps_writes_the_codec_encoding(value: Any) -> None:
    """For any event or directive, the generated `dumps` and `to_json` equal the codec's."""
    assert dumps(value) == reference_dumps(value)
    assert to_json(value) == json.loads(reference_dumps(value))


@given(events(), st.data())
def test_jrn_2_dumps_agrees_for_values_of_unexpected_types(event: Event, data: Any) -> None:
    """A field holding another type than declared (an int time, a bool attempt) is still written
    exactly as json.dumps writes it."""
    odd = data.draw(st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False)))
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(event)]))
    changed = dataclasses.replace(event, **{field: odd})  # type: ignore[arg-type]
    assert outcome(dumps, changed) == outcome(reference_dumps, changed)


@pytest.mark.parametrize(
    "event",
    [
        RunRequested("e1", "c1", "r1", "m", at=5),
        EffectStarted("e1", "c1", "r1", "s", "x", True),  # type: ignore[arg-type]
        EffectCompleted("e1", "c1", "r1", "s", "x", 1, output=("a", 1.5, None)),
        EffectFailed("e1", "c1", "r1", "s", "x", 1, FailureCategory.timeout, "m\u00e9\n\"'\\"),
        EffectStarted("e1", "c1", "r1", "s", "x", 1, at=-0.0, cause_id="e\u2028"),
    ],
)
def test_jrn_2_dumps_of_edge_values(event: Event) -> None:
    """Int times, bools, tuples, escapes and -0.0 are written as json.dumps writes them."""
    assert dumps(event) == reference_dumps(event)
    assert dumps(event).isascii()


def test_jrn_10_values_that_are_not_json_fail_as_json_dumps_fails() -> None:
    """NaN, an object, a cycle: `dumps` raises the error json.dumps raises, with its message."""
    cycle: list[Any] = []
    cycle.append(cycle)
    for payload in (math.nan, math.inf, object(), cycle, {"x": {1, 2}}):
        event = EffectCompleted("e1", "c1", "r1", "s", "x", 1, output={"v": payload})
        expected = outcome(reference_dumps, event)
        assert expected[0] == "error"
        assert outcome(dumps, event) == expected
    nan_time = EffectStarted("e1", "c1", "r1", "s", "x", 1, at=math.nan)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        dumps(nan_time)


@given(events(), json_values())
def test_jrn_2_payloads_round_trip_through_dumps(event: Event, payload: Any) -> None:
    """Any event, and an event carrying any JSON payload, written by `dumps` decodes to the same
    event, and reads as `json.dumps` would have written it."""
    completed = EffectCompleted("e1", "c1", "r1", "s", "x", 1, output=payload)
    for each in (event, completed):
        assert loads_event(dumps(each)) == each
        assert json.loads(dumps(each)) == json.loads(reference_dumps(each))
