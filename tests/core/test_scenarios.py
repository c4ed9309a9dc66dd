"""The phase plan's integration scenarios (3.4) on the pure core, plus one per step class."""

from __future__ import annotations

from interruptible import (
    Backoff,
    CancelEffects,
    Disposition,
    EmitLifecycle,
    EmitOutput,
    FailureCategory,
    IgnoredReason,
    RunStatus,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
)
from interruptible._verify._driver import CoreDriver

from .conftest import STEPS, finish_step


def _starts(driver: CoreDriver) -> list[tuple[str, int]]:
    return [(d.step_id, d.attempt) for d in driver.directives if isinstance(d, StartEffect)]


def _outputs(driver: CoreDriver, run_id: str) -> list[EmitOutput]:
    return [d for d in driver.directives if isinstance(d, EmitOutput) and d.run_id == run_id]


def test_3_4_1_1_multi_step_run_completes(driver: CoreDriver) -> None:
    """CORE-10, DIR-1: a five-step run completes with every output and one terminal output."""
    driver.run("r1", "pipeline", {"topic": "x"})
    for step_id in STEPS:
        finish_step(driver, "r1", step_id)
    run = driver.run_state("r1")
    assert run.status is RunStatus.completed
    assert [s.status for s in run.steps] == [StepStatus.completed] * 5
    assert _starts(driver) == [(s, 1) for s in STEPS]
    (output,) = _outputs(driver, "r1")
    assert output.status == "completed"
    assert output.error is None
    assert output.output["outputs"] == {
        "plan": "plan-out",
        "fetch": "fetch-out",
        "approve": "yes",
        "wait": "wait-out",
        "publish": "publish-out",
    }
    assert driver.state.active_run_id is None
    assert driver.state.history == ("r1",)


def test_3_4_1_2_failure_terminalizes_and_projects_the_error(driver: CoreDriver) -> None:
    """CORE-14, DIR-1: a step that fails for good fails the run with the normalized envelope."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    outcome = driver.fail(
        "r1", "fetch", FailureCategory.invalid_input, "bad url", details={"url": "u"}
    )
    run = driver.run_state("r1")
    assert run.status is RunStatus.failed
    assert run.error is not None
    envelope = run.error
    assert (envelope.category, envelope.message, envelope.step_id, envelope.attempt) == (
        FailureCategory.invalid_input,
        "bad url",
        "fetch",
        1,
    )
    assert envelope.retryable is False
    assert envelope.details == {"url": "u"}
    assert isinstance(outcome.directives[-1], EmitOutput)
    assert outcome.directives[-1].error == envelope
    assert outcome.directives[-1].status == "failed"
    assert [s.status for s in run.steps] == [StepStatus.completed, StepStatus.failed]


def test_3_4_1_3_terminal_exclusivity_under_every_late_event(driver: CoreDriver) -> None:
    """DIR-1, CORE-21: after a run ends, no event changes it or emits another output."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.cancel("r1")
    assert driver.run_state("r1").status is RunStatus.canceled
    ended = driver.state
    late = [
        driver.complete("r1", "plan", "late"),
        driver.fail("r1", "plan", FailureCategory.transient, retryable=True),
        driver.canceled("r1", "plan"),
        driver.progress("r1", "plan", 1),
        driver.started("r1", "plan"),
        driver.cancel("r1"),
        driver.interrupt("r1"),
    ]
    for outcome in late:
        assert outcome.disposition is Disposition.ignored
        assert outcome.reason is IgnoredReason.run_terminal
        assert outcome.directives == ()
        assert outcome.state is ended
    assert driver.resume("r1").disposition is Disposition.rejected
    assert len(_outputs(driver, "r1")) == 1


def test_3_4_2_1_interrupt_cancels_active_effects_and_marks_interrupted(
    driver: CoreDriver,
) -> None:
    """CORE-17, DIR-2, DIR-3: one cancel for the live effect, first; then run.interrupted."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    outcome = driver.interrupt("r1", reason="user_stop")
    run = driver.run_state("r1")
    assert run.status is RunStatus.interrupted
    assert run.reason == "user_stop"
    assert driver.step("r1", "fetch").status is StepStatus.cancelling
    cancel = outcome.directives[0]
    assert isinstance(cancel, CancelEffects)
    assert cancel.effect_ids == ("r1/fetch/1",)
    assert cancel.reason == "user_stop"
    lifecycle = [d for d in outcome.directives if isinstance(d, EmitLifecycle)]
    assert lifecycle[-1].name == "run.interrupted"
    assert lifecycle[-1].reason == "user_stop"
    assert not any(isinstance(d, StartEffect) for d in outcome.directives)


def test_3_4_2_2_resume_picks_up_at_the_expected_step(driver: CoreDriver) -> None:
    """CORE-18, CORE-19: the canceled step starts again with a new attempt and effect id."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    driver.interrupt("r1")
    driver.canceled("r1", "fetch")
    assert driver.step("r1", "fetch").status is StepStatus.pending
    outcome = driver.resume("r1")
    starts = [d for d in outcome.directives if isinstance(d, StartEffect)]
    assert [(s.step_id, s.attempt, s.effect_id) for s in starts] == [("fetch", 2, "r1/fetch/2")]
    assert starts[0].delay == 0.0  # the canceled attempt does not count as a failure
    assert driver.step("r1", "fetch").failures == 0
    for step_id in STEPS[1:]:
        finish_step(driver, "r1", step_id)
    assert driver.run_state("r1").status is RunStatus.completed
    assert ("plan", 2) not in _starts(driver)


