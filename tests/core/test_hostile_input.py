"""Hostile input: policies, model answers and tool outputs that try to break the core's rules."""

from __future__ import annotations

from interruptible import (
    Backoff,
    Coordinator,
    Disposition,
    FailureCategory,
    RunStatus,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._driver import CoreDriver


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
