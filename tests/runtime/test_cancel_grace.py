"""A cancel the runtime cannot carry out is not reported as done (RT-24, RT-25, RT-26)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from pathlib import Path

import pytest

from interruptible import (
    Backoff,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    FailureCategory,
    RunStatus,
    StepPolicy,
    StepStatus,
)
from interruptible._runtime import CancelToken, Runtime, current_effect, tool_schemas
from tests.runtime.support import arun, pipeline, tool_step, until


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_rt_24_a_thread_tool_keeps_its_step_cancelling_until_its_thread_returns(
    tmp_path: Path,
) -> None:
    """A synchronous tool runs in a thread that an interrupt cannot stop: the interrupt is
    journaled at once, but the step stays `cancelling` until the thread returns, and its result
    crossed the cancel and is kept, so a resume never starts attempt 2 (no side effect twice)."""
    log = tmp_path / "log"
    release = threading.Event()

    def slow() -> str:
        attempt = current_effect().attempt
        with log.open("a") as f:
            f.write(f"start-{attempt}\n")
        release.wait(5)
        with log.open("a") as f:
            f.write(f"end-{attempt}\n")
        return "done"

    mode = pipeline("p", [tool_step("t", "slow")])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], tools={"slow": slow}) as rt:
            handle = await rt.run("c", None, mode="p")
            await until(lambda: _lines(log) == ["start-1"])
            snapshot = await handle.interrupt()
            assert snapshot.status is RunStatus.interrupted  # at once
            await asyncio.sleep(0.05)
            assert rt.snapshot("c").steps[0].status is StepStatus.cancelling
            await handle.resume()
            await asyncio.sleep(0.05)
            assert _lines(log) == ["start-1"]  # no attempt 2 while attempt 1 lives
            release.set()
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert final.steps[0].output == "done"
            assert final.steps[0].attempt == 1
            events = [r.event for r in rt.journal.read("c")]
            assert not any(isinstance(e, EffectCanceled) for e in events)
            assert sum(isinstance(e, EffectCompleted) for e in events) == 1

    arun(scenario())
    assert _lines(log) == ["start-1", "end-1"]


def test_rt_25_a_cooperative_tool_sees_its_token_and_answers_canceled(tmp_path: Path) -> None:
    """A synchronous tool that asks for a `CancelToken` gets one, set on cancel; it stops
    promptly and its effect answers `effect_canceled`; the resume runs attempt 2 after it. The
    token is no argument: neither the argument check nor `tool_schemas` see it."""
    log = tmp_path / "log"
    seen: list[bool] = []

    def polite(n: int, cancel: CancelToken) -> str:
        attempt = current_effect().attempt
        with log.open("a") as f:
            f.write(f"start-{attempt}\n")
        stopped = cancel.wait(0.3 if attempt == 1 else 0)
        seen.append(stopped)
        with log.open("a") as f:
            f.write(f"end-{attempt}\n")
        if stopped:
            raise RuntimeError("stopped")
        return "done"

    schema = tool_schemas({"polite": polite})["polite"]["function"]["parameters"]
    assert set(schema["properties"]) == {"n"}
    assert schema.get("required") == ["n"]
    mode = pipeline("p", [tool_step("t", "polite", n=1)])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], tools={"polite": polite}) as rt:
            handle = await rt.run("c", None, mode="p")
            await until(lambda: _lines(log) == ["start-1"])
            await handle.interrupt()
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.pending)
            events = [r.event for r in rt.journal.read("c")]
            assert sum(isinstance(e, EffectCanceled) for e in events) == 1
            await handle.resume()
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert final.steps[0].attempt == 2

    arun(scenario())
    assert seen == [True, False]
    assert _lines(log) == ["start-1", "end-1", "start-2", "end-2"]


def test_rt_26_a_tool_past_its_cancel_grace_is_journaled_lost_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A tool that ignores its cancel past the step's `cancel_grace` is abandoned: its effect is
    journaled `effect_lost` with reason `abandoned_after_cancel` (it may still be running), a
    warning names the step and idempotency key, and the resume goes on with attempt 2."""
    release = threading.Event()
    starts: list[int] = []

    def stubborn(cancel: CancelToken) -> str:
        starts.append(current_effect().attempt)
        if len(starts) == 1:
            release.wait(5)  # ignores the token
        return "done"

    mode = pipeline("p", [tool_step("t", "stubborn", StepPolicy(cancel_grace=0.1))])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], tools={"stubborn": stubborn}) as rt:
            handle = await rt.run("c", None, mode="p")
            await until(lambda: starts == [1])
            t0 = time.monotonic()
            await handle.interrupt()
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.pending)
            assert time.monotonic() - t0 >= 0.09
            lost = [r.event for r in rt.journal.read("c") if isinstance(r.event, EffectLost)]
            assert [e.reason for e in lost] == ["abandoned_after_cancel"]
            await handle.resume()
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert starts == [1, 2]
            release.set()

    with caplog.at_level(logging.WARNING, logger="interruptible.runtime"):
        arun(scenario())
    warned = [r.getMessage() for r in caplog.records if "abandon" in r.getMessage()]
    assert warned and "'t'" in warned[0] and ":t:1" in warned[0]


