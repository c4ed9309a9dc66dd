"""JSON Schemas generated from the vocabulary's dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given

from interruptible import (
    Backoff,
    StepDefinition,
    StepFailure,
    StepPolicy,
    StepResult,
    json_schema,
    to_json,
    type_name,
)
from interruptible._vocabulary import DIRECTIVE_TYPES, EVENT_TYPES
from interruptible.testing.strategies import directives, events

TYPED = [*EVENT_TYPES.values(), *DIRECTIVE_TYPES.values()]
NESTED = [StepDefinition, StepPolicy, Backoff, StepResult, StepFailure]


def _required(cls: type[Any]) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@pytest.mark.parametrize("cls", TYPED + NESTED, ids=lambda cls: cls.__name__)
def test_voc_4_schema_properties_are_the_fields(cls: type[Any]) -> None:
    """Properties are exactly the fields (plus `type`), defaults are optional, nothing else goes."""
    schema = json_schema(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    typed = cls in TYPED
    assert list(schema["properties"]) == (["type"] if typed else []) + fields
    assert schema["required"] == (["type"] if typed else []) + _required(cls)
    assert schema["additionalProperties"] is False
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    if typed:
        assert schema["properties"]["type"] == {"const": type_name_of(cls)}
    for ref in _refs(schema):
        assert ref.removeprefix("#/$defs/") in schema["$defs"]


def type_name_of(cls: type[Any]) -> str:
    return next(name for name, c in {**EVENT_TYPES, **DIRECTIVE_TYPES}.items() if c is cls)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@given(events() | directives())
def test_voc_4_encoded_documents_fit_their_schema_shape(value: Any) -> None:
    """Every encoded document has only schema properties and every required one."""
    document = to_json(value)
    schema = json_schema(type(value))
    assert set(document) <= set(schema["properties"])
    assert set(schema["required"]) <= set(document)
    assert document["type"] == type_name(value)
