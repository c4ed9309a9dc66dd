"""Payload limits at the runtime's edge (RT-22) and a refused write fencing one conversation
(RT-23): a hostile value never reaches the journal, never hangs a run, never locks a file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interruptible import (
    Coordinator,
    FailureCategory,
    JournalError,
    PayloadLimitError,
    RunStatus,
    StepClass,
    StepDefinition,
)
from interruptible._journal import MemoryJournal, SQLiteJournal, restore
from interruptible._limits import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH
from interruptible._runtime import EffectError, Runtime, current_effect
from interruptible.testing.strategies import hostile_json_values
from tests.runtime.support import arun, pipeline, system_step, tool_step


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def cycle() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


TOO_DEEP = [MAX_PAYLOAD_DEPTH + 1, 985, 5_000]


# --- run inputs and answers --------------------------------------------------------------------


@pytest.mark.parametrize("depth", TOO_DEEP)
def test_rt_22_a_run_input_over_the_depth_limit_is_refused_and_nothing_journaled(
    tmp_path: Path, depth: int
) -> None:
    """`run` with an input nested deeper than `MAX_PAYLOAD_DEPTH` raises `PayloadLimitError`
    (a `ValueError`) before anything is journaled: the conversation does not exist, and the
    file reopens as before; an input exactly at the limit runs."""
    mode = pipeline("p", [system_step("s", "echo")])
    path = tmp_path / "runs.db"

    async def scenario() -> None:
        async with Runtime(path, modes=[mode], functions={"echo": lambda: "ok"}) as rt:
            with pytest.raises(PayloadLimitError) as caught:
                await rt.run("c", nested(depth), mode="p")
            assert isinstance(caught.value, ValueError)
            assert caught.value.limit == "depth" and caught.value.maximum == MAX_PAYLOAD_DEPTH
            assert len(caught.value.message) < 400
            assert rt.conversations() == []
            handle = await rt.run("c", nested(MAX_PAYLOAD_DEPTH), mode="p")
            assert (await handle.wait()).status is RunStatus.completed
        async with Runtime(path, modes=[mode], functions={"echo": lambda: "ok"}) as rt:
            assert rt.snapshot("c").status is RunStatus.completed

    arun(scenario())


def test_rt_22_a_run_input_over_the_size_limit_is_refused() -> None:
    """An input whose JSON text is longer than `MAX_PAYLOAD_BYTES` is refused the same way (a
    string included: its text counts its quotes and escapes); one at the limit runs."""
    mode = pipeline("p", [system_step("s", "echo")])

    async def scenario() -> None:
        journal = MemoryJournal()
        async with Runtime(journal, modes=[mode], functions={"echo": lambda: "ok"}) as rt:
            for value in ("x" * (MAX_PAYLOAD_BYTES - 1), ["\u00e9" * (MAX_PAYLOAD_BYTES // 6 + 1)]):
                with pytest.raises(PayloadLimitError) as caught:
                    await rt.run("c", value, mode="p")
                assert caught.value.limit == "bytes"
            assert journal.conversations() == []
            handle = await rt.run("c", "x" * (MAX_PAYLOAD_BYTES - 2), mode="p")
            assert (await handle.wait()).status is RunStatus.completed

    arun(scenario())


def test_rt_22_a_huge_integer_input_is_refused_before_the_journal() -> None:
    """An integer JSON text cannot carry (5,000 digits) is refused as not JSON (`ValueError`)
    by `run`, before the journal, so the conversation is not fenced."""
    mode = pipeline("p", [system_step("s", "echo")])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], functions={"echo": lambda: "ok"}) as rt:
            with pytest.raises(ValueError):
                await rt.run("c", 10**5000, mode="p")
            handle = await rt.run("c", 10**50, mode="p")
            assert (await handle.wait()).status is RunStatus.completed

    arun(scenario())


def test_rt_22_a_gate_answer_over_the_limit_is_refused() -> None:
    """`provide_input` with an answer over the depth limit raises `PayloadLimitError`; the gate
    still waits and takes a good answer."""
    mode = pipeline("g", [StepDefinition("ask", StepClass.human_gate, {"q": "?"})])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode]) as rt:
            handle = await rt.run("c", None, mode="g")
            with pytest.raises(PayloadLimitError):
                await handle.provide_input("ask", nested(5_000))
            await handle.provide_input("ask", "yes")
            assert (await handle.wait()).output["outputs"]["ask"] == "yes"

    arun(scenario())


# --- effect answers ----------------------------------------------------------------------------


def _final(mode: Any, path: Path | None = None, **registries: Any) -> Any:
    async def scenario() -> Any:
        journal: Any = path if path is not None else "memory"
        async with Runtime(journal, modes=[mode], **registries) as rt:
            handle = await rt.run("c", None, mode=mode.name)
            return await handle.wait()

    return arun(scenario(), timeout=10)


@pytest.mark.parametrize("kind", ["tool", "async tool", "system"])
@pytest.mark.parametrize("make", [*(lambda d=d: nested(d) for d in TOO_DEEP), cycle])
def test_rt_22_an_output_over_the_depth_limit_fails_the_step_as_invalid_output(
    tmp_path: Path, kind: str, make: Any
) -> None:
    """An effect whose output is nested deeper than the limit (or contains itself) answers
    `effect_failed` with category `invalid_output`, not retryable: the run ends (it never
    hangs), nothing deep is journaled, and the file reopens and restores."""

    async def deep_async() -> Any:
        return make()

    if kind == "system":
        mode, registry = pipeline("p", [system_step("t", "deep")]), {"functions": {"deep": make}}
    else:
        function = deep_async if kind == "async tool" else make
        mode, registry = pipeline("p", [tool_step("t", "deep")]), {"tools": {"deep": function}}
    path = tmp_path / "runs.db"
    final = _final(mode, path, **registry)
    assert final.status is RunStatus.failed
    assert (final.error.category, final.error.retryable) == (FailureCategory.invalid_output, False)
    assert len(final.error.message) < 400
    with SQLiteJournal(path) as journal:
        assert journal.recovered == [] and journal.verify(tail=None) == []
    assert _final_snapshot(path, mode, registry).status is RunStatus.failed


def _final_snapshot(path: Path, mode: Any, registry: dict[str, Any]) -> Any:
    async def reopen() -> Any:
        async with Runtime(path, modes=[mode], **registry) as rt:
            return rt.snapshot("c")

    return arun(reopen())


def test_rt_22_an_output_over_the_size_limit_fails_the_step_as_invalid_output() -> None:
    """An output whose JSON text is longer than `MAX_PAYLOAD_BYTES` fails the step the same
    way."""
    mode = pipeline("p", [tool_step("t", "big")])
    final = _final(mode, tools={"big": lambda: ["x" * MAX_PAYLOAD_BYTES]})
    assert final.error.category is FailureCategory.invalid_output
    assert str(MAX_PAYLOAD_BYTES) in final.error.message.replace(",", "")


def test_rt_22_failure_details_over_the_limit_are_replaced_by_a_short_note() -> None:
    """An `EffectError` whose details are over the limit (or not JSON) still fails the step with
    its own category and message; its details become a short note saying why."""

    def fail(depth: int) -> None:
        raise EffectError(
            FailureCategory.transient, "flaky", retryable=False, details=nested(depth)
        )

    mode = pipeline("p", [tool_step("t", "fail", depth=5_000)])
    final = _final(mode, tools={"fail": fail})
    assert (final.error.category, final.error.message) == (FailureCategory.transient, "flaky")
    assert isinstance(final.error.details, str) and len(final.error.details) < 400


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.mark.parametrize("exc", [_Unprintable(), ValueError(10**5000), ValueError("x" * 10**6)])
def test_rt_22_an_exception_that_cannot_be_shown_still_fails_the_step(exc: Exception) -> None:
    """An executor's exception whose text cannot be made (its `__str__` raises, or holds a
    5,000-digit integer) or is huge still answers: `executor_error`, a bounded message."""

    def boom() -> None:
        raise exc

    final = _final(pipeline("p", [tool_step("t", "boom")]), tools={"boom": boom})
    assert final.status is RunStatus.failed
    assert final.error.category is FailureCategory.executor_error
    assert len(final.error.message) <= 70_000


def test_rt_22_progress_over_the_limit_is_refused_to_the_reporter() -> None:
    """`effect.progress(value)` with a value over the limit raises `PayloadLimitError` to the
    executor that reported it; nothing is journaled for it and the step goes on."""
    seen: list[str] = []

    async def report() -> str:
        try:
            current_effect().progress(nested(5_000))
        except PayloadLimitError as exc:
            seen.append(exc.limit)
        return "done"

    final = _final(pipeline("p", [tool_step("t", "report")]), tools={"report": report})
    assert final.status is RunStatus.completed and seen == ["depth"]


# --- RT-23: a refused write fences one conversation ----------------------------------------------


def test_rt_23_a_write_refused_for_one_conversation_fences_only_that_one() -> None:
    """When a round's group commit is refused because of one conversation's batch (a journal
    that cannot hold its id), the others are written on their own and go on; only the refused
    one is fenced."""
    mode = pipeline("p", [system_step("s", "echo")])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], functions={"echo": lambda: "ok"}) as rt:
            bad = rt.run("\ud800", None, mode="p")  # a lone surrogate: no journal can key it
            good = rt.run("fine", None, mode="p")
            results = await asyncio.gather(bad, good, return_exceptions=True)
            assert isinstance(results[0], JournalError)
            assert (await results[1].wait()).status is RunStatus.completed  # type: ignore[union-attr]

    arun(scenario())


def test_rt_22_text_that_is_not_unicode_is_not_json() -> None:
    """A string with a surrogate code point (as `surrogateescape` leaves one) would not come
    back from the journal equal: as a run input it is refused (`ValueError`), as an output it
    fails the step (`invalid_output`); text beyond U+FFFF passes and is kept as it was."""
    mode = pipeline("p", [tool_step("t", "name")])
    answers = iter(["caf\udce9", ["\ud83d\ude00"], "\U0001f600 caf\u00e9"])

    def name() -> Any:
        return next(answers)

    async def scenario() -> list[Any]:
        async with Runtime("memory", modes=[mode], tools={"name": name}) as rt:
            with pytest.raises(ValueError, match="surrogate"):
                await rt.run("c", {"path": "caf\udce9"}, mode="p")
            finals = []
            for n in range(3):
                handle = await rt.run(f"c{n}", None, mode="p")
                finals.append(await handle.wait())
            return finals

    first, second, third = arun(scenario())
    assert first.error.category is second.error.category is FailureCategory.invalid_output
    assert third.output["outputs"]["t"] == "\U0001f600 caf\u00e9"


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    value=hostile_json_values(),
    how=st.sampled_from(["return", "raise", "progress"]),
    kind=st.sampled_from(["tool", "system"]),
)
def test_rt_22_any_hostile_answer_ends_its_step_and_the_journal_replays(
    value: Any, how: str, kind: str
) -> None:
    """Whatever hostile value an effect returns, puts in its failure's details or reports as
    progress (deep, huge, non-finite, not Unicode text), its step ends and the run with it
    (never a hang); the journal reopens whole (nothing quarantined) and folds to the live
    state (RT-11)."""

    def answer() -> Any:
        if how == "raise":
            raise EffectError(FailureCategory.transient, "bad", retryable=False, details=value)
        if how == "progress":
            try:
                current_effect().progress(value)
            except (TypeError, ValueError):  # PayloadLimitError is a ValueError
                return "refused"
        return value

    step = system_step("t", "answer") if kind == "system" else tool_step("t", "answer")
    mode = pipeline("p", [step])
    registry = {"functions" if kind == "system" else "tools": {"answer": answer}}
    path = Path(mkdtemp()) / "runs.db"

    async def scenario() -> Any:
        async with Runtime(path, modes=[mode], **registry) as rt:
            handle = await rt.run("c", None, mode="p")
            await handle.wait()
            return rt.state("c")

    live = arun(scenario(), timeout=30)
    assert live.run_history[-1].status in (RunStatus.completed, RunStatus.failed)
    with SQLiteJournal(path) as journal:
        assert journal.recovered == [] and journal.verify(tail=None) == []
        assert restore(journal, Coordinator([mode]))["c"] == live