def test_rt_26_an_executor_swallowing_cancellation_is_abandoned_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An async executor that swallows `CancelledError` (its task does not end when cancelled)
    keeps its step `cancelling` until the grace passes; then its effect is journaled
    `effect_lost` (`abandoned_after_cancel`) with a warning, and the resume goes on."""
    starts: list[int] = []

    async def deaf() -> str:
        starts.append(current_effect().attempt)
        if len(starts) == 1:
            for _ in range(50):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.1)
        return "done"

    mode = pipeline("p", [tool_step("t", "deaf", StepPolicy(cancel_grace=0.1))])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], tools={"deaf": deaf}) as rt:
            handle = await rt.run("c", None, mode="p")
            await until(lambda: starts == [1])
            await handle.interrupt()
            await asyncio.sleep(0.03)
            assert rt.snapshot("c").steps[0].status is StepStatus.cancelling
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.pending)
            lost = [r.event for r in rt.journal.read("c") if isinstance(r.event, EffectLost)]
            assert [e.reason for e in lost] == ["abandoned_after_cancel"]
            await handle.resume()
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert starts == [1, 2]

    with caplog.at_level(logging.WARNING, logger="interruptible.runtime"):
        arun(scenario())
    assert any("abandon" in r.getMessage() for r in caplog.records)


def test_rt_24_cancel_grace_is_a_positive_number_with_a_default() -> None:
    """`StepPolicy.cancel_grace` has a documented default and refuses what is not a finite
    number > 0."""
    assert StepPolicy().cancel_grace == 30.0
    for bad in (0, -1.0, float("inf"), "1", True):
        with pytest.raises(ValueError):
            StepPolicy(cancel_grace=bad)  # type: ignore[arg-type]


def test_rt_24_a_timed_out_thread_tool_is_retried_only_after_its_thread_returned(
    tmp_path: Path,
) -> None:
    """A policy timeout cannot stop a tool's thread either: the attempt fails as `timeout` when
    the thread returns, and the retry starts after it, never beside it."""
    log = tmp_path / "log"

    def slow() -> str:
        attempt = current_effect().attempt
        with log.open("a") as f:
            f.write(f"start-{attempt}\n")
        time.sleep(0.2 if attempt == 1 else 0)
        with log.open("a") as f:
            f.write(f"end-{attempt}\n")
        return "done"

    policy = StepPolicy(timeout=0.05, max_attempts=2, backoff=Backoff(initial=0.001))
    mode = pipeline("p", [tool_step("t", "slow", policy)])

    async def scenario() -> None:
        async with Runtime("memory", modes=[mode], tools={"slow": slow}) as rt:
            final = await (await rt.run("c", None, mode="p")).wait()
            assert final.status is RunStatus.completed
            assert final.steps[0].attempt == 2
            failed = [r.event for r in rt.journal.read("c") if isinstance(r.event, EffectFailed)]
            assert [e.category for e in failed] == [FailureCategory.timeout]

    arun(scenario())
    assert _lines(log) == ["start-1", "end-1", "start-2", "end-2"]


def test_rt_25_a_step_cannot_name_the_token_and_a_canceled_run_sets_it() -> None:
    """The token parameter is not an argument a step may give (`invalid_input`), and a
    `cancel_run` sets the token of the tool that is running, which then answers canceled."""
    seen: list[bool] = []

    def polite(cancel: CancelToken) -> str:
        seen.append(cancel.wait(5))
        return "stopped"

    named = pipeline("n", [tool_step("t", "polite", cancel=True)])
    mode = pipeline("p", [tool_step("t", "polite")])

    async def scenario() -> None:
        async with Runtime("memory", modes=[named, mode], tools={"polite": polite}) as rt:
            final = await (await rt.run("n", None, mode="n")).wait()
            assert final.error.category is FailureCategory.invalid_input
            assert "cancel" in final.error.message
            handle = await rt.run("c", None, mode="p")
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.running)
            await asyncio.sleep(0.02)
            assert (await handle.cancel()).status is RunStatus.canceled
            await until(lambda: seen == [True])
            await until(lambda: not rt.effects.live_effect_ids())
            events = [r.event for r in rt.journal.read("c")]
            assert sum(isinstance(e, EffectCanceled) for e in events) == 1

    arun(scenario())