def test_3_4_2_2_resume_after_completion_crossed_the_cancel(driver: CoreDriver) -> None:
    """CORE-18: a result that crossed the cancel is kept; resume starts the next step."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.interrupt("r1")
    crossed = driver.complete("r1", "plan", "crossed")
    assert crossed.applied
    assert driver.step("r1", "plan").status is StepStatus.completed
    assert not any(isinstance(d, StartEffect) for d in crossed.directives)  # still interrupted
    outcome = driver.resume("r1")
    starts = [(d.step_id, d.attempt) for d in outcome.directives if isinstance(d, StartEffect)]
    assert starts == [("fetch", 1)]
    assert Sequence.outputs_of(driver.run_state("r1").context) == [["plan", "crossed"]]


def test_3_4_2_2_resume_before_the_cancel_answer_waits(driver: CoreDriver) -> None:
    """CORE-19: resumed before the effect answered, the step starts only after the answer."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.interrupt("r1")
    resumed = driver.resume("r1")
    assert driver.run_state("r1").status is RunStatus.running
    assert not any(isinstance(d, StartEffect) for d in resumed.directives)
    assert driver.step("r1", "plan").status is StepStatus.cancelling
    answered = driver.fail("r1", "plan", FailureCategory.canceled, "cancelled")
    starts = [(d.step_id, d.attempt) for d in answered.directives if isinstance(d, StartEffect)]
    assert starts == [("plan", 2)]
    assert driver.run_state("r1").status is RunStatus.running
    assert driver.step("r1", "plan").failures == 0


def test_3_4_2_3_duplicate_interrupt_and_resume_are_idempotent(driver: CoreDriver) -> None:
    """CORE-21: duplicates change nothing, emit nothing, and are not errors."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.interrupt("r1")
    before = driver.state
    again = driver.interrupt("r1")
    assert (again.disposition, again.reason) == (
        Disposition.ignored,
        IgnoredReason.duplicate_request,
    )
    assert again.state is before and again.directives == ()
    driver.canceled("r1", "plan")
    driver.resume("r1")
    before = driver.state
    again = driver.resume("r1")
    assert (again.disposition, again.reason) == (
        Disposition.ignored,
        IgnoredReason.duplicate_request,
    )
    assert again.state is before and again.directives == ()
    cancels = [d for d in driver.directives if isinstance(d, CancelEffects)]
    assert [c.effect_ids for c in cancels] == [("r1/plan/1",)]


def test_step_class_timer(driver: CoreDriver) -> None:
    """CORE-15: a timer step's input and policy reach its start_effect unchanged."""
    driver.run("r1", "pipeline")
    for step_id in ("plan", "fetch", "approve"):
        finish_step(driver, "r1", step_id)
    (start,) = [d for d in driver.outcomes[-1].directives if isinstance(d, StartEffect)]
    assert (start.step_class, start.input, start.step_id) == (
        StepClass.timer,
        {"seconds": 1},
        "wait",
    )
    assert start.idempotency_key == "r1:wait:1"
    driver.started("r1", "wait")
    assert driver.step("r1", "wait").status is StepStatus.running
    driver.complete("r1", "wait", None)
    assert driver.step("r1", "wait").status is StepStatus.completed


