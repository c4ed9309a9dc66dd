"""`record`: frozen dataclasses built fast, with every frozen-dataclass behaviour kept."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from interruptible import EffectStarted, RunState, StepState
from interruptible._record import record


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
