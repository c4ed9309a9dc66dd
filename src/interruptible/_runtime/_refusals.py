"""Refusals: why a step's arguments do not fit, said so that a person can act on it.

A refusal names the callable, the argument and the path inside it (`trip.dates[1]`), what the
value should have been (pydantic's words, "should be a valid integer") and what it was, by its
JSON kind and a short form (TOOL-1). pydantic's `loc` also holds the names of union members it
tried; a path keeps only the steps that exist in the value, so a reader can follow it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any, Final

import pydantic
import pydantic_core

from .._errors import InterruptibleError

# A value in a message: bounded, so that describing a large argument costs next to nothing.
_SHORT: Final = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 30, 30
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 4

# What an argument's value is called in a message, by its JSON kind.
_JSON_NAMES: Final = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    tuple: "an array",
    dict: "an object",
}


class ArgumentsRefused(InterruptibleError, ValueError):
    """A step's arguments do not fit its callable; the executor fails the step `invalid_input`."""

    code = "invalid_arguments"

    def __init__(self, tool: str, argument: str | None, problem: str) -> None:
        self.tool = tool
        self.argument = argument  # the path, `trip.dates[1]`; None for the object as a whole
        self.problem = problem
        if argument is None:  # said of the arguments as a whole: "'f' takes no argument 'x'"
            super().__init__(f"{tool!r} {problem}")
        else:
            super().__init__(f"{tool!r}: argument {argument!r} {problem}")


def _kind(value: Any) -> str:
    """How a value reads in a message: its JSON kind and a short form of the value."""
    return f"{_JSON_NAMES.get(type(value), type(value).__name__)} {_SHORT.repr(value)}"


def _not_json(value: Any) -> Any:
    # Called by pydantic's serializer for what it cannot write: another mapping is an object (a
    # step input built in Python may hold one; its journal round trip makes it a dict).
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def to_json(tool: str, arguments: Mapping[Any, Any]) -> bytes:
    """The arguments as JSON text, or `ArgumentsRefused` when they are no JSON object."""
    strange = [key for key in arguments if type(key) is not str]
    if strange:
        raise ArgumentsRefused(
            tool, None, f"has an argument name that is not a string: {_SHORT.repr(strange[0])}"
        )
    try:
        return pydantic_core.to_json(arguments, fallback=_not_json)
    except pydantic_core.PydanticSerializationError as exc:
        if "depth" in str(exc):
            raise ArgumentsRefused(
                tool, None, "has an argument nested too deeply to be checked"
            ) from None
        raise ArgumentsRefused(
            tool, None, f"has arguments that are not JSON values ({exc})"
        ) from None


def _path(arguments: Any, loc: tuple[int | str, ...]) -> str:
    """`trip.dates[1]`: the place `loc` names in `arguments`.

    pydantic's `loc` also holds the names of union members it tried (`int`, `list[str]`); only the
    steps that exist in the value are kept, so the path is one a reader can follow.
    """
    path, value = "", arguments
    for step in loc:
        inside = (isinstance(value, Mapping) and step in value) or (
            isinstance(value, list | tuple) and isinstance(step, int) and step < len(value)
        )
        if inside:
            value = value[step]
        elif path and not (isinstance(value, Mapping) and isinstance(step, str)):
            continue  # a union member's name, or a key into what is not an object
        if type(step) is int:
            path += f"[{step}]"
        elif not path:
            path = str(step)
        elif str(step).isidentifier():
            path += f".{step}"
        else:
            path += f"[{str(step)!r}]"
    return path


def _what(error: Mapping[str, Any]) -> str:
    message: str = error["msg"]
    if error["type"] == "missing":
        return "is required and missing"
    if error["type"] == "extra_forbidden":
        return "is not a field it takes"
    if message.startswith("Input should "):
        message = message[len("Input ") :]
    return f"{message[:1].lower()}{message[1:]}, got {_kind(error['input'])}"


def refusal(
    tool: str,
    arguments: Mapping[str, Any],
    error: pydantic.ValidationError,
    takes_names: tuple[str, ...] = (),
) -> ArgumentsRefused:
    """The first of pydantic's errors as a refusal naming the argument and its path."""
    errors = error.errors(include_url=False)
    top = [e for e in errors if len(e["loc"]) == 1]
    # A name it does not take first: a misspelt name is also why a required one is missing.
    unknown = [str(e["loc"][0]) for e in top if e["type"] == "extra_forbidden"]
    if unknown:
        takes = ", ".join(sorted(takes_names)) or "no arguments"
        return ArgumentsRefused(
            tool, None, f"takes no argument {', '.join(map(repr, unknown))} (it takes: {takes})"
        )
    missing = [str(e["loc"][0]) for e in top if e["type"] == "missing"]
    if missing:
        return ArgumentsRefused(
            tool, None, f"is missing required argument(s) {', '.join(map(repr, missing))}"
        )
    first = errors[0]
    path = _path(arguments, first["loc"])
    # A union: every member's complaint is about the same place; say them together.
    same = [e for e in errors if _path(arguments, e["loc"]) == path]
    if len(same) > 1:
        reasons = "; ".join(_what(e).split(", got ")[0] for e in same)
        return ArgumentsRefused(
            tool, path, f"fits no member of its union ({reasons}), got {_kind(first['input'])}"
        )
    return ArgumentsRefused(tool, path, _what(first))