def test_step_class_human_gate_answered_after_a_resume(driver: CoreDriver) -> None:
    """CORE-24: an answer given while interrupted is kept and applied once the gate opens."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    finish_step(driver, "r1", "fetch")
    driver.started("r1", "approve")
    assert driver.step("r1", "approve").status is StepStatus.waiting_input
    driver.interrupt("r1")
    driver.canceled("r1", "approve")
    early = driver.answer("r1", "approve", "ship")
    assert early.applied
    assert driver.step("r1", "approve").status is StepStatus.pending
    driver.resume("r1")
    opened = driver.started("r1", "approve")
    assert driver.step("r1", "approve").status is StepStatus.completed
    assert driver.step("r1", "approve").result is not None
    assert driver.step("r1", "approve").result.output == "ship"  # type: ignore[union-attr]
    assert isinstance(opened.directives[0], CancelEffects)  # the gate's waiter is released
    assert opened.directives[0].effect_ids == ("r1/approve/2",)
    assert driver.answer("r1", "approve", "ship").reason is IgnoredReason.duplicate_input


def test_step_class_tool_retries_with_backoff(driver: CoreDriver) -> None:
    """CORE-13: a retryable tool failure schedules the next attempt with the backoff delay; a
    failure whose category the policy does not retry, or one after the last attempt, fails the
    run."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    first = driver.fail("r1", "fetch", FailureCategory.transient, "503", retryable=True)
    (retry,) = [d for d in first.directives if isinstance(d, StartEffect)]
    assert (retry.attempt, retry.delay, retry.effect_id) == (2, 0.5, "r1/fetch/2")
    driver.started("r1", "fetch")
    driver.fail("r1", "fetch", FailureCategory.transient, "503", retryable=True)
    assert driver.run_state("r1").status is RunStatus.failed  # two counted attempts spent
    driver.run("r2", "pipeline")
    finish_step(driver, "r2", "plan")
    driver.started("r2", "fetch")
    driver.fail("r2", "fetch", FailureCategory.timeout, "slow", retryable=True)
    assert driver.run_state("r2").status is RunStatus.failed  # timeout is not in retry_on


def test_step_class_tool_backoff_grows_with_each_attempt() -> None:
    """CORE-13: each retry waits the backoff's next delay (initial, then times the multiplier),
    and a retryable failure of any category in `retry_on` is retried until the last attempt."""
    policy = StepPolicy(
        max_attempts=3,
        backoff=Backoff(initial=0.5, multiplier=2.0, max_delay=5.0),
        retry_on=(FailureCategory.transient, FailureCategory.timeout),
    )
    tool = StepDefinition("fetch", StepClass.tool, {"name": "fetch"}, policy)
    driver = CoreDriver([Sequence("retrying", (tool,))])
    driver.run("r1", "retrying")
    driver.started("r1", "fetch")
    first = driver.fail("r1", "fetch", FailureCategory.transient, "503", retryable=True)
    (retry,) = [d for d in first.directives if isinstance(d, StartEffect)]
    assert (retry.attempt, retry.delay, retry.effect_id) == (2, 0.5, "r1/fetch/2")
    driver.started("r1", "fetch")
    second = driver.fail("r1", "fetch", FailureCategory.timeout, "slow", retryable=True)
    (retry,) = [d for d in second.directives if isinstance(d, StartEffect)]
    assert (retry.attempt, retry.delay) == (3, 1.0)
    driver.started("r1", "fetch")
    driver.fail("r1", "fetch", FailureCategory.transient, "503", retryable=True)
    assert driver.run_state("r1").status is RunStatus.failed  # three counted attempts spent


def test_step_class_llm_agent_loop_turn(driver: CoreDriver) -> None:
    """MODE-4: an llm step asks for a tool; its result feeds the next llm step."""
    driver.run("r1", "agent", {"prompt": "weather?"})
    driver.started("r1", "turn-1.llm")
    calls = [{"id": "c1", "name": "search", "arguments": {"q": "weather"}}]
    driver.complete("r1", "turn-1.llm", {"content": "", "tool_calls": calls})
    driver.started("r1", "turn-1.tool-c1")
    driver.complete("r1", "turn-1.tool-c1", "sunny")
    step = driver.step("r1", "turn-2.llm")
    assert step.definition.input["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "sunny",
    }
    driver.started("r1", "turn-2.llm")
    driver.complete("r1", "turn-2.llm", {"content": "It is sunny.", "tool_calls": []})
    run = driver.run_state("r1")
    assert run.status is RunStatus.completed
    assert run.output == {"answer": "It is sunny.", "turns": 2}


def test_step_class_system(driver: CoreDriver) -> None:
    """CORE-12: a system step's output is kept as its StepResult with its attempt and effect."""
    driver.run("r1", "pipeline")
    for step_id in STEPS[:-1]:
        finish_step(driver, "r1", step_id)
    driver.started("r1", "publish")
    driver.complete("r1", "publish", {"url": "https://example.invalid/x"})
    result = driver.step("r1", "publish").result
    assert result is not None
    assert (result.step_id, result.attempt, result.effect_id) == ("publish", 1, "r1/publish/1")
    assert result.output == {"url": "https://example.invalid/x"}
