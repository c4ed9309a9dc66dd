"""Typed arguments: a tool's or system function's JSON arguments validated by pydantic.

Theory of operation
-------------------
A step names a registered callable and gives its `arguments` as a JSON object. Before the
callable runs, pydantic validates them against the callable's signature, so a step written wrong
fails as `invalid_input` (not retryable: the same input fails the same way) with a message that
names the argument and the path inside it, instead of as an `executor_error` from deep inside the
call (TOOL-1).

The signature becomes one `TypedDict` (a parameter with a default is `NotRequired`, so a value
left out is the callable's own default, never one pydantic makes up), read once by a
`TypeAdapter` when the callable is registered. Each call serializes the arguments to JSON text
and validates that text in strict mode (TOOL-2). JSON is the arguments' real form (the journal
keeps them as JSON, RT-11), and pydantic's strict JSON mode is where it tells ambiguous values
apart as a JSON reader should: `2.0` is no `int`, `1` no `bool`, `"3"` no number, while an
object is a model, a dataclass or a `TypedDict`, a string an enum's value, an array a tuple. What
comes out (model instances, enum members, tuples) is what the callable is called with. How a
refusal is worded from pydantic's errors is `_refusals.py`.

pydantic is the runtime's dependency, not the core's: this module is imported when the first
tool or function is registered, never by `import interruptible`.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import pydantic
import typing_extensions

from ._cancel import CancelToken
from ._refusals import ArgumentsRefused, refusal, to_json

# Strictness is pydantic's strict JSON mode (TOOL-2); `allow_inf_nan=False` because a JSON
# number is finite, and `extra="forbid"` because a name the callable does not take is a typo.
_CLOSED: Final = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


class ArgumentPlan(Protocol):
    """What the tool executor needs of a registered tool's arguments, whatever its source."""

    name: str
    description: str
    token: str | None  # the `CancelToken` parameter's name, if any

    def bind(self, arguments: Mapping[Any, Any]) -> dict[str, Any]:
        """The keyword arguments to call with; `ArgumentsRefused` when they do not fit."""
        ...

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object."""
        ...


def plan_for(name: str, function: Callable[..., Any]) -> ArgumentPlan:
    """The argument plan of a callable, or the one a tool adapter (MCP, LangChain) carries."""
    own = getattr(function, "arguments_plan", None)
    if own is not None and callable(own):
        plan: ArgumentPlan = own(name)
        return plan
    return Arguments(name, function)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The pydantic side of one signature: its validator and what `**kwargs` takes."""

    adapter: pydantic.TypeAdapter[Any]
    extra: pydantic.TypeAdapter[Any] | None  # `**kwargs: T` as `dict[str, T]`


