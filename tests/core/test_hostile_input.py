"""Hostile input: policies, model answers and tool outputs that try to break the core's rules."""

from __future__ import annotations

from dataclasses import dataclass

from interruptible import (
    Backoff,
    Coordinator,
    Disposition,
    FailureCategory,
    OutputRefusedError,
    RunStatus,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepResult,
    StepStatus,
)
from interruptible._driver import CoreDriver
from interruptible._vocabulary import JsonValue


def _retrying(backoff: Backoff, attempts: int) -> CoreDriver:
    step = StepDefinition(
        "flaky", StepClass.tool, None, StepPolicy(max_attempts=attempts, backoff=backoff)
    )
    return CoreDriver(Coordinator([Sequence("flaky", (step,))]))


def test_core_27_an_overflowing_retry_delay_is_capped_at_max_delay() -> None:
    """CORE-27: a backoff whose delay would overflow a float (a huge multiplier, or the default
    backoff after about 1,100 retries) gives `max_delay`; `reduce` never raises, and a step that
    keeps failing still fails its run once its attempts are spent."""
    assert Backoff(multiplier=1e300).delay(3) == 60.0
    assert Backoff().delay(1_100) == 60.0
    assert Backoff(initial=0.0, multiplier=1e300, max_delay=5.0).delay(10**6) == 0.0
    for backoff, attempts in ((Backoff(multiplier=1e300, max_delay=7.0), 6), (Backoff(), 1_200)):
        driver = _retrying(backoff, attempts)
        driver.run("r1", "flaky")
        delays = []
        for _ in range(attempts):
            driver.started("r1", "flaky")
            outcome = driver.fail("r1", "flaky", FailureCategory.transient, retryable=True)
            assert outcome.disposition is Disposition.applied
            delays += [d.delay for d in outcome.directives if isinstance(d, StartEffect)]
        assert len(delays) == attempts - 1
        assert delays[-1] == backoff.max_delay
        assert all(0.0 <= d <= backoff.max_delay for d in delays)
        assert driver.run_state("r1").status is RunStatus.failed


# --- a mode refuses a step's output: the step fails under its policy (CORE-28) --------------------


@dataclass(frozen=True, slots=True)
class _Picky(Sequence):
    """A sequence that refuses the output "bad" as a retryable transient failure."""

    def on_result(self, context: JsonValue, result: StepResult) -> JsonValue:
        if result.output == "bad":
            raise OutputRefusedError(
                "output 'bad' refused", category=FailureCategory.transient, retryable=True
            )
        return Sequence.on_result(self, context, result)


def test_core_28_a_refused_output_fails_the_step_under_its_policy() -> None:
    """CORE-28: an output the mode refuses (`OutputRefusedError` from `on_result`) is not kept:
    the step fails with the refusal's category, retryability and message, and its policy decides
    what follows (here a retry with a new attempt). A refused output that crossed an interrupt's
    cancel makes the step pending again, uncounted, like any failure caused by the cancel."""
    policy = StepPolicy(max_attempts=3, backoff=Backoff(initial=0.5))
    mode = _Picky("picky", (StepDefinition("s", StepClass.tool, None, policy),))
    driver = CoreDriver(Coordinator([mode]))
    driver.run("r1", "picky")
    driver.started("r1", "s")
    refused = driver.complete("r1", "s", "bad")
    assert refused.disposition is Disposition.applied
    step = driver.step("r1", "s")
    assert (step.status, step.failures, step.result) == (StepStatus.scheduled, 1, None)
    assert step.failure is not None
    assert (step.failure.category, step.failure.retryable, step.failure.attempt) == (
        FailureCategory.transient,
        True,
        1,
    )
    assert "output 'bad' refused" in step.failure.message
    assert [(d.attempt, d.delay) for d in refused.directives if isinstance(d, StartEffect)] == [
        (2, 0.5)
    ]
    driver.started("r1", "s")
    driver.interrupt("r1")
    driver.complete("r1", "s", "bad")  # crossed the cancel, and refused
    assert (driver.step("r1", "s").status, driver.step("r1", "s").failures) == (
        StepStatus.pending,
        1,
    )
    driver.resume("r1")
    driver.started("r1", "s")
    driver.complete("r1", "s", "good")
    run = driver.run_state("r1")
    assert run.status is RunStatus.completed
    assert run.output == {"outputs": {"s": "good"}, "failed": []}
