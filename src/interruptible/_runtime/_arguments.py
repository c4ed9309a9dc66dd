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

The same walk over an annotation gives its JSON Schema (`JsonType`), so `tool_schemas` tells a
model exactly what the check admits, with one known difference: a JSON Schema `integer` (or a
numeric `enum` member) also matches a float with no fractional part, such as `2.0`, which the
check refuses for an `int` parameter (Python keeps `2.0` a float).

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
    NamedTuple,
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


class JsonType(NamedTuple):
    """What an annotation says of a JSON value, compiled once: its check, its JSON Schema, and
    the Python types of the values its outer level admits (for choosing a union's message)."""

    check: Check | None  # None: every JSON value fits
    schema: dict[str, Any]
    kinds: frozenset[type]


_ANYTHING: Final = JsonType(None, {}, frozenset(_JSON_NAMES))


def _exact(cls: type, schema_type: str) -> JsonType:
    def check(value: Any, where: str) -> str | None:
        if type(value) is cls:
            return None
        return f"{where} must be {_JSON_NAMES[cls]}, got {_kind(value)}"

    return JsonType(check, {"type": schema_type}, frozenset({cls}))


def _number(value: Any, where: str) -> str | None:
    if type(value) is float or type(value) is int:
        return None
    return f"{where} must be a number, got {_kind(value)}"


_NULL: Final = _exact(type(None), "null")
_SIMPLE: Final[dict[Any, JsonType]] = {
    type(None): _NULL,
    None: _NULL,
    bool: _exact(bool, "boolean"),
    int: _exact(int, "integer"),  # `type(True) is bool`: a boolean is not an integer argument
    float: JsonType(_number, {"type": "number"}, frozenset({int, float})),
    str: _exact(str, "string"),
}


