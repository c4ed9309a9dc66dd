"""Typed arguments: a tool's or system function's JSON arguments checked against its signature.

Theory of operation
-------------------
A step names a registered callable and gives its `arguments` as a JSON object. Before the
callable runs, the arguments are checked against its signature, so a step written wrong fails as
`invalid_input` (not retryable: the same input fails the same way) with a message that names the
argument, instead of as an `executor_error` from deep inside the call, or not at all:

- a name the callable does not take (unless it has `**kwargs`), a name that is not a string, and
  a required parameter with no argument, are refused;
- each argument's value is checked against its parameter's annotation. A JSON value is `None`, a
  `bool`, an `int`, a finite `float`, a `str`, an array or an object with `str` keys (a step
  input built in Python may hold a tuple for an array or another mapping for an object: the
  journal's JSON round trip makes them so), and the annotations understood are exactly those
  that describe such values: `None`, `bool`, `int` (not a `bool`), `float` (an `int` too, as in
  the typing rules), `str`, `list[T]` and the read-only `Sequence[T]` / `Collection[T]` /
  `Iterable[T]`, `dict[K, T]` and `Mapping[K, T]` with string keys `K` (`str`, a `Literal` of
  strings, a `NewType` of `str`), unions and `Optional`, `Literal[...]` of JSON scalars, a
  `TypedDict` (its required keys present, no other keys, each value checked; it may refer to
  itself), `NewType`s of these, and a `TypeVar` as its bound or constraints. `Any`, `object`,
  an unbound `TypeVar` and no annotation admit anything. Any other annotation (a class, an enum,
  a `tuple`) describes no JSON value: an argument for it is refused, and the message says why.

The same walk over an annotation gives its JSON Schema (`JsonType`), so `tool_schemas` tells a
model exactly what the check admits, with one known difference: JSON Schema compares numbers by
value, so it does not tell `2` from `2.0`, which the check (as Python) does: an `int` parameter
refuses `2.0`, a `Literal[2.0]` refuses `2`.

The plan for a callable is built once, when it is registered. Its parameters are read as
`inspect.signature` reads them (through `functools.wraps`: a decorator that changes the arguments
should set `__signature__`), and their annotations are resolved then (`typing.get_type_hints`;
a class by its `__init__`), so an annotation that names something undefined is a `TypeError` at
registration, as is a required positional-only parameter (named arguments can never reach it).
A callable without an inspectable signature (some builtins) is called unchecked.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import math
import reprlib
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
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from ._cancel import CancelToken

# A value check: None when `value` fits, else what is wrong with it (said of `value`'s place).
Check = Callable[[Any, str], str | None]

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
_SCALARS: Final = (type(None), bool, int, float, str)
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

# A value in a message: bounded, so that describing a large argument costs next to nothing.
_SHORT: Final = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 30, 30
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 4


def _kind(value: Any) -> str:
    """How a value reads in a message: its JSON kind and a short form of the value."""
    if isinstance(value, Mapping) and type(value) is not dict:
        value = dict(value)
    return f"{_JSON_NAMES.get(type(value), type(value).__name__)} {_SHORT.repr(value)}"


def _is_array(value: Any) -> bool:
    return type(value) is list or type(value) is tuple


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


class JsonType(NamedTuple):
    """What an annotation says of a JSON value, compiled once: its check, its JSON Schema, and
    the Python types of the values its outer level admits (for choosing a union's message)."""

    check: Check | None  # None: every JSON value fits
    schema: dict[str, Any]
    kinds: frozenset[type]


_ANYTHING: Final = JsonType(None, {}, frozenset(_JSON_NAMES))
_OBJECT_KINDS: Final = frozenset({dict})
_ARRAY_KINDS: Final = frozenset({list, tuple})


def _exact(cls: type, schema_type: str) -> JsonType:
    def check(value: Any, where: str) -> str | None:
        if type(value) is cls:
            return None
        return f"{where} must be {_JSON_NAMES[cls]}, got {_kind(value)}"

    return JsonType(check, {"type": schema_type}, frozenset({cls}))


def _number(value: Any, where: str) -> str | None:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return None
    return f"{where} must be a finite number, got {_kind(value)}"


_NULL: Final = _exact(type(None), "null")
_SIMPLE: Final[dict[Any, JsonType]] = {
    type(None): _NULL,
    None: _NULL,
    bool: _exact(bool, "boolean"),
    int: _exact(int, "integer"),  # `type(True) is bool`: a boolean is not an integer argument
    float: JsonType(_number, {"type": "number"}, frozenset({int, float})),
    str: _exact(str, "string"),
}


class _Walk:
    """One reading of a callable's annotations: the TypedDicts being read (a TypedDict that
    refers to itself gets a `$ref` and a late-bound check) and the schema's `$defs`."""

    def __init__(self) -> None:
        self.reading: dict[Any, list[Check]] = {}  # TypedDict -> its check, once it is built
        self.refs: dict[Any, str] = {}  # TypedDict that refers to itself -> its `$defs` name
        self.defs: dict[str, dict[str, Any]] = {}


def json_type(annotation: Any, walk: _Walk | None = None) -> JsonType:
    """What `annotation` admits of JSON values, as a check and as a JSON Schema."""
    walk = walk if walk is not None else _Walk()
    if annotation in (Any, object, inspect.Parameter.empty):
        return _ANYTHING
    simple = _SIMPLE.get(annotation) if _hashable(annotation) else None
    if simple is not None:
        return simple
    if isinstance(annotation, NewType):
        return json_type(annotation.__supertype__, walk)
    if isinstance(annotation, TypeVar):
        if annotation.__bound__ is not None:
            return json_type(annotation.__bound__, walk)
        if annotation.__constraints__:
            constraints = annotation.__constraints__
            return _union(Union[constraints], constraints, walk)  # noqa: UP007 - a tuple of types
        return _ANYTHING
    if _is_typed_dict(annotation):
        return _typed_dict(annotation, walk)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return json_type(args[0], walk)
    if origin is Union or origin is types.UnionType:
        return _union(annotation, args, walk)
    if origin is Literal:
        return _literal(annotation, args)
    if _is_typed_dict(origin):  # a generic TypedDict, `Page[int]`: read as its unbound form
        return _typed_dict(origin, walk)
    if annotation in _SEQUENCES or origin in _SEQUENCES:
        return _sequence(json_type(args[0], walk) if args else _ANYTHING)
    if annotation in _MAPPINGS or origin in _MAPPINGS:
        key = json_type(args[0], walk) if args else _ANYTHING
        if key.check is not None and not key.kinds <= {str}:
            return _never(annotation, "JSON object keys are strings")
        return _mapping(key, json_type(args[1], walk) if args else _ANYTHING)
    return _never(annotation, "no JSON value is one")


def _hashable(annotation: Any) -> bool:
    try:
        hash(annotation)
    except TypeError:
        return False
    return True


def _is_typed_dict(annotation: Any) -> bool:
    # `typing.is_typeddict` misses typing_extensions' TypedDicts on 3.11: read the shape.
    return (
        isinstance(annotation, type)
        and issubclass(annotation, dict)
        and hasattr(annotation, "__required_keys__")
        and hasattr(annotation, "__total__")
    )


def _describe(annotation: Any) -> str:
    """An annotation as a reader writes it: `list[Query] | None`, not `typing.Optional[...]`."""
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, NewType | TypeVar):
        return str(annotation.__name__)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or origin is types.UnionType:
        return " | ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(arg) for arg in args)}]"
    if origin is Annotated:
        return _describe(args[0])
    if origin is not None:
        name = getattr(origin, "__qualname__", None) or repr(origin)
        return f"{name}[{', '.join(_describe(arg) for arg in args)}]" if args else name
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def _never(annotation: Any, why: str) -> JsonType:
    def check(value: Any, where: str) -> str | None:
        return f"{where} is annotated {_describe(annotation)} and {why}; got {_kind(value)}"

    return JsonType(check, {"not": {}}, frozenset())


