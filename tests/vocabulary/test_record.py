"""`record`: frozen dataclasses built fast, with every frozen-dataclass behaviour kept."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle

import pytest

from interruptible import EffectStarted, RunState, StepClass, StepDefinition, StepState
from interruptible._core._state import _StepWith, step_with
from interruptible._record import record, replacer


@record
class Point:
    x: int
    label: str = "p"
    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)

    @property
    def doubled(self) -> int:
        return self.x * 2


def test_builds_like_a_dataclass() -> None:
    p = Point(1)
    assert (p.x, p.label, p.tags, p.doubled) == (1, "p", (), 2)
    assert Point(x=3, tags=("a",)) == Point(3, "p", ("a",))
    assert type(p) is Point and isinstance(p, Point)
    assert repr(Point(2, "q")) == "Point(x=2, label='q', tags=())"
    assert [f.name for f in dataclasses.fields(p)] == ["x", "label", "tags"]


def test_is_frozen() -> None:
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.label  # type: ignore[misc]
    assert p.x == 1


def test_equality_hash_replace_copy_pickle_match() -> None:
    p = Point(1, "a", ("t",))
    assert p == Point(1, "a", ("t",)) and p != Point(2, "a", ("t",))
    assert hash(p) == hash(Point(1, "a", ("t",)))
    assert dataclasses.replace(p, x=5) == Point(5, "a", ("t",))
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert pickle.loads(pickle.dumps(p)) == p
    match p:
        case Point(x, label):
            assert (x, label) == (1, "a")
        case _:  # pragma: no cover
            pytest.fail("a record matches its positional fields")


def test_missing_and_unknown_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
        Point(1, y=2)  # type: ignore[call-arg]


def test_refuses_what_it_cannot_build_fast() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class Checked:
            x: int

            def __post_init__(self) -> None:
                pass

    class Base:
        pass

    with pytest.raises(TypeError, match="inherit"):

        @record
        class Child(Base):
            x: int

    with pytest.raises(TypeError, match="Point is a record and records are final"):

        class Subclass(Point):  # type: ignore[misc]
            pass


def test_the_core_records_are_frozen() -> None:
    started = EffectStarted("e", "c", "r", "s", "r/s/1", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.attempt = 2  # type: ignore[misc]
    for cls in (EffectStarted, RunState, StepState):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_replacer_changes_the_named_fields_like_dataclasses_replace() -> None:
    """`replacer(cls)` copies a record with some fields changed, equal to what
    `dataclasses.replace` builds, and refuses a class that is not a record."""
    with_ = replacer(Point)
    p = Point(1, "a", ("t",))
    changed = with_(p, label="b")
    assert changed == dataclasses.replace(p, label="b") and type(changed) is Point
    assert with_(p) == p and with_(p, x=2, tags=()) == Point(2, "a", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.x = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        with_(p, colour="red")
    with pytest.raises(TypeError):
        replacer(dict)


def test_step_with_declares_one_keyword_per_step_field() -> None:
    """`step_with`'s declared signature names exactly `StepState`'s fields, in order, so the
    type checker sees every change the generated function accepts."""
    declared = inspect.signature(_StepWith.__call__).parameters
    keywords = [n for n, p in declared.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords == [f.name for f in dataclasses.fields(StepState)]
    step = StepState(StepDefinition("s", StepClass.tool))
    assert step_with(step, attempt=2, effect_id="e") == dataclasses.replace(
        step, attempt=2, effect_id="e"
    )
