"""The codec's limits (VOC-6): deep or huge documents are refused with a short DecodeError."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interruptible import (
    DecodeError,
    EffectStarted,
    EmitOutput,
    Event,
    FailureCategory,
    RunRequested,
    StepFailure,
    directive_from_json,
    dumps,
    event_from_json,
    loads_directive,
    loads_event,
    to_json,
    value_to_json,
)
from interruptible._limits import MAX_DOCUMENT_DEPTH, text_exceeds
from interruptible.testing.strategies import events, hostile_json_values

REQUESTED = to_json(RunRequested("e1", "c1", "r1", "pipeline", None, "alice", False, 1.0))

# A DecodeError's message names a field and a value; it stays short whatever the value is.
MESSAGE_BOUND = 400


def nested(depth: int, leaf: Any = 1) -> Any:
    """`leaf` inside `depth` lists (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def with_field(name: str, value: object) -> dict[str, Any]:
    return {**REQUESTED, name: value}


def refused(decode: Any, document: object) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(document)
    assert len(info.value.message) <= MESSAGE_BOUND, info.value.message[:200]
    return info.value


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH, 985, 5_000, 100_000])
def test_voc_6_deep_json_text_is_refused_with_a_decode_error(depth: int) -> None:
    """Text nested deeper than the document limit is refused at `$`, never a RecursionError,
    whatever the depth (the check reads the text before the parser recurses)."""
    text = json.dumps(REQUESTED).replace('"input": null', f'"input": {"[" * depth}{"]" * depth}')
    error = refused(loads_event, text)
    assert error.path == "$" and "deep" in error.message
    refused(loads_event, text.encode())
    directive = dumps(EmitOutput("c1", "r1", "completed", None, None, "e1")).replace(
        '"output":null', f'"output":{"[" * depth}{"]" * depth}'
    )
    refused(loads_directive, directive)


def test_voc_6_a_document_at_the_depth_limit_decodes() -> None:
    """A payload that brings the event to exactly the document limit decodes, as text and as
    a document; one level more is refused both ways."""
    fits = with_field("input", nested(MAX_DOCUMENT_DEPTH - 1, None))
    assert event_from_json(fits).input == fits["input"]
    assert loads_event(json.dumps(fits)).input == fits["input"]
    over = with_field("input", nested(MAX_DOCUMENT_DEPTH, None))
    assert refused(event_from_json, over).path == "input"
    assert refused(loads_event, json.dumps(over)).path == "$"


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH, 985, 5_000, 100_000])
@pytest.mark.parametrize("field", ["input", "event_id", "principal", "at", "supersede"])
def test_voc_6_a_deep_value_in_a_document_is_refused_at_its_field(depth: int, field: str) -> None:
    """A deep value in any field of a decoded document (a payload, an id, a number, a bool)
    is a DecodeError naming that field, with a short message."""
    assert refused(event_from_json, with_field(field, nested(depth))).path == field


def test_voc_6_a_deep_value_inside_a_nested_record_is_refused() -> None:
    """A payload inside a nested record (a failure's details) counts that record's level."""
    error = value_to_json(StepFailure(FailureCategory.transient, "flaky"))
    document = to_json(EmitOutput("c1", "r1", "failed", None, None, "e1"))
    fits = {**document, "error": {**error, "details": nested(MAX_DOCUMENT_DEPTH - 2, None)}}
    assert directive_from_json(fits).error is not None
    over = {**document, "error": {**error, "details": nested(MAX_DOCUMENT_DEPTH - 1, None)}}
    assert refused(directive_from_json, over).path == "error.details"


HUGE = 10**5000  # more digits than Python converts to text by default (4,300)


@pytest.mark.parametrize("field", ["input", "event_id", "principal", "at", "supersede", "run_id"])
def test_voc_6_a_huge_integer_in_any_field_is_a_short_decode_error(field: str) -> None:
    """A 5,000-digit integer anywhere is refused with a DecodeError whose message stays short
    (the value is described, not printed)."""
    assert refused(event_from_json, with_field(field, HUGE)).path == field
    assert refused(event_from_json, with_field(field, [{"x": HUGE}])).path == field


def test_voc_6_a_huge_integer_in_text_or_as_a_key_is_a_short_decode_error() -> None:
    """The same integer as JSON text, or as an unknown key of a document, is a DecodeError."""
    text = json.dumps(REQUESTED).replace('"input": null', f'"input": {"9" * 5000}')
    assert refused(loads_event, text).path == "$"
    refused(event_from_json, {**REQUESTED, HUGE: 1})
    refused(event_from_json, {**REQUESTED, "k" * 1_000_000: 1})
    refused(event_from_json, {**REQUESTED, "type": "x" * 1_000_000})


def test_voc_6_a_cycle_is_refused_as_too_deep() -> None:
    """A payload that contains itself is infinitely deep: a DecodeError, not a RecursionError."""
    cycle: list[Any] = []
    cycle.append(cycle)
    assert refused(event_from_json, with_field("input", cycle)).path == "input"
    assert refused(event_from_json, with_field("event_id", cycle)).path == "event_id"


def test_voc_6_an_integer_field_takes_what_json_text_can_carry() -> None:
    """An integer field holds at most 4,300 digits, as JSON text parsed by Python does."""
    document = to_json(EffectStarted("e1", "c1", "r1", "s1", "r1/s1/1", 1, at=1.5))
    assert event_from_json({**document, "attempt": 10**4300 - 1}).attempt == 10**4300 - 1
    assert refused(event_from_json, {**document, "attempt": 10**4300}).path == "attempt"
    assert refused(event_from_json, {**document, "attempt": -HUGE}).path == "attempt"