def _union(annotation: Any, args: tuple[Any, ...], walk: _Walk) -> JsonType:
    members = [json_type(arg, walk) for arg in args]
    if any(member.check is None for member in members):
        return _ANYTHING  # `X | Any` admits anything
    kinds = frozenset().union(*(member.kinds for member in members))
    schema = {"anyOf": [member.schema for member in members]}
    described = _describe(annotation)

    def check(value: Any, where: str) -> str | None:
        problems = []
        for member in members:
            assert member.check is not None
            problem = member.check(value, where)
            if problem is None:
                return None
            if type(value) in member.kinds or (dict in member.kinds and isinstance(value, Mapping)):
                problems.append(problem)
        if len(problems) == 1:  # one member is of the value's kind: its own problem says most
            return problems[0]
        return f"{where} must be {described}, got {_kind(value)}"

    return JsonType(check, schema, kinds)


def _literal(annotation: Any, values: tuple[Any, ...]) -> JsonType:
    # Only JSON scalars can be given as JSON; an enum member, bytes, ... never can.
    allowed = [value for value in values if type(value) in _SCALARS]
    if not allowed:
        return _never(annotation, "none of its values is a JSON value")
    listed = ", ".join(repr(v) for v in allowed)

    def check(value: Any, where: str) -> str | None:
        for literal in allowed:
            if type(value) is type(literal) and value == literal:
                return None
        return f"{where} must be one of {listed}, got {_kind(value)}"

    return JsonType(check, {"enum": allowed}, frozenset(type(value) for value in allowed))


