"""Typed arguments: a tool's or system function's JSON arguments checked against its signature.

Theory of operation
-------------------
A step names a registered callable and gives its `arguments` as a JSON object. Before the
callable runs, the arguments are checked against its signature, so a step written wrong fails as
`invalid_input` (not retryable: the same input fails the same way) with a message that names the
argument, instead of as an `executor_error` from deep inside the call, or not at all:

- a name the callable does not take (unless it has `**kwargs`), and a required parameter with no
  argument, are refused;
- each argument's value is checked against its parameter's annotation. A JSON value is `None`, a
  `bool`, an `int`, a `float`, a `str`, a `list` or a `dict` with `str` keys, so the annotations
  understood are exactly those that describe such values: `None`, `bool`, `int` (not a `bool`),
  `float` (an `int` too, as in the typing rules), `str`, `list[T]` and the read-only
  `Sequence[T]` / `Collection[T]` / `Iterable[T]`, `dict[str, T]` and `Mapping[str, T]`, unions
  and `Optional`, `Literal[...]`, a `TypedDict` (its required keys present, no other keys, each
  value checked), and `NewType`s of these. `Any`, `object` and no annotation accept anything. Any
  other annotation (a class, an enum, a `tuple`) describes no JSON value: an argument for it is
  refused, and the message says why.

The plan for a callable is built once, when it is registered: the annotations are resolved then
(`typing.get_type_hints`), so an annotation that names something undefined is a `TypeError` at
registration, as is a required positional-only parameter (named arguments can never reach it).
A callable without an inspectable signature (some builtins) is called unchecked.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import (
    Annotated,
    Any,
    Final,
    Literal,
    NewType,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
)

# A value check: None when `value` fits, else what is wrong with it (said of `value`'s place).
Check = Callable[[Any, str], str | None]

_JSON_NAMES: Final = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}
_SEQUENCES: Final = frozenset(
    {
        list,
        collections.abc.Sequence,
        collections.abc.Collection,
        collections.abc.Iterable,
        collections.abc.MutableSequence,
    }
)
_MAPPINGS: Final = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def _kind(value: Any) -> str:
    """How a value reads in a message: its JSON kind and, when short, the value itself."""
    name = _JSON_NAMES.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} {text}" if len(text) <= 40 else name


def _exact(cls: type) -> Check:
    def check(value: Any, where: str) -> str | None:
        if type(value) is cls:
            return None
        return f"{where} must be {_JSON_NAMES[cls]}, got {_kind(value)}"

    return check


def _number(value: Any, where: str) -> str | None:
    if type(value) is float or type(value) is int:
        return None
    return f"{where} must be a number, got {_kind(value)}"


def _null(value: Any, where: str) -> str | None:
    return None if value is None else f"{where} must be null, got {_kind(value)}"


_SIMPLE: Final[dict[Any, Check]] = {
    type(None): _null,
    None: _null,
    bool: _exact(bool),
    int: _exact(int),  # `type(True) is bool`: a boolean is not an integer argument
    float: _number,
    str: _exact(str),
}


def compile_check(annotation: Any) -> Check | None:
    """The check for values of `annotation`; None when it accepts every JSON value."""
    if annotation in (Any, object, inspect.Parameter.empty):
        return None
    simple = _SIMPLE.get(annotation) if _hashable(annotation) else None
    if simple is not None:
        return simple
    if isinstance(annotation, NewType):
        return compile_check(annotation.__supertype__)
    if typing.is_typeddict(annotation):
        return _typed_dict(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or origin is types.UnionType:
        return _union(annotation, args)
    if origin is Literal:
        return _literal(args)
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return _sequence(compile_check(args[0]) if args else None)
    if annotation in _MAPPINGS or origin in _MAPPINGS:
        if args and args[0] not in (str, Any):
            return _never(annotation, "JSON object keys are strings")
        return _mapping(compile_check(args[1]) if args else None)
    return _never(annotation, "no JSON value is one")


def _hashable(annotation: Any) -> bool:
    try:
        hash(annotation)
    except TypeError:
        return False
    return True


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def _never(annotation: Any, why: str) -> Check:
    def check(value: Any, where: str) -> str | None:
        return f"{where} is annotated {_describe(annotation)} and {why}; got {_kind(value)}"

    return check


def _kinds(annotation: Any) -> frozenset[type]:
    """The Python types of the JSON values an annotation's outer level admits (for messages)."""
    if _hashable(annotation) and annotation in _SIMPLE:
        return frozenset({int, float} if annotation is float else {annotation or type(None)})
    if isinstance(annotation, NewType):
        return _kinds(annotation.__supertype__)
    origin, args = get_origin(annotation), get_args(annotation)
    if typing.is_typeddict(annotation) or annotation in _MAPPINGS or origin in _MAPPINGS:
        return frozenset({dict})
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return frozenset({list})
    if origin is Literal:
        return frozenset(type(value) for value in args)
    if origin is Union or origin is types.UnionType:
        return frozenset().union(*(_kinds(arg) for arg in args))
    return frozenset()


def _union(annotation: Any, args: tuple[Any, ...]) -> Check | None:
    checks = [compile_check(arg) for arg in args]
    if any(check is None for check in checks):
        return None  # `X | Any` accepts anything
    members = [(check, _kinds(arg)) for check, arg in zip(checks, args, strict=True)]

    def check(value: Any, where: str) -> str | None:
        problems = []
        for member, kinds in members:
            assert member is not None
            problem = member(value, where)
            if problem is None:
                return None
            if type(value) in kinds:
                problems.append(problem)
        if len(problems) == 1:  # one member is of the value's kind: its own problem says most
            return problems[0]
        return f"{where} must be {_describe(annotation)}, got {_kind(value)}"

    return check


