"""Executors and the effect manager: timeouts, durable timers, tools, system steps, progress."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from interruptible import (
    STEP_CLASS_TRAITS,
    Backoff,
    EmitProgress,
    FailureCategory,
    RunStatus,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
)
from interruptible._runtime import (
    Effect,
    EffectError,
    FunctionExecutor,
    Runtime,
    current_effect,
    inline,
)
from tests.runtime.support import arun, pipeline, system_step, tool_step, until


def _run_one(mode: Any, **runtime: Any) -> Any:
    async def scenario() -> Any:
        async with Runtime("memory", modes=[mode], **runtime) as rt:
            handle = await rt.run("c", None, mode=mode.name)
            return await handle.wait()

    return arun(scenario())


def test_rt_12_a_policy_timeout_fails_the_attempt_as_a_retryable_timeout() -> None:
    """An effect that outlives `policy.timeout` is cancelled and answers `effect_failed` with
    category `timeout`, retryable; the policy retries it, then the run fails with that envelope."""
    calls: list[int] = []

    async def hang() -> None:
        calls.append(current_effect().attempt)
        await asyncio.sleep(10)

    policy = StepPolicy(
        timeout=0.02,
        max_attempts=2,
        backoff=Backoff(initial=0.001, max_delay=0.001),
        retry_on=(FailureCategory.timeout,),
    )
    final = _run_one(pipeline("p", [tool_step("slow", "hang", policy)]), tools={"hang": hang})
    assert final.status is RunStatus.failed
    assert calls == [1, 2]
    assert final.error.category is FailureCategory.timeout
    assert final.error.retryable is True
    assert "0.02s timeout" in final.error.message


def test_rt_12_unknown_tool_and_bad_input_fail_with_their_categories() -> None:
    """A tool name nobody registered fails the step as `not_found` (not retryable); a step input
    that is not `{"name", "arguments"}` fails as `invalid_input`; an exception from a tool is an
    `executor_error` carrying its type and message."""
    final = _run_one(pipeline("p", [tool_step("t", "nobody")]))
    assert (final.error.category, final.error.retryable) == (FailureCategory.not_found, False)
    assert "nobody" in final.error.message
    bad = StepDefinition("t", StepClass.tool, {"arguments": {}})
    final = _run_one(pipeline("q", [bad]), tools={})
    assert final.error.category is FailureCategory.invalid_input

    def boom() -> None:
        raise KeyError("missing")

    final = _run_one(pipeline("r", [tool_step("t", "boom")]), tools={"boom": boom})
    assert final.error.category is FailureCategory.executor_error
    assert final.error.message == "KeyError: 'missing'"


def test_rt_12_tools_get_their_arguments_and_idempotency_key_sync_in_a_thread() -> None:
    """A synchronous tool runs in a worker thread (the loop stays free) and an async tool on the
    loop; both get the step input's arguments, and `current_effect()` gives the idempotency key
    `run_id:step_id:attempt`. A synchronous system function runs inline on the loop."""
    seen: dict[str, Any] = {}
    loop_thread = threading.get_ident()

    def blocking(x: int) -> int:
        seen["sync"] = (threading.get_ident() != loop_thread, current_effect().idempotency_key)
        time.sleep(0.01)
        return x + 1

    async def awaiting(y: str) -> str:
        seen["async"] = current_effect().idempotency_key
        return y * 2

    def inline() -> str:
        seen["system"] = (threading.get_ident() == loop_thread, current_effect().effect_id)
        return "ok"

    async def scenario() -> Any:
        mode = pipeline(
            "p",
            [
                tool_step("a", "blocking", x=1),
                tool_step("b", "awaiting", y="z"),
                system_step("c", "inline"),
            ],
        )
        async with Runtime(
            "memory",
            modes=[mode],
            tools={"blocking": blocking, "awaiting": awaiting},
            functions={"inline": inline},
        ) as rt:
            handle = await rt.run("c", None, mode="p", run_id="r1")
            return await handle.wait()

    final = arun(scenario())
    assert final.output["outputs"] == {"a": 2, "b": "zz", "c": "ok"}
    assert seen == {"sync": (True, "r1:a:1"), "async": "r1:b:1", "system": (True, "r1/c/1")}
    with pytest.raises(RuntimeError, match="only available inside"):
        current_effect()


def test_rt_12_an_inline_tool_runs_on_the_loop_and_a_plain_one_in_a_thread() -> None:
    """`inline(tool)` opts a synchronous tool out of the worker thread: it runs on the loop
    (with its idempotency key), while the same function registered plainly runs in a thread;
    registering a name again decides anew."""
    where: dict[str, bool] = {}
    loop_thread = threading.get_ident()

    def probe(tag: str) -> str:
        where[tag] = threading.get_ident() == loop_thread
        return current_effect().idempotency_key

    async def scenario() -> Any:
        mode = pipeline(
            "p", [tool_step("a", "fast", tag="fast"), tool_step("b", "plain", tag="plain")]
        )
        async with Runtime(
            "memory", modes=[mode], tools={"fast": inline(probe), "plain": probe}
        ) as rt:
            handle = await rt.run("c", None, mode="p", run_id="r1")
            return await handle.wait()

    final = arun(scenario())
    assert final.output["outputs"] == {"a": "r1:a:1", "b": "r1:b:1"}
    assert where == {"fast": True, "plain": False}

    executor = FunctionExecutor({"t": inline(probe)}, threaded=True)
    assert executor.is_inline({"name": "t", "arguments": {}})
    executor.register("t", probe)
    assert not executor.is_inline({"name": "t", "arguments": {}})
    assert inline(lambda x: x + 1)(1) == 2  # still callable as the function it wraps


def test_rt_12_inline_refuses_what_cannot_run_inline() -> None:
    async def coroutine_function() -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        inline(coroutine_function)
    with pytest.raises(TypeError, match="callable"):
        inline("not a function")  # type: ignore[arg-type]


def test_rt_11_outputs_are_normalized_to_json_and_non_json_fails() -> None:
    """An output is stored as the journal will give it back (a tuple becomes a list), so the
    live state equals the replayed one; an output that is not JSON fails the step."""
    final = _run_one(pipeline("p", [system_step("t", "tup")]), functions={"tup": lambda: (1, 2)})
    assert final.output["outputs"]["t"] == [1, 2]
    final = _run_one(pipeline("q", [system_step("t", "obj")]), functions={"obj": object})
    assert final.status is RunStatus.failed
    assert "not JSON" in final.error.message


def test_rt_14_progress_reaches_subscribers_in_order() -> None:
    """`effect.progress(value)` (from the loop or from a tool's worker thread) is journaled as
    `effect_progress` and published as `emit_progress`, in order, to the conversation's
    subscribers and to the all-conversations subscribers: the reports that were journaled, a
    report replaced by a later one before its commit being left out (RT-19), the last one
    always there."""

    def counting(n: int) -> str:
        for i in range(n):
            current_effect().progress({"done": i + 1, "of": n})
        return "counted"

    async def scenario() -> tuple[list[Any], list[Any]]:
        mode = pipeline("p", [tool_step("t", "counting", n=3)])
        async with Runtime("memory", modes=[mode], tools={"counting": counting}) as rt:
            mine, everyone = rt.subscribe("c"), rt.subscribe()
            handle = await rt.run("c", None, mode="p")
            await handle.wait()
            mine.close()
            everyone.close()
            return [d async for d in mine], [d async for d in everyone]

    mine, everyone = arun(scenario())
    assert mine == everyone
    progress = [d for d in mine if isinstance(d, EmitProgress)]
    assert [d.progress for d in progress] == [{"done": d.sequence, "of": 3} for d in progress]
    assert [d.sequence for d in progress] == sorted({d.sequence for d in progress})
    assert progress[-1].sequence == 3


def test_rt_10_a_timer_waits_only_the_rest_after_an_interrupt(tmp_path: Path) -> None:
    """A timer's deadline is its step's first journaled start plus its seconds: interrupted
    halfway and resumed at once, its second attempt waits only the rest; resumed after the
    deadline, it ends at once."""

    async def scenario() -> tuple[float, float]:
        mode = pipeline("p", [StepDefinition("wait", StepClass.timer, {"seconds": 0.3})])
        async with Runtime(tmp_path / "t.db", modes=[mode]) as rt:
            started = time.monotonic()
            handle = await rt.run("c", None, mode="p")
            await asyncio.sleep(0.15)
            await handle.interrupt()
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.pending)
            await handle.resume()
            final = await handle.wait()
            assert final.steps[0].attempt == 2
            first = time.monotonic() - started
            handle = await rt.run("d", None, mode="p")
            await handle.interrupt()
            await until(lambda: rt.snapshot("d").steps[0].status is StepStatus.pending)
            await asyncio.sleep(0.35)
            resumed_at = time.monotonic()
            await handle.resume()
            await handle.wait()
            return first, time.monotonic() - resumed_at

    total, after_deadline = arun(scenario())
    assert 0.28 < total < 0.42, total
    assert after_deadline < 0.1, after_deadline


def test_rt_10_the_durable_deadline_trait_decides_which_executors_get_the_clock() -> None:
    """The runtime gives its clock to the executor of each step class whose `durable_deadline`
    trait is set (the timer), and to no other, whatever executor a class has."""

    class _Clocked:
        def __init__(self) -> None:
            self.clock: Any = None

        def bind_clock(self, clock: Any) -> None:
            self.clock = clock

        async def execute(self, effect: Effect) -> Any:
            return None

    def clock() -> float:
        return 0.0

    timer, tool = _Clocked(), _Clocked()
    Runtime("memory", clock=clock, executors={"timer": timer, "tool": tool})
    assert STEP_CLASS_TRAITS[StepClass.timer].durable_deadline
    assert not STEP_CLASS_TRAITS[StepClass.tool].durable_deadline
    assert timer.clock is clock
    assert tool.clock is None


class _Slow:
    """An executor that takes a while to honour a cancel, tracking concurrency per step."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.most = 0

    async def execute(self, effect: Effect) -> Any:
        self.running[effect.step_id] = self.running.get(effect.step_id, 0) + 1
        self.most = max(self.most, self.running[effect.step_id])
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            await asyncio.sleep(0.02)  # cleanup before the cancel is honoured
            raise
        finally:
            self.running[effect.step_id] -= 1
        return effect.attempt


def test_rt_15_a_step_never_has_two_live_effects() -> None:
    """Interrupted and resumed at once, a step whose effect is still winding down starts its
    new attempt only after the old one answered: never two executions of one step at a time."""
    slow = _Slow()

    async def scenario() -> Any:
        mode = pipeline("p", [tool_step("a", "x"), tool_step("b", "x")])
        async with Runtime("memory", modes=[mode], executors={"tool": slow}) as rt:
            handle = await rt.run("c", None, mode="p")
            for _ in range(3):
                await asyncio.sleep(0.01)
                await handle.interrupt()
                await handle.resume()
            return await handle.wait()

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert slow.most == 1


def test_rt_12_effect_error_carries_category_retryable_and_details() -> None:
    """`EffectError` sets the failure's category, retryability (by category unless given) and
    JSON details, which reach the run's error envelope."""

    def limited() -> None:
        raise EffectError("rate_limited", "slow down", details={"retry_after": 3})

    final = _run_one(pipeline("p", [tool_step("t", "limited")]), tools={"limited": limited})
    error = final.error
    assert (error.category, error.retryable, error.details) == (
        FailureCategory.rate_limited,
        True,
        {"retry_after": 3},
    )
    assert EffectError("invalid_input", "no").retryable is False
