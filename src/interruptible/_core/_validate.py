"""Cheap field checks for events handed to `reduce` (the codec checks JSON documents fully).

Built once per event class from its type hints: each field gets a tuple of accepted Python types,
and id fields must be non-empty strings. JSON payloads (`input`, `output`, `details`, ...) are
not walked here: that would cost a traversal per event, and the codec already checks them when a
journal or a foreign runtime hands us JSON.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Final

from .._record import generated_function
from .._vocabulary import EVENT_TYPES

_ID_FIELDS: Final = frozenset(
    {"event_id", "conversation_id", "run_id", "step_id", "effect_id", "mode"}
)


def _accepted(hint: Any) -> tuple[type[Any], ...] | None:
    """The Python types a field accepts, or None for any JSON value."""
    if hint is Any:
        return None
    if hint is float:
        return (float, int)
    if isinstance(hint, type):
        return (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        accepted: list[type[Any]] = []
        for arg in typing.get_args(hint):
            inner = _accepted(arg)
            if inner is None:
                return None
            accepted.extend(inner)
        return tuple(accepted)
    return None


def _plan(
    cls: type[Any],
) -> tuple[tuple[str, frozenset[type[Any]], tuple[type[Any], ...], bool], ...]:
    hints = typing.get_type_hints(cls)
    plan = []
    for f in dataclasses.fields(cls):
        accepted = _accepted(hints[f.name])
        if accepted is not None:
            plan.append((f.name, frozenset(accepted), accepted, f.name in _ID_FIELDS))
    return tuple(plan)


_PLANS: Final = {cls: _plan(cls) for cls in EVENT_TYPES.values()}


def _describe(event: object) -> str | None:
    """What is wrong with an event's fields, or None: the general check, field by field."""
    plan = _PLANS.get(type(event))
    if plan is None:
        return f"{type(event).__name__} is not an event"
    for name, exact, accepted, is_id in plan:
        value = getattr(event, name)
        kind = type(value)
        if kind not in exact and (
            not isinstance(value, accepted) or (kind is bool and bool not in exact)
        ):
            expected = " or ".join(
                "None" if option is type(None) else option.__name__ for option in accepted
            )
            return f"field {name!r} of {type(event).__name__}: expected {expected}, got {value!r}"
        if is_id and not value:
            return f"field {name!r} of {type(event).__name__}: must be a non-empty string"
        if kind is float and not math.isfinite(value):
            return f"field {name!r} of {type(event).__name__}: must be finite, got {value!r}"
    return None


def _fast_check(cls: type[Any]) -> Callable[[object], str | None]:
    """A check of `cls`'s well-formed case, written out: one exact type test per field.

    Anything unusual (a subclass, a bool for an int, an empty id, a non-finite float) falls
    back to `_describe`, which accepts what `isinstance` accepts or says what is wrong.
    """
    scope: dict[str, Any] = {"_describe": _describe, "_isfinite": math.isfinite}
    lines = ["def check(event):"]
    for name, exact, _accepted, is_id in _PLANS[cls]:
        scope[f"_exact_{name}"] = exact
        test = f"type(value) not in _exact_{name}"
        if is_id:
            test += " or not value"
        if float in exact:
            test += " or (type(value) is float and not _isfinite(value))"
        lines += [f"    value = event.{name}", f"    if {test}:", "        return _describe(event)"]
    lines.append("    return None")
    check: Callable[[object], str | None] = generated_function(
        "\n".join(lines) + "\n", scope, "check", cls.__name__
    )
    return check


_CHECKS: Final = {cls: _fast_check(cls) for cls in _PLANS}


def check_for(cls: type[Any]) -> Callable[[object], str | None]:
    """The generated field check of one event class (what `event_problem` calls for it)."""
    return _CHECKS[cls]


def event_problem(event: object) -> str | None:
    """What is wrong with an event's fields, or None when they are well formed.

    The common case costs one `type(...) in frozenset` per field, in code written out per event
    class; only a value of an unexpected exact type takes the general, `isinstance` path.
    """
    check = _CHECKS.get(type(event))
    if check is None:
        return f"{type(event).__name__} is not an event"
    return check(event)