def _literal(values: tuple[Any, ...]) -> Check:
    def check(value: Any, where: str) -> str | None:
        for literal in values:
            if type(value) is type(literal) and value == literal:
                return None
        allowed = ", ".join(repr(v) for v in values)
        return f"{where} must be one of {allowed}, got {_kind(value)}"

    return check


def _sequence(item: Check | None) -> Check:
    def check(value: Any, where: str) -> str | None:
        if type(value) is not list:
            return f"{where} must be an array, got {_kind(value)}"
        if item is not None:
            for index, element in enumerate(value):
                problem = item(element, f"{where}[{index}]")
                if problem is not None:
                    return problem
        return None

    return check


def _mapping(item: Check | None) -> Check:
    def check(value: Any, where: str) -> str | None:
        if type(value) is not dict:
            return f"{where} must be an object, got {_kind(value)}"
        for key, element in value.items():
            if type(key) is not str:
                return f"{where} must have string keys, got {key!r}"
            if item is not None:
                problem = item(element, f"{where}[{key!r}]")
                if problem is not None:
                    return problem
        return None

    return check


def _typed_dict(annotation: Any) -> Check:
    fields: dict[str, Check | None] = {}
    required = set(annotation.__required_keys__)
    # The `Required` / `NotRequired` markers are read from the resolved hints: a TypedDict whose
    # annotations were text when it was made (`from __future__ import annotations`) has them
    # only there, not in its `__required_keys__`.
    for name, hint in typing.get_type_hints(annotation, include_extras=True).items():
        while get_origin(hint) in (Annotated, Required, NotRequired):
            if get_origin(hint) is Required:
                required.add(name)
            elif get_origin(hint) is NotRequired:
                required.discard(name)
            hint = get_args(hint)[0]
        fields[name] = compile_check(hint)

    def check(value: Any, where: str) -> str | None:
        if type(value) is not dict:
            return f"{where} must be an object ({annotation.__qualname__}), got {_kind(value)}"
        missing = sorted(required - value.keys())
        if missing:
            return f"{where} is missing key(s) {', '.join(map(repr, missing))}"
        for key, element in value.items():
            if key not in fields:
                return f"{where} has key {key!r}, which {annotation.__qualname__} does not"
            field = fields[key]
            if field is not None:
                problem = field(element, f"{where}[{key!r}]")
                if problem is not None:
                    return problem
        return None

    return check


class Arguments:
    """How one callable's arguments are checked (built once, when it is registered)."""

    __slots__ = ("checks", "extra", "name", "names", "required")

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.checks: dict[str, Check] = {}
        self.extra: Check | None = None  # the check of `**kwargs` values, when there is one
        self.names: frozenset[str] | None = frozenset()  # None: any name (`**kwargs`)
        self.required: tuple[str, ...] = ()
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # no signature to read (some builtins): call unchecked
            self.names = None
            return
        hints = _hints(name, function)
        names: set[str] = set()
        required: list[str] = []
        for parameter in signature.parameters.values():
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            hint = hints.get(parameter.name, parameter.annotation)
            if isinstance(hint, str):  # an annotation left as text (no hints for this callable)
                hint = Any
            check = compile_check(hint)
            if kind is inspect.Parameter.VAR_KEYWORD:
                self.names = None
                self.extra = check
                continue
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                if parameter.default is inspect.Parameter.empty:
                    raise TypeError(
                        f"{name!r}: its parameter {parameter.name!r} is positional-only and "
                        "required, but a step's arguments are given by name; make it a regular "
                        "parameter"
                    )
                continue
            names.add(parameter.name)
            if parameter.default is inspect.Parameter.empty:
                required.append(parameter.name)
            if check is not None:
                self.checks[parameter.name] = check
        if self.names is not None:
            self.names = frozenset(names)
        self.required = tuple(required)

    def problem(self, arguments: Mapping[str, Any]) -> str | None:
        """What is wrong with `arguments` for this callable, or None when they fit."""
        if not arguments:
            if not self.required:
                return None
        elif self.names is not None:
            unknown = [key for key in arguments if key not in self.names]
            if unknown:
                takes = ", ".join(sorted(self.names)) or "no arguments"
                return (
                    f"{self.name!r} takes no argument {', '.join(map(repr, unknown))} "
                    f"(it takes: {takes})"
                )
        missing = [key for key in self.required if key not in arguments]
        if missing:
            return f"{self.name!r} is missing required argument(s) {', '.join(map(repr, missing))}"
        checks, extra = self.checks, self.extra
        for key, value in arguments.items():
            check = checks.get(key, extra)
            if check is not None:
                problem = check(value, f"argument {key!r} of {self.name!r}")
                if problem is not None:
                    return problem
        return None


def _hints(name: str, function: Callable[..., Any]) -> dict[str, Any]:
    """The resolved annotations of a function, a partial's function or a callable's `__call__`."""
    target: Any = function
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        call = getattr(type(target), "__call__", None)  # noqa: B004 - the method, not callable()
        if call is None or not inspect.isfunction(call):
            return {}  # a builtin or a C callable: its annotations, if any, stay as given
        target = call
    try:
        return typing.get_type_hints(target)
    except Exception as exc:
        raise TypeError(
            f"{name!r}: its annotations cannot be resolved ({type(exc).__name__}: {exc}); "
            "annotate it with names defined at module level, or with JSON types"
        ) from None