def json_type(annotation: Any) -> JsonType:
    """What `annotation` admits of JSON values, as a check and as a JSON Schema."""
    if annotation in (Any, object, inspect.Parameter.empty):
        return _ANYTHING
    simple = _SIMPLE.get(annotation) if _hashable(annotation) else None
    if simple is not None:
        return simple
    if isinstance(annotation, NewType):
        return json_type(annotation.__supertype__)
    if typing.is_typeddict(annotation):
        return _typed_dict(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return json_type(args[0])
    if origin is Union or origin is types.UnionType:
        return _union(annotation, args)
    if origin is Literal:
        return _literal(args)
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return _sequence(json_type(args[0]) if args else _ANYTHING)
    if annotation in _MAPPINGS or origin in _MAPPINGS:
        if args and args[0] not in (str, Any):
            return _never(annotation, "JSON object keys are strings")
        return _mapping(json_type(args[1]) if args else _ANYTHING)
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


def _never(annotation: Any, why: str) -> JsonType:
    def check(value: Any, where: str) -> str | None:
        return f"{where} is annotated {_describe(annotation)} and {why}; got {_kind(value)}"

    return JsonType(check, {"not": {}}, frozenset())


def _union(annotation: Any, args: tuple[Any, ...]) -> JsonType:
    members = [json_type(arg) for arg in args]
    if any(member.check is None for member in members):
        return _ANYTHING  # `X | Any` admits anything
    kinds = frozenset().union(*(member.kinds for member in members))
    schema = {"anyOf": [member.schema for member in members]}

    def check(value: Any, where: str) -> str | None:
        problems = []
        for member in members:
            assert member.check is not None
            problem = member.check(value, where)
            if problem is None:
                return None
            if type(value) in member.kinds:
                problems.append(problem)
        if len(problems) == 1:  # one member is of the value's kind: its own problem says most
            return problems[0]
        return f"{where} must be {_describe(annotation)}, got {_kind(value)}"

    return JsonType(check, schema, kinds)


def _literal(values: tuple[Any, ...]) -> JsonType:
    def check(value: Any, where: str) -> str | None:
        for literal in values:
            if type(value) is type(literal) and value == literal:
                return None
        allowed = ", ".join(repr(v) for v in values)
        return f"{where} must be one of {allowed}, got {_kind(value)}"

    return JsonType(check, {"enum": list(values)}, frozenset(type(value) for value in values))


def _sequence(item: JsonType) -> JsonType:
    item_check = item.check

    def check(value: Any, where: str) -> str | None:
        if type(value) is not list:
            return f"{where} must be an array, got {_kind(value)}"
        if item_check is not None:
            for index, element in enumerate(value):
                problem = item_check(element, f"{where}[{index}]")
                if problem is not None:
                    return problem
        return None

    schema: dict[str, Any] = {"type": "array"}
    if item.check is not None:
        schema["items"] = item.schema
    return JsonType(check, schema, frozenset({list}))


def _mapping(item: JsonType) -> JsonType:
    item_check = item.check

    def check(value: Any, where: str) -> str | None:
        if type(value) is not dict:
            return f"{where} must be an object, got {_kind(value)}"
        for key, element in value.items():
            if type(key) is not str:
                return f"{where} must have string keys, got {key!r}"
            if item_check is not None:
                problem = item_check(element, f"{where}[{key!r}]")
                if problem is not None:
                    return problem
        return None

    schema: dict[str, Any] = {"type": "object"}
    if item.check is not None:
        schema["additionalProperties"] = item.schema
    return JsonType(check, schema, frozenset({dict}))


def _typed_dict(annotation: Any) -> JsonType:
    fields: dict[str, JsonType] = {}
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
        fields[name] = json_type(hint)
    name = annotation.__qualname__

    def check(value: Any, where: str) -> str | None:
        if type(value) is not dict:
            return f"{where} must be an object ({name}), got {_kind(value)}"
        missing = sorted(required - value.keys())
        if missing:
            return f"{where} is missing key(s) {', '.join(map(repr, missing))}"
        for key, element in value.items():
            field = fields.get(key)
            if field is None:
                return f"{where} has key {key!r}, which {name} does not"
            if field.check is not None:
                problem = field.check(element, f"{where}[{key!r}]")
                if problem is not None:
                    return problem
        return None

    return JsonType(check, _object_schema(fields, sorted(required), False), frozenset({dict}))


def _object_schema(
    fields: Mapping[str, JsonType], required: list[str], extra: JsonType | bool
) -> dict[str, Any]:
    """The JSON Schema of an object with these fields (`extra`: what other keys may hold)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {key: field.schema for key, field in fields.items()},
    }
    if required:
        schema["required"] = required
    if extra is not True:
        schema["additionalProperties"] = extra.schema if isinstance(extra, JsonType) else False
    return schema


class Arguments:
    """How one callable's arguments are checked, and described (built once, at registration)."""

    __slots__ = ("checks", "description", "extra", "fields", "name", "names", "required")

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.description = _summary(function)
        self.fields: dict[str, JsonType] = {}  # every parameter a step may name
        self.checks: dict[str, Check] = {}  # those whose annotation admits less than anything
        self.extra: JsonType | None = None  # `**kwargs`: any other name, its values of this type
        self.names: frozenset[str] | None = frozenset()  # None: any name
        self.required: tuple[str, ...] = ()
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # no signature to read (some builtins): call unchecked
            self.names = None
            self.extra = _ANYTHING
            return
        hints = _hints(name, function)
        required: list[str] = []
        for parameter in signature.parameters.values():
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            hint = hints.get(parameter.name, parameter.annotation)
            if isinstance(hint, str):  # an annotation left as text (no hints for this callable)
                hint = Any
            type_ = json_type(hint)
            if kind is inspect.Parameter.VAR_KEYWORD:
                self.extra = type_
                continue
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                if parameter.default is inspect.Parameter.empty:
                    raise TypeError(
                        f"{name!r}: its parameter {parameter.name!r} is positional-only and "
                        "required, but a step's arguments are given by name; make it a regular "
                        "parameter"
                    )
                continue
            self.fields[parameter.name] = type_
            if parameter.default is inspect.Parameter.empty:
                required.append(parameter.name)
            if type_.check is not None:
                self.checks[parameter.name] = type_.check
        self.names = None if self.extra is not None else frozenset(self.fields)
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
        checks, fields = self.checks, self.fields
        extra = None if self.extra is None else self.extra.check
        for key, value in arguments.items():
            check = checks.get(key) if key in fields else extra
            if check is not None:
                problem = check(value, f"argument {key!r} of {self.name!r}")
                if problem is not None:
                    return problem
        return None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object (what a model is told the tool takes)."""
        extra: JsonType | bool = False if self.extra is None else self.extra
        if extra is _ANYTHING:
            extra = True
        return _object_schema(self.fields, list(self.required), extra)


def tool_schemas(functions: Mapping[str, Callable[..., Any]]) -> dict[str, dict[str, Any]]:
    """OpenAI-style tool objects for registered callables, from their signatures.

    `{name: {"type": "function", "function": {"name", "description", "parameters"}}}`, where
    `parameters` is the JSON Schema of the arguments that the runtime's check admits (RT-12) and
    `description` the first paragraph of the docstring; pass it to
    `OpenAICompatibleModel(tool_schemas=...)` so the model is told what each tool takes. A tool
    registered as `inline(function)` is described as its function.
    """
    from ._executors import Inline  # which imports this module

    tools = {}
    for name, function in functions.items():
        target = function.function if isinstance(function, Inline) else function
        arguments = Arguments(name, target)
        described: dict[str, Any] = {"name": name}
        if arguments.description:
            described["description"] = arguments.description
        described["parameters"] = arguments.schema()
        tools[name] = {"type": "function", "function": described}
    return tools


def _summary(function: Callable[..., Any]) -> str:
    """The first paragraph of a callable's docstring, on one line ("" without one)."""
    target = function.func if isinstance(function, functools.partial) else function
    doc = inspect.getdoc(target) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


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