def _sequence(item: JsonType) -> JsonType:
    item_check = item.check

    def check(value: Any, where: str) -> str | None:
        if not _is_array(value):
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
    return JsonType(check, schema, _ARRAY_KINDS)


def _mapping(key: JsonType, item: JsonType) -> JsonType:
    key_check, item_check = key.check, item.check

    def check(value: Any, where: str) -> str | None:
        if not _is_object(value):
            return f"{where} must be an object, got {_kind(value)}"
        for name, element in value.items():
            if type(name) is not str:
                return f"{where} must have string keys, got {_SHORT.repr(name)}"
            if key_check is not None:
                problem = key_check(name, f"a key of {where}")
                if problem is not None:
                    return problem
            if item_check is not None:
                problem = item_check(element, f"{where}[{name!r}]")
                if problem is not None:
                    return problem
        return None

    schema: dict[str, Any] = {"type": "object"}
    if key.check is not None:
        schema["propertyNames"] = key.schema
    if item.check is not None:
        schema["additionalProperties"] = item.schema
    return JsonType(check, schema, _OBJECT_KINDS)


def _typed_dict(annotation: Any, walk: _Walk) -> JsonType:
    name = annotation.__qualname__
    later = walk.reading.get(annotation)
    if later is not None:  # it refers to itself: check through its finished check, `$ref` it
        ref = walk.refs.setdefault(annotation, _def_name(name, walk))
        return JsonType(lambda value, where: later[0](value, where), _ref(ref), _OBJECT_KINDS)
    slot: list[Check] = []
    walk.reading[annotation] = slot
    try:
        hints = typing.get_type_hints(annotation, include_extras=True)
    except Exception as exc:
        raise TypeError(f"the annotations of {name} cannot be resolved ({_reason(exc)})") from None
    fields: dict[str, JsonType] = {}
    required = set(annotation.__required_keys__)
    # The `Required` / `NotRequired` markers are read from the resolved hints: a TypedDict whose
    # annotations were text when it was made (`from __future__ import annotations`) has them
    # only there, not in its `__required_keys__`.
    for key, hint in hints.items():
        while get_origin(hint) in (Annotated, Required, NotRequired):
            if get_origin(hint) is Required:
                required.add(key)
            elif get_origin(hint) is NotRequired:
                required.discard(key)
            hint = get_args(hint)[0]
        fields[key] = json_type(hint, walk)
    del walk.reading[annotation]

    def check(value: Any, where: str) -> str | None:
        if not _is_object(value):
            return f"{where} must be an object ({name}), got {_kind(value)}"
        missing = sorted(required - value.keys())
        if missing:
            return f"{where} is missing key(s) {', '.join(map(repr, missing))}"
        for key, element in value.items():
            field = fields.get(key)
            if field is None:
                return f"{where} has key {_SHORT.repr(key)}, which {name} does not"
            if field.check is not None:
                problem = field.check(element, f"{where}[{key!r}]")
                if problem is not None:
                    return problem
        return None

    slot.append(check)
    schema = _object_schema(fields, sorted(required), False)
    def_name = walk.refs.get(annotation)
    if def_name is not None:
        walk.defs[def_name] = schema
        schema = _ref(def_name)
    return JsonType(check, schema, _OBJECT_KINDS)


