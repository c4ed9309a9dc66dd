"""CORE-26: a long run's steps are `Steps`, updated in O(1) per event and equal to their tuple."""

from __future__ import annotations

import operator
import pickle
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from interruptible import (
    Coordinator,
    FailureCategory,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
)
from interruptible._core import _steps
from interruptible._core._modes import OUTPUT_CHUNK
from interruptible._core._state import NO_STEP_IDS, StepState
from interruptible._core._steps import LONG_RUN, Steps, StepsDraft, freeze
from interruptible._verify._driver import CoreDriver

from ..stateful.machine import CoreRaceMachine


class Position(IntEnum):
    second = 1


def step(n: int) -> StepState:
    """A distinct step state (the sequence only cares about identity and equality)."""
    return StepState(StepDefinition(f"s{n}", StepClass.system, "x"))  # hashable input


def assert_same(value: Steps | tuple[StepState, ...], model: tuple[StepState, ...]) -> None:
    """`value` behaves as the tuple `model` in every way a reader can ask."""
    assert len(value) == len(model)
    assert tuple(value) == model and list(value) == list(model)
    assert list(reversed(value)) == list(reversed(model))
    assert value == model and model == value and (value != model) is False
    assert hash(value) == hash(model)
    for index in range(-len(model), len(model)):
        assert value[index] is model[index]
    for bad in (len(model), -len(model) - 1):
        with pytest.raises(IndexError):
            value[bad]
    assert value[1:-1] == model[1:-1] and value[::2] == model[::2]
    assert pickle.loads(pickle.dumps(value)) == model
    if model:
        assert model[-1] in value and value.index(model[-1]) == model.index(model[-1])


# An operation on a draft: replace the step at a position (0..1 scaled to the length; 1.0 is the
# last step), or append a new step.
operations = st.lists(
    st.one_of(st.tuples(st.just("set"), st.floats(0, 1)), st.tuples(st.just("append"))),
    max_size=6,
)


@given(
    first=st.integers(1, 6),
    edits=st.lists(st.tuples(st.integers(0, 1000), operations), max_size=25),
)
@settings(max_examples=150)
def test_core_26_steps_are_a_persistent_tuple(first: int, edits: list[Any]) -> None:
    """Any edits, from any earlier version (branches too): every version stays its own tuple."""
    counter = iter(range(10_000))
    initial = tuple(step(next(counter)) for _ in range(first))
    versions: list[tuple[Steps, tuple[StepState, ...]]] = [(Steps(initial), initial)]
    for pick, ops in edits:
        source, model = versions[pick % len(versions)]
        working = source.draft()
        expected = list(model)
        for op in ops:
            if op[0] == "append":
                new = step(next(counter))
                working.append(new)
                expected.append(new)
            else:
                index = round(op[1] * (len(expected) - 1))
                new = step(next(counter))
                working[index] = new
                expected[index] = new
            assert list(working) == expected and len(working) == len(expected)
        versions.append((working.freeze(), tuple(expected)))
        for value, tuple_model in versions:  # nothing derived later changed an older version
            assert_same(value, tuple_model)


def test_core_26_a_short_run_keeps_a_tuple_and_a_long_one_steps() -> None:
    """`freeze` gives a tuple up to LONG_RUN steps and `Steps` beyond; `draft` edits a `Steps`."""
    short = [step(n) for n in range(LONG_RUN)]
    assert type(freeze(list(short))) is tuple
    long = [*short, step(LONG_RUN)]
    frozen = freeze(list(long))
    assert type(frozen) is Steps and frozen == tuple(long)
    assert type(frozen.draft()) is StepsDraft
    with pytest.raises(ValueError, match="at least one step"):
        Steps(())


def test_core_26_steps_equal_only_equal_sequences() -> None:
    """Equality is the tuple's: other lengths, other steps and other types are not equal."""
    items = tuple(step(n) for n in range(4))
    steps = Steps(items)
    assert steps == Steps(list(items)) and hash(steps) == hash(Steps(items))
    assert steps != items[:3] and steps != (*items[:3], step(9)) and steps != list(items)
    # `+` with a tuple works either way round, as it did when steps were always a tuple.
    assert operator.add(steps, (step(5),))[:4] == items
    assert operator.add((step(5),), steps)[1:] == items
    assert repr(steps).startswith("Steps((StepState(")
    # Indexes a tuple takes (bool, IntEnum), order comparisons and repetition, as a tuple does.
    assert steps[True] is items[1] and steps[Position.second] is items[1]
    assert steps < (*items, step(6)) and steps >= items and not steps > items
    assert steps * 2 == items * 2 and 2 * steps == items * 2
    with pytest.raises(TypeError):
        steps["1"]  # type: ignore[call-overload]


