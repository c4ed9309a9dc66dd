"""Hypothesis strategies for every vocabulary value: events, directives, step definitions, JSON.

Theory of operation
-------------------
Values are built field by field from the dataclasses' own type hints, so a field added to an
event is generated without touching this module. `_FIELD_OVERRIDES` and `_CLASS_OVERRIDES`
narrow the few fields and classes whose type says less than the protocol (an attempt counts from
1, a backoff never shrinks); every other field takes a wide value of its type (any non-empty
text up to 16 characters for an id, integers within +-2**53, nested JSON values for a payload),
which is what a codec or a journal must survive.

`hostile_json_values` draws what an honest producer never sends and a codec, a journal or a
runtime must still meet with a typed answer (spec: VOC-6, JRN-15, JRN-16, RT-22): values nested
at the depth limits' edges and far beyond (or containing themselves), text and lists past the
size limit, integers no JSON text here carries, NaN and infinities, and strings that are not
Unicode text (lone surrogates), each alone or inside an ordinary JSON value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

from hypothesis import strategies as st

from .._limits import MAX_DOCUMENT_DEPTH, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH
from .._vocabulary import (
    DIRECTIVE_TYPES,
    EVENT_TYPES,
    Backoff,
    Directive,
    Event,
    FailureCategory,
    JsonValue,
    StepDefinition,
    StepPolicy,
)

__all__ = [
    "backoffs",
    "directives",
    "events",
    "hostile_json_values",
    "identifiers",
    "json_values",
    "step_definitions",
    "step_policies",
    "values_of",
]


def json_values(max_leaves: int = 8) -> st.SearchStrategy[JsonValue]:
    """Any JSON value: null, booleans, integers, finite floats, text, lists and objects."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def _nested(depth: int, shapes: int, leaf: object) -> object:
    """`leaf` inside `depth` lists and objects (bit i of `shapes` picks level i's), no recursion."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if shapes >> (level % 64) & 1 else [value]
    return value


def _containing_itself(as_dict: bool) -> object:
    if as_dict:
        cyclic: dict[str, object] = {}
        cyclic["self"] = cyclic
        return cyclic
    loop: list[object] = []
    loop.append(loop)
    return loop


def _huge(kind: str, max_bytes: int) -> object:
    """A value whose JSON text is `max_bytes` characters or more, or an integer to stress it."""
    if kind == "text":
        return "x" * max(max_bytes - 2, 1)  # its JSON text adds the two quotes
    if kind == "list":
        return ["y" * 1022] * max(1, max_bytes // 1024)  # 1,024 characters an item, and commas
    if kind == "beyond float":
        return 10**400  # JSON text carries it, a float field cannot
    return 10**5000 if kind == "digits" else -(10**5000)  # more digits than Python writes


def hostile_json_values(
    *, max_depth: int = 5_000, max_bytes: int = MAX_PAYLOAD_BYTES + 2
) -> st.SearchStrategy[Any]:
    """Values at or past the edges of JSON that a codec, a journal or a runtime must survive.

    - deep: nested lists and objects as deep as the limits and one level more
      (`MAX_PAYLOAD_DEPTH`, `MAX_DOCUMENT_DEPTH`), about as deep as Python's own stack (985),
      up to `max_depth`; or a value that contains itself;
    - huge: text or a list whose JSON text is `max_bytes` characters (past the payload limit by
      default), an integer of 5,000 digits, one beyond any float;
    - non-finite: NaN and the infinities;
    - invalid text: lone surrogates (not Unicode text: UTF-8 cannot encode them) and control
      characters, as values and as keys; a key that is not a string.

    Each is drawn alone or inside an ordinary JSON list or object.
    """
    edges = {
        MAX_PAYLOAD_DEPTH - 1,
        MAX_PAYLOAD_DEPTH,
        MAX_PAYLOAD_DEPTH + 1,
        MAX_DOCUMENT_DEPTH - 2,
        MAX_DOCUMENT_DEPTH - 1,
        MAX_DOCUMENT_DEPTH,
        985,
        max_depth,
    }
    depths = sorted(depth for depth in edges if 0 < depth <= max_depth)
    deep = st.builds(
        _nested, st.sampled_from(depths), st.integers(0, 2**64 - 1), st.none() | st.integers()
    ) | st.builds(_containing_itself, st.booleans())
    huge = st.builds(
        _huge,
        st.sampled_from(["text", "list", "digits", "-digits", "beyond float"]),
        st.just(max_bytes),
    )
    non_finite = st.sampled_from([float("nan"), float("inf"), float("-inf")])
    # st.text() never draws a surrogate: join characters instead.
    lone = st.characters(categories=["Cs"])
    odd_text = (
        st.lists(st.characters() | lone | st.sampled_from("\x00\x1f\u2028\ufffe"), max_size=8)
        .map("".join)
        .filter(lambda text: not text.isascii() or "\x00" in text or "\x1f" in text)
    )
    invalid_text = (
        odd_text
        | st.dictionaries(odd_text, st.none(), min_size=1, max_size=2)
        | st.sampled_from([{1: "int key"}, {(1, 2): "tuple key"}, {None: "null key"}])
    )
    hostile = deep | huge | non_finite | invalid_text
    return hostile | st.tuples(hostile, json_values(max_leaves=3), st.booleans()).map(
        lambda drawn: [drawn[1], drawn[0]] if drawn[2] else {"ok": drawn[1], "bad": drawn[0]}
    )


def identifiers() -> st.SearchStrategy[str]:
    """A non-empty id: any text, because ids arrive from callers and must survive the codec."""
    return st.text(min_size=1, max_size=16)


def backoffs() -> st.SearchStrategy[Backoff]:
    """A valid backoff: non-negative delays and a multiplier of at least 1."""
    return st.builds(
        Backoff,
        initial=st.floats(min_value=0, max_value=3600),
        multiplier=st.floats(min_value=1, max_value=10),
        max_delay=st.floats(min_value=0, max_value=86400),
    )


def step_policies() -> st.SearchStrategy[StepPolicy]:
    """A valid step policy: at least one attempt, a positive timeout or none, distinct retry_on."""
    return st.builds(
        StepPolicy,
        timeout=st.none() | st.floats(min_value=0.001, max_value=86400),
        max_attempts=st.integers(min_value=1, max_value=10),
        backoff=backoffs(),
        retry_on=st.lists(st.sampled_from(FailureCategory), unique=True, max_size=4).map(tuple),
        cancel_grace=st.floats(min_value=0.001, max_value=86400),
    )


def step_definitions() -> st.SearchStrategy[StepDefinition]:
    """A step definition of any class, with any JSON input and a valid policy."""
    return values_of(StepDefinition)


# Classes whose fields constrain one another or are checked on construction.
_CLASS_OVERRIDES: Final[dict[type[Any], Callable[[], st.SearchStrategy[Any]]]] = {
    Backoff: backoffs,
    StepPolicy: step_policies,
}

# Fields whose type admits values the protocol never produces.
_FIELD_OVERRIDES: Final[dict[str, st.SearchStrategy[Any]]] = {
    "attempt": st.integers(min_value=1, max_value=1_000),
    "sequence": st.integers(min_value=0, max_value=1_000_000),
    "at": st.floats(min_value=0, max_value=4e9),
    "delay": st.floats(min_value=0, max_value=86400),
    "policy": st.deferred(step_policies),
}


def _for_hint(hint: Any) -> st.SearchStrategy[Any]:
    if hint is Any:
        return json_values()
    if hint is str:
        return identifiers()
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(min_value=-(2**53), max_value=2**53)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return values_of(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_for_hint(arg) for arg in args))
    if hint is type(None):
        return st.none()
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(_for_hint(args[0]), max_size=4).map(tuple)
    raise TypeError(f"no strategy for field type {hint!r}")


def _for_field(name: str, hint: Any) -> st.SearchStrategy[Any]:
    if name not in _FIELD_OVERRIDES:
        return _for_hint(hint)
    # An optional field keeps its None: the override narrows only the present value.
    if type(None) in typing.get_args(hint):
        return st.none() | _FIELD_OVERRIDES[name]
    return _FIELD_OVERRIDES[name]


def values_of(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of a vocabulary dataclass, every field drawn from its type (or its override)."""
    if cls in _CLASS_OVERRIDES:
        return _CLASS_OVERRIDES[cls]()
    hints = typing.get_type_hints(cls)
    fields = {f.name: _for_field(f.name, hints[f.name]) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def events() -> st.SearchStrategy[Event]:
    """Any event of the vocabulary."""
    return st.one_of(*(values_of(cls) for cls in EVENT_TYPES.values()))


def directives() -> st.SearchStrategy[Directive]:
    """Any directive of the vocabulary."""
    return st.one_of(*(values_of(cls) for cls in DIRECTIVE_TYPES.values()))
