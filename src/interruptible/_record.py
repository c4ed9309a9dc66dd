"""`record`: a frozen, slotted dataclass that is as cheap to build as a mutable one.

Theory of operation
-------------------
`reduce` builds several immutable records per event (step and run states, directives, the
outcome). A `@dataclass(frozen=True)` instance pays for its immutability in its constructor:
every field is set through `object.__setattr__`, about 70 ns a field, so a 13-field `RunState`
costs nearly a microsecond, several times what a plain slotted class costs.

`record` keeps the frozen dataclass as the public type (immutability with
`FrozenInstanceError`, equality, hashing, `repr`, `dataclasses.fields` and `replace`, pattern
matching, pickling) and builds its instances through a private *builder*: a plain class with the
same `__slots__` in the same order, hence the same memory layout. The generated `__new__` makes
a builder instance, fills its slots with ordinary (fast) attribute stores, then gives the
finished object its public class, which CPython allows between classes of one layout. Nothing
else holds the object while it is mutable; once it has the public class, every assignment
raises `FrozenInstanceError` as for any frozen dataclass.

The frozen class has no `__init__` of its own (`init=False`), so `object.__init__` accepts the
arguments `__new__` already used. A record may not define `__post_init__` (validation belongs in
a plain frozen dataclass), inherit from another class, have keyword-only fields, or be
subclassed (a subclass would not share the builder's layout). A field may name a normalizer
(`NORMALIZE`), which the constructor applies to the value given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform

_T = TypeVar("_T")
_MISSING: Any = dataclasses.MISSING
# `field(metadata={NORMALIZE: f})`: the constructor stores `f(value)`, so a value given in a
# plain form (a category as its string) is the canonical one in the record, for equality and
# the codec alike. Fields without it cost nothing more.
NORMALIZE: Any = "interruptible.normalize"
# Each record class's builder, for `replacer`.
_BUILDERS: dict[type, type] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[_T]) -> type[_T]:
    """Make `cls` a frozen slotted dataclass with a plain class's construction cost."""
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"record {cls.__name__} may not define __post_init__")
    if cls.__bases__ != (object,):
        raise TypeError(f"record {cls.__name__} may not inherit from another class")
    public: Any = dataclasses.dataclass(frozen=True, slots=True, init=False)(cls)
    fields = dataclasses.fields(public)
    if any(f.kw_only or not f.init for f in fields):
        raise TypeError(f"record {cls.__name__} may only have positional init fields")
    builder = type(f"_{public.__name__}Builder", (), {"__slots__": public.__slots__})
    public.__new__ = staticmethod(_constructor(public, builder, fields))
    _BUILDERS[public] = builder
    public.__reduce__ = _reduce
    public.__init_subclass__ = classmethod(_final)
    return public  # type: ignore[no-any-return]


def _final(cls: type[Any], /, **kwargs: Any) -> None:
    raise TypeError(
        f"{cls.__name__}: {cls.__mro__[1].__name__} is a record and records are final (its "
        "instances share their builder's memory layout); wrap it or build your own type instead"
    )


def _constructor(public: Any, builder: type, fields: tuple[dataclasses.Field[Any], ...]) -> Any:
    """`__new__(cls, <fields>)`, written out like dataclasses writes `__init__`."""
    scope: dict[str, Any] = {"_builder": builder, "_new": object.__new__, "_MISSING": _MISSING}
    params, body = ["cls"], ["    self = _new(_builder)"]
    for f in fields:
        if f.default_factory is not _MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            body.append(
                f"    self.{f.name} = _factory_{f.name}() if {f.name} is _MISSING else {f.name}"
            )
            continue
        if f.default is not _MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            params.append(f.name)
        normalize = f.metadata.get(NORMALIZE)
        if normalize is None:
            body.append(f"    self.{f.name} = {f.name}")
        else:
            scope[f"_normalize_{f.name}"] = normalize
            body.append(f"    self.{f.name} = _normalize_{f.name}({f.name})")
    body += ["    self.__class__ = cls", "    return self"]
    source = f"def __new__({', '.join(params)}):\n" + "\n".join(body) + "\n"
    return generated_function(source, scope, "__new__", public.__qualname__)


def replacer(cls: type[_T]) -> Callable[..., _T]:
    """`with_(rec, /, **changes)`: a copy of record `rec` with `changes`, built as its
    constructor builds (a changed field is normalized, a kept one is already).

    `dataclasses.replace` costs about 3 us a call (it inspects the fields each time); this
    function is written out once from `cls`'s fields, so no caller depends on their order.
    """
    builder = _BUILDERS.get(cls)
    if builder is None:
        raise TypeError(f"replacer() takes a record class, got {cls!r}")
    scope: dict[str, Any] = {"_cls": cls, "_builder": builder, "_new": object.__new__}
    scope["_KEEP"] = _MISSING
    params, body = [], ["    self = _new(_builder)"]
    for f in dataclasses.fields(cast(Any, cls)):
        params.append(f"{f.name}=_KEEP")
        normalize = f.metadata.get(NORMALIZE)
        changed = f.name
        if normalize is not None:
            scope[f"_normalize_{f.name}"] = normalize
            changed = f"_normalize_{f.name}({f.name})"
        body.append(f"    self.{f.name} = __r.{f.name} if {f.name} is _KEEP else {changed}")
    body += ["    self.__class__ = _cls", "    return self"]
    source = f"def _with(__r, /, *, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    return generated_function(source, scope, "_with", cls.__qualname__)  # type: ignore[no-any-return]


def generated_function(source: str, scope: dict[str, Any], name: str, owner: str) -> Any:
    """The function `name` that `source` defines, run in `scope`, named `owner.name`.

    For code written out per record class at import (constructors, checks, encoders, decoders):
    the source is built from the class's own field names and declared types, as dataclasses
    builds its methods, never from data.
    """
    exec(source, scope)
    function = scope[name]
    function.__qualname__ = f"{owner}.{name}"
    return function


def _reduce(self: Any) -> tuple[type[Any], tuple[Any, ...]]:
    return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))