def _def_name(name: str, walk: _Walk) -> str:
    taken = set(walk.refs.values())
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


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


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Arguments:
    """How one callable's arguments are checked, and described (built once, at registration)."""

    __slots__ = ("defs", "description", "extra", "fields", "name", "required", "token")

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.description = _summary(function)
        self.fields: dict[str, JsonType] = {}  # every parameter a step may name
        # `**kwargs`: any other name, its values of this type; None: no other name
        self.extra: JsonType | None = None
        self.required: tuple[str, ...] = ()
        self.defs: dict[str, dict[str, Any]] = {}  # the schema's `$defs` (self-referring types)
        # The parameter annotated `CancelToken`: the runtime fills it, a step never names it.
        self.token: str | None = None
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # no signature to read (some builtins): call unchecked
            self.extra = _ANYTHING
            return
        hints = _hints(name, function, signature)
        walk = _Walk()
        required: list[str] = []
        for parameter in signature.parameters.values():
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if hints.get(parameter.name, parameter.annotation) is CancelToken and kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            ):
                self.token = parameter.name
                continue
            try:
                type_ = json_type(hints.get(parameter.name, parameter.annotation), walk)
            except TypeError as exc:
                raise TypeError(f"{name!r}: {exc}") from None
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
        self.required = tuple(required)
        self.defs = walk.defs

    def problem(self, arguments: Mapping[Any, Any]) -> str | None:
        """What is wrong with `arguments` for this callable, or None when they fit."""
        if not arguments:
            if not self.required:
                return None
        else:
            strange = [key for key in arguments if type(key) is not str]
            if strange:
                return f"{self.name!r}: argument names are strings, got {_SHORT.repr(strange[0])}"
            if self.extra is None:
                unknown = [key for key in arguments if key not in self.fields]
                if unknown:
                    takes = ", ".join(sorted(self.fields)) or "no arguments"
                    return (
                        f"{self.name!r} takes no argument {', '.join(map(repr, unknown))} "
                        f"(it takes: {takes})"
                    )
        missing = [key for key in self.required if key not in arguments]
        if missing:
            return f"{self.name!r} is missing required argument(s) {', '.join(map(repr, missing))}"
        fields, extra = self.fields, self.extra
        try:
            for key, value in arguments.items():
                type_ = fields.get(key, extra)
                check = None if type_ is None else type_.check
                if check is not None:
                    problem = check(value, f"argument {key!r}")
                    if problem is not None:
                        return f"{self.name!r}: {problem}"
        except RecursionError:
            return f"{self.name!r}: an argument nests too deeply to be checked"
        return None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object (what a model is told the tool takes)."""
        extra: JsonType | bool = False if self.extra is None else self.extra
        if extra is _ANYTHING:
            extra = True
        schema = _object_schema(self.fields, list(self.required), extra)
        if self.defs:
            schema["$defs"] = dict(self.defs)
        return schema


def _summary(function: Callable[..., Any]) -> str:
    """The first paragraph of a callable's docstring, on one line ("" without one)."""
    target = function.func if isinstance(function, functools.partial) else function
    doc = inspect.getdoc(target) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _hints(name: str, function: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """The resolved annotations of the parameters `signature` lists (not the return value's).

    Read from the function `inspect.signature` read them from: through partials and
    `functools.wraps`, a class's `__init__` (or `__new__`), a callable object's `__call__`.
    """
    target: Any = function
    while True:
        if isinstance(target, functools.partial):
            target = target.func
        elif hasattr(target, "__wrapped__") and not hasattr(target, "__signature__"):
            target = target.__wrapped__
        else:
            break
    if isinstance(target, type):
        init = getattr(target, "__init__", None)
        target = init if inspect.isfunction(init) else getattr(target, "__new__", None)
    elif not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(type(target), "__call__", None)  # noqa: B004 - the method, not callable()
    if inspect.ismethod(target):
        target = target.__func__
    wanted = {
        parameter.name: parameter.annotation
        for parameter in signature.parameters.values()
        if parameter.annotation is not inspect.Parameter.empty
    }
    if not inspect.isfunction(target):  # a builtin or C callable: only ready-made annotations
        unresolved = [key for key, value in wanted.items() if isinstance(value, str)]
        if unresolved:
            raise TypeError(
                f"{name!r}: the annotation of {unresolved[0]!r} is the text "
                f"{wanted[unresolved[0]]!r}, which cannot be resolved here; annotate it with a "
                "type, not a string"
            )
        return wanted
    # The parameters' annotations only: an unresolvable return annotation (a name imported
    # under TYPE_CHECKING) does not matter to the arguments.
    annotations = {
        key: value for key, value in getattr(target, "__annotations__", {}).items() if key in wanted
    }
    shim = types.FunctionType(_NO_CODE, target.__globals__)
    shim.__annotations__ = annotations
    try:
        return typing.get_type_hints(shim)
    except Exception as exc:
        raise TypeError(
            f"{name!r}: its annotations cannot be resolved ({_reason(exc)}); annotate it with "
            "names defined at module level, or with JSON types"
        ) from None


_NO_CODE: Final = (lambda: None).__code__