class Arguments:
    """How one callable's arguments are validated and described (built once, at registration)."""

    __slots__ = ("_plan", "description", "fields", "name", "required", "token")

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.description = _summary(function)
        self.fields: tuple[str, ...] = ()  # every parameter a step may name
        self.required: tuple[str, ...] = ()
        # The parameter annotated `CancelToken`: the runtime fills it, a step never names it.
        self.token: str | None = None
        self._plan: _Plan | None = None  # None: no signature to read, called unchecked
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # no signature to read (some builtins)
            return
        hints = _hints(name, function, signature)
        fields: dict[str, Any] = {}
        extra: Any = None
        for parameter in signature.parameters.values():
            kind = parameter.kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            annotation = hints.get(parameter.name, Any)
            if annotation is CancelToken and kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            ):
                self.token = parameter.name
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                extra = annotation
                continue
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                if parameter.default is inspect.Parameter.empty:
                    raise TypeError(
                        f"{name!r}: its parameter {parameter.name!r} is positional-only and "
                        "required, but a step's arguments are given by name; make it a regular "
                        "parameter"
                    )
                continue
            required = parameter.default is inspect.Parameter.empty
            fields[parameter.name] = (
                typing_extensions.Required[annotation]
                if required
                else typing_extensions.NotRequired[annotation]
            )
        self.fields = tuple(fields)
        self.required = tuple(
            key
            for key, hint in fields.items()
            if typing.get_origin(hint) is typing_extensions.Required
        )
        make_shape: Any = typing_extensions.TypedDict  # made at run time, from the signature
        shape: Any = make_shape("Arguments", fields)
        shape.__pydantic_config__ = (
            _CLOSED if extra is None else pydantic.ConfigDict(extra="allow", allow_inf_nan=False)
        )
        self._plan = _Plan(
            _adapter(name, shape),
            None if extra is None else _adapter(name, dict[str, extra]),
        )

    def bind(self, arguments: Mapping[Any, Any]) -> dict[str, Any]:
        """The keyword arguments to call with, validated; else `ArgumentsRefused`."""
        plan = self._plan
        if plan is None:
            return dict(arguments)
        text = to_json(self.name, arguments)
        try:
            bound: dict[str, Any] = plan.adapter.validate_json(text, strict=True)
            if plan.extra is not None:
                others = {key: value for key, value in bound.items() if key not in self.fields}
                if others:
                    bound.update(plan.extra.validate_python(others, strict=True))
        except pydantic.ValidationError as exc:
            raise refusal(self.name, arguments, exc, self.fields) from None
        except RecursionError:
            raise ArgumentsRefused(
                self.name, None, "has an argument nested too deeply to be checked"
            ) from None
        return bound

    def problem(self, arguments: Mapping[Any, Any]) -> str | None:
        """What is wrong with `arguments` for this callable, or None when they fit."""
        try:
            self.bind(arguments)
        except ArgumentsRefused as refused:
            return str(refused)
        return None

    def schema(self) -> dict[str, Any]:
        """pydantic's JSON Schema of the arguments object (what a model is told the tool takes)."""
        if self._plan is None:
            return {"type": "object"}
        schema = dict(self._plan.adapter.json_schema())
        schema.pop("title", None)  # the made-up TypedDict's name, not the tool's
        if self._plan.extra is not None:
            values = self._plan.extra.json_schema()
            schema.pop("additionalProperties", None)
            schema["additionalProperties"] = values.get("additionalProperties", True)
            if "$defs" in values:
                schema["$defs"] = {**values["$defs"], **schema.get("$defs", {})}
        return schema


def _adapter(name: str, shape: Any) -> pydantic.TypeAdapter[Any]:
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(shape)
        if not adapter.pydantic_complete:  # a name pydantic could not resolve: say so now
            adapter.rebuild(raise_errors=True)
        return adapter
    except pydantic.PydanticUndefinedAnnotation as exc:
        raise TypeError(f"{name!r}: its annotations cannot be resolved ({exc})") from None
    # A subclass of PydanticUserError: first.
    except pydantic.PydanticSchemaGenerationError as exc:
        raise TypeError(
            f"{name!r}: pydantic cannot validate one of its parameters' types "
            f"({str(exc).splitlines()[0]}); annotate it with a JSON type, a pydantic model, a "
            "dataclass, a TypedDict or an enum"
        ) from None
    except pydantic.PydanticUserError as exc:
        if exc.code == "typed-dict-version":
            raise TypeError(
                f"{name!r}: on Python 3.11 pydantic reads only TypedDicts made with "
                "typing_extensions.TypedDict; import TypedDict from typing_extensions"
            ) from None
        raise TypeError(f"{name!r}: pydantic cannot read its parameters ({exc})") from None
    except NameError as exc:
        raise TypeError(f"{name!r}: its annotations cannot be resolved ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
        return typing.get_type_hints(shim, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"{name!r}: its annotations cannot be resolved ({_reason(exc)}); annotate it with "
            "names defined at module level, or with JSON types"
        ) from None


_NO_CODE: Final = (lambda: None).__code__