@pytest.mark.parametrize("key", [1, 1.5, True, None])
def test_voc_6_an_object_key_that_is_not_a_string_is_refused(key: object) -> None:
    """A payload whose object has a key that is not a string would come back with the key as
    text (another value): `dumps` refuses it (TypeError), decoding refuses it at the field; a
    string key that looks like a number is fine."""
    event = RunRequested("e1", "c1", "r1", "pipeline", [{"a": {key: "x"}}])
    with pytest.raises(TypeError, match="not a string"):
        dumps(event)
    assert refused(event_from_json, with_field("input", [{"a": {key: "x"}}])).path == "input"
    looks_like = RunRequested("e1", "c1", "r1", "pipeline", {"1": {"null": 2}})
    assert loads_event(dumps(looks_like)) == looks_like


@pytest.mark.parametrize("text", ["\ud800\udc00", "\udcff", "a\udfffb"])
@pytest.mark.parametrize("field", ["input", "event_id", "principal"])
def test_voc_6_dumps_refuses_a_string_that_is_not_unicode_text(text: str, field: str) -> None:
    """A string holding a surrogate code point (lone, or a high and a low one that a reader
    would join into one character) would not come back equal: `dumps` refuses it with
    `ValueError`, in an id and in a payload (as a key too); text beyond U+FFFF and Hangul
    round-trip."""
    event = RunRequested("e1", "c1", "r1", "pipeline", None, "alice")
    with pytest.raises(ValueError, match="surrogate"):
        dumps(dataclasses.replace(event, **{field: text}))
    with pytest.raises(ValueError, match="surrogate"):
        dumps(dataclasses.replace(event, input={text: 1}))
    fine = dataclasses.replace(event, **{field: "\U0001f600 \ud55c\uae00"})
    assert loads_event(dumps(fine)) == fine


def test_voc_6_decoding_reads_surrogate_escapes_as_json_does() -> None:
    """A reader takes JSON text as it is: a lone surrogate escape decodes to that code point
    (another writer's text; `dumps` never writes one)."""
    text = json.dumps(REQUESTED).replace('"input": null', '"input": "\\udcff"')
    assert loads_event(text).input == "\udcff"


@given(event=events(), value=hostile_json_values(max_bytes=65_536), data=st.data())
def test_voc_6_a_hostile_value_in_any_field_decodes_or_is_a_short_decode_error(
    event: Event, value: Any, data: st.DataObject
) -> None:
    """Any field of any event replaced by a hostile value (deep, huge, non-finite, not Unicode
    text): `event_from_json` gives an event or a `DecodeError` with a short message, and so
    does `loads_event` on the document's text (when `json.dumps` can write one)."""
    document = to_json(event)
    document[data.draw(st.sampled_from(sorted(document)))] = value
    decoded(event_from_json, document)
    try:
        text = json.dumps(document)  # NaN and Infinity written as such: not JSON
    except (TypeError, ValueError, RecursionError):
        return
    decoded(loads_event, text)
    decoded(loads_event, text.encode("utf-8", "surrogatepass"))


@given(
    event=events(),
    depth=st.sampled_from([MAX_DOCUMENT_DEPTH - 1, MAX_DOCUMENT_DEPTH, 985, 5_000]),
    noise=st.sampled_from(["", '"]', "\\", '"\\"', b"\xff".decode("latin-1")]),
    as_bytes=st.booleans(),
)
def test_voc_6_hostile_text_decodes_or_is_a_short_decode_error(
    event: Event, depth: int, noise: str, as_bytes: bool
) -> None:
    """An event's text with a deep array spliced in (around strings and stray quotes) and
    bytes that are not UTF-8: `loads_event` gives an event or a short `DecodeError`."""
    text = dumps(event)
    cut = len(text) // 2
    spliced = text[:cut] + noise + "[" * depth + noise + "]" * depth + text[cut:]
    if as_bytes:
        decoded(loads_event, spliced.encode("latin-1", "replace") + b"\xff\xfe")
    else:
        decoded(loads_event, spliced)


def decoded(decode: Any, document: object) -> None:
    try:
        decode(document)
    except DecodeError as error:
        assert len(error.message) <= MESSAGE_BOUND, error.message[:200]


def test_voc_6_the_depth_check_is_exact_at_the_edge_for_empty_arrays() -> None:
    """The shortest text of a depth (empty arrays, two characters a level) is measured, not
    waved through by the length bound: one level over the limit is refused."""
    over = with_field("input", nested(MAX_DOCUMENT_DEPTH - 1, []))
    assert refused(event_from_json, over).path == "input"
    fits = with_field("input", nested(MAX_DOCUMENT_DEPTH - 2, []))
    assert event_from_json(fits).input == fits["input"]


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 300 + '"never closed', True),
        ('"\\\\"' + "[" * 300, True),
        ('["a\\\\"' + "[" * 300, True),
        ('["a\\"' + "[" * 300, False),
        ('"' + "[" * 600 + '"' + "x" * 600, False),
        ("[" * 100 + '"\\\\\\\\"' + "[" * 200, True),
        ("]" + "[" * 300, True),
        ("[" * 256 + "]" * 256, False),
    ],
)
def test_voc_6_text_depth_skips_strings_and_escapes(text: str, deep: bool) -> None:
    """Brackets inside strings do not count, escaped quotes and backslashes do not end or start
    one, and brackets before text a parser would fail on still count (it recurses into them)."""
    assert text_exceeds(text, MAX_DOCUMENT_DEPTH) is deep
