"""Hostile input, end to end: policies, model answers and tool outputs meant to break the rules."""

from __future__ import annotations

from typing import Any

from interruptible import Backoff, FailureCategory, RunStatus, StepPolicy
from interruptible._runtime import EffectError, Runtime, current_effect
from tests.runtime.support import arun, pipeline, tool_step


def test_core_27_an_overflowing_backoff_fails_the_run_instead_of_hanging_wait() -> None:
    """CORE-27: a retry delay too large for a float is `max_delay`, so a step that keeps failing
    under `Backoff(multiplier=1e300)` spends its attempts and fails its run; `wait()` returns
    (it used to hang: `reduce` raised `OverflowError` in the writer and the run stayed running)."""
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(current_effect().attempt)
        raise EffectError(FailureCategory.transient, "try again", retryable=True)

    policy = StepPolicy(
        max_attempts=5, backoff=Backoff(initial=0.001, multiplier=1e300, max_delay=0.002)
    )

    async def scenario() -> Any:
        mode = pipeline("p", [tool_step("t", "flaky", policy)])
        async with Runtime("memory", modes=[mode], tools={"flaky": flaky}) as rt:
            handle = await rt.run("c", None, mode="p")
            return await handle.wait()

    final = arun(scenario(), timeout=10.0)
    assert final.status is RunStatus.failed
    assert attempts == [1, 2, 3, 4, 5]
    assert final.error.category is FailureCategory.transient