RETRY = StepPolicy(max_attempts=2, retry_on=(FailureCategory.transient,))


def long_mode(steps: int) -> Sequence:
    return Sequence(
        "long",
        tuple(StepDefinition(f"s{i}", StepClass.system, {"n": i}, RETRY) for i in range(steps)),
    )


def drive_long_run(steps: int) -> CoreDriver:
    """A long run with an interrupt and resume, progress, a retried failure, then a cancel."""
    mode = long_mode(steps)
    driver = CoreDriver(Coordinator([mode]), "c1")
    driver.run("r1", "long", {"q": 1})
    for i in range(steps - 2):
        sid = f"s{i}"
        driver.started("r1", sid)
        if i % 50 == 7:
            driver.progress("r1", sid, 1, {"pct": 50})
        if i == LONG_RUN + 3:
            driver.interrupt("r1")
            driver.canceled("r1", sid)
            driver.resume("r1")
            driver.started("r1", sid)
        if i == LONG_RUN + 9:
            driver.fail("r1", sid, FailureCategory.transient, retryable=True)
            driver.started("r1", sid)
        driver.complete("r1", sid, {"i": i})
    driver.started("r1", f"s{steps - 2}")
    driver.cancel("r1")
    return driver


def test_core_26_a_long_run_reduces_exactly_as_with_tuples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every outcome of a long run is the same whether its steps are `Steps` or tuples."""
    steps = LONG_RUN + 30
    with_steps = drive_long_run(steps)
    run = with_steps.state.run("r1")
    assert run is not None and type(run.steps) is Steps and len(run.steps) == steps - 1
    assert run.steps[-1].status is StepStatus.canceled
    monkeypatch.setattr(_steps, "LONG_RUN", 10**9)
    with_tuples = drive_long_run(steps)
    run = with_tuples.state.run("r1")
    assert run is not None and type(run.steps) is tuple
    assert len(with_steps.outcomes) == len(with_tuples.outcomes)
    for ours, theirs in zip(with_steps.outcomes, with_tuples.outcomes, strict=True):
        assert ours == theirs


def test_core_26_the_race_machine_holds_when_every_run_keeps_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """VER-1..14 and the reference model hold with `Steps` from a run's first step on."""
    monkeypatch.setattr(_steps, "LONG_RUN", 0)
    run_state_machine_as_test(CoreRaceMachine, settings=settings())


def test_core_26_a_sequence_records_outputs_in_chunks() -> None:
    """A long `Sequence` run: outputs in chunks of OUTPUT_CHUNK, every one in the run's output."""
    steps = 2 * OUTPUT_CHUNK + 5
    driver = CoreDriver(Coordinator([long_mode(steps)]), "c1")
    driver.run("r1", "long", None)
    for i in range(steps):
        driver.started("r1", f"s{i}")
        driver.complete("r1", f"s{i}", i * 10)
    run = driver.state.run("r1")
    assert run is not None and run.status.value == "completed"
    assert run.output == {"outputs": {f"s{i}": i * 10 for i in range(steps)}, "failed": []}
    chunks = run.context["outputs"]  # type: ignore[index]
    assert [len(chunk) for chunk in chunks] == [OUTPUT_CHUNK, OUTPUT_CHUNK, 5]
    pairs = Sequence.outputs_of(run.context)
    assert pairs == [[f"s{i}", i * 10] for i in range(steps)]
    assert Sequence.with_outputs(run.context, pairs) == run.context


@given(st.lists(st.text(min_size=1, max_size=3), max_size=300, unique=True), st.integers(0, 299))
def test_core_26_step_ids_answer_membership_like_a_set(ids: list[str], cut: int) -> None:
    """`StepIds` holds exactly what was added (ids are unique: CORE-11), each version its own."""
    versions = [NO_STEP_IDS]
    for step_id in ids:
        versions.append(versions[-1].add(step_id))
    probes = {*ids, "absent", ""}
    for count in {0, min(cut, len(ids)), len(ids)}:
        version, added = versions[count], set(ids[:count])
        assert {p for p in probes if p in version} == added
        assert len(version) == count
    last = versions[-1]
    assert all(len(a) > len(b) for a, b in zip(last.levels, last.levels[1:], strict=False))
