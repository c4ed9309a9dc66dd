"""The core's rules (spec/core.md), one test per rule or per facet of a rule."""

from __future__ import annotations

import json

import pytest

from interruptible import (
    CancelEffects,
    Coordinator,
    Disposition,
    EffectStarted,
    EmitAudit,
    EmitLifecycle,
    EmitOutput,
    EmitProgress,
    FailureCategory,
    GateClosedError,
    IgnoredReason,
    IllegalTransition,
    InvalidEventError,
    ModeNotFoundError,
    NotAuthorizedError,
    ResumeNotAllowedError,
    RunConflictError,
    RunInProgressError,
    RunNotFoundError,
    RunStatus,
    RunTerminalError,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepNotFoundError,
    StepStatus,
    initial_state,
    replay,
)
from interruptible._core import HISTORY_LIMIT, Complete, Fail, ModeError, NextStep
from interruptible._verify._driver import CoreDriver

from .conftest import LENIENT, STEPS, finish_step, make_coordinator


def test_core_1_non_events_and_malformed_events_are_rejected(driver: CoreDriver) -> None:
    """CORE-1: reduce answers a typed rejection for what is not a well-formed event."""
    state = driver.state
    for bad in ("run", None, 3, object()):
        outcome = driver.coordinator.reduce(state, bad)  # type: ignore[arg-type]
        assert outcome.disposition is Disposition.rejected
        assert isinstance(outcome.error, InvalidEventError)
    malformed = [
        EffectStarted("e1", "c1", "r1", "s", "x", "1"),  # type: ignore[arg-type]
        EffectStarted("e1", "c1", "", "s", "x", 1),
        EffectStarted("e1", "c1", "r1", "s", "x", True),
        EffectStarted("e1", "c1", "r1", "s", "x", 1, at=float("nan")),
        EffectStarted("e1", 7, "r1", "s", "x", 1),  # type: ignore[arg-type]
    ]
    for event in malformed:
        outcome = driver.coordinator.reduce(state, event)
        assert isinstance(outcome.error, InvalidEventError), event
        assert outcome.state is state


def test_core_1_wrong_conversation_and_unknown_ids(driver: CoreDriver) -> None:
    """CORE-1: another conversation's event, unknown runs and steps are typed rejections."""
    driver.run("r1", "pipeline")
    other = CoreDriver(make_coordinator(), conversation_id="c2")
    other.state = driver.state
    assert isinstance(other.run("r9", "pipeline").error, InvalidEventError)
    assert isinstance(driver.interrupt("nope").error, RunNotFoundError)
    assert isinstance(driver.resume("nope").error, RunNotFoundError)
    assert isinstance(driver.cancel("nope").error, RunNotFoundError)
    assert isinstance(driver.answer("nope", "approve", 1).error, RunNotFoundError)
    outcome = driver.send(EffectStarted("e99", "c1", "r1", "ghost", "r1/ghost/1", 1))
    assert isinstance(outcome.error, StepNotFoundError)
    assert isinstance(driver.run("r2", "no-such-mode").error, ModeNotFoundError)


def test_core_1_out_of_order_effect_events_are_illegal(driver: CoreDriver) -> None:
    """CORE-1: progress before start and an unrequested cancel are IllegalTransition."""
    driver.run("r1", "pipeline")
    outcome = driver.progress("r1", "plan", 1)
    assert isinstance(outcome.error, IllegalTransition)
    assert outcome.error.run_id == "r1"
    driver.started("r1", "plan")
    outcome = driver.canceled("r1", "plan")
    assert isinstance(outcome.error, IllegalTransition)
    assert "effect_canceled" in str(outcome.error)


def test_core_2_refusals_change_nothing(driver: CoreDriver) -> None:
    """CORE-2: a rejected or ignored event returns the very state it was given."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    state = driver.state
    for outcome in (
        driver.run("r2", "pipeline"),
        driver.interrupt("r1", principal="mallory"),
        driver.resume("r1"),
        driver.started("r1", "plan"),
        driver.started("r1", "plan", attempt=7),
    ):
        assert outcome.disposition is not Disposition.applied
        assert outcome.state is state
        if outcome.disposition is Disposition.ignored:
            assert outcome.directives == ()


def test_core_3_retention_keeps_ids_forever(driver: CoreDriver) -> None:
    """CORE-3: old ended runs are forgotten, their ids are not; late events for them are ignored."""
    for n in range(HISTORY_LIMIT + 3):
        driver.run(f"r{n}", "pipeline")
        driver.cancel(f"r{n}")
    assert len(driver.state.history) == HISTORY_LIMIT
    assert len(driver.state.runs) == HISTORY_LIMIT
    assert "r0" not in driver.state.runs and "r0" in driver.state.run_ids
    late = driver.send(EffectStarted("e-late", "c1", "r0", "plan", "r0/plan/1", 1))
    assert late.reason is IgnoredReason.run_terminal
    assert isinstance(driver.run("r0", "pipeline").error, RunConflictError)
    assert isinstance(driver.resume("r0").error, ResumeNotAllowedError)


def test_core_4_reduce_is_deterministic() -> None:
    """CORE-4: the same events give equal outcomes twice, with derived effect ids."""
    first, second = CoreDriver(make_coordinator()), CoreDriver(make_coordinator())
    for d in (first, second):
        d.run("r1", "pipeline")
        finish_step(d, "r1", "plan")
        d.interrupt("r1")
    assert first.state == second.state
    assert first.directives == second.directives
    starts = [d for d in first.directives if isinstance(d, StartEffect)]
    assert [s.effect_id for s in starts] == ["r1/plan/1", "r1/fetch/1"]


def test_core_5_replay_parity(driver: CoreDriver) -> None:
    """CORE-5: replaying the events gives the same state and directive sequence."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    driver.started("r1", "fetch")
    driver.interrupt("r1")
    driver.complete("r1", "fetch", "crossed")
    driver.resume("r1")
    driver.answer("r1", "approve", "early")
    driver.started("r1", "approve")
    driver.run("r2", "pipeline")  # rejected: r1 is active
    folded = replay(make_coordinator(), driver.events)
    assert folded.state == driver.state
    assert list(folded.directives) == driver.directives
    assert [o.disposition for o in folded.outcomes] == [o.disposition for o in driver.outcomes]


def test_core_6_one_active_run_per_conversation(driver: CoreDriver) -> None:
    """CORE-6: a second run while one is active is RunInProgressError; after it ends, allowed."""
    driver.run("r1", "pipeline")
    driver.interrupt("r1")
    outcome = driver.run("r2", "pipeline")
    assert isinstance(outcome.error, RunInProgressError)
    assert outcome.error.run_id == "r1"
    assert outcome.error.status == "interrupted"
    driver.cancel("r1")
    assert driver.run("r2", "pipeline").applied
    assert driver.state.active_run_id == "r2"


def test_core_7_supersede_cancels_the_active_run_first(driver: CoreDriver) -> None:
    """CORE-7: supersede cancels the active run (reason superseded) and starts the new one."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    refused = driver.run("r2", "pipeline", principal="mallory", supersede=True)
    assert isinstance(refused.error, NotAuthorizedError)
    outcome = driver.run("r2", "pipeline", supersede=True)
    assert outcome.applied
    old = driver.run_state("r1")
    assert (old.status, old.reason) == (RunStatus.canceled, "superseded")
    cancel = next(d for d in outcome.directives if isinstance(d, CancelEffects))
    assert cancel.effect_ids == ("r1/plan/1",)
    outputs = [d for d in outcome.directives if isinstance(d, EmitOutput)]
    assert [(o.run_id, o.status) for o in outputs] == [("r1", "canceled")]
    assert driver.state.active_run_id == "r2"
    assert driver.run_state("r2").status is RunStatus.running


def test_core_8_duplicate_run_request(driver: CoreDriver) -> None:
    """CORE-8: same id and request is ignored; same id, other input is a conflict."""
    driver.run("r1", "pipeline", {"a": 1})
    state = driver.state
    again = driver.run("r1", "pipeline", {"a": 1})
    assert (again.reason, again.state) == (IgnoredReason.duplicate_request, state)
    conflict = driver.run("r1", "pipeline", {"a": 2})
    assert isinstance(conflict.error, RunConflictError)


def test_core_9_mode_refusing_its_input_fails_from_pending() -> None:
    """CORE-9, MODE-3: a ModeError in start fails the run from pending with its category."""
    driver = CoreDriver(make_coordinator())
    outcome = driver.run("r1", "agent", {"nonsense": True})
    run = driver.run_state("r1")
    assert run.status is RunStatus.failed
    assert run.error is not None and run.error.category is FailureCategory.invalid_input
    names = [d.name for d in outcome.directives if isinstance(d, EmitLifecycle)]
    assert names == ["run.failed"]
    assert driver.state.active_run_id is None


def test_core_10_and_dir_4_lifecycle_names_and_progress(driver: CoreDriver) -> None:
    """CORE-10, DIR-4: lifecycle directive names; progress once per new sequence."""
    first = driver.run("r1", "pipeline")
    names = [d.name for d in first.directives if isinstance(d, EmitLifecycle)]
    assert names == ["run.running", "step.scheduled"]
    driver.started("r1", "plan")
    one = driver.progress("r1", "plan", 1, {"pct": 10})
    assert [type(d) for d in one.directives] == [EmitProgress]
    assert one.directives[0].progress == {"pct": 10}
    assert driver.progress("r1", "plan", 1, {"pct": 10}).reason is (
        IgnoredReason.duplicate_effect_event
    )
    assert driver.progress("r1", "plan", 0).reason is IgnoredReason.duplicate_effect_event
    assert driver.progress("r1", "plan", 2).applied


class _Replanner:
    """A broken mode that plans its first step again after it finished."""

    name = "replanner"
    step = StepDefinition("only", StepClass.tool)

    def start(self, input: object) -> object:
        return {}

    def plan(self, context: object) -> object:
        return NextStep(self.step)

    def on_result(self, context: object, result: object) -> object:
        return context

    on_failure = on_result

    def on_interrupt(self, context: object, reason: str) -> object:
        return context

    def on_resume(self, context: object) -> object:
        return context

    def finalize(self, context: object, status: object) -> object:
        return None


def test_core_11_a_kept_result_is_never_started_again() -> None:
    """CORE-11: a mode that plans a finished step again fails the run (protocol_error)."""
    driver = CoreDriver(Coordinator([_Replanner()]))  # type: ignore[list-item]
    driver.run("r1", "replanner")
    driver.started("r1", "only")
    outcome = driver.complete("r1", "only", 1)
    assert not any(isinstance(d, StartEffect) for d in outcome.directives)
    run = driver.run_state("r1")
    assert run.status is RunStatus.failed
    assert run.error is not None and run.error.category is FailureCategory.protocol_error


def test_core_12_and_core_15_envelopes_and_cause_links(driver: CoreDriver) -> None:
    """CORE-12, CORE-15: results are normalized; every directive carries its cause links."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan", {"plan": [1, 2]})
    result = driver.step("r1", "plan").result
    assert result is not None and result.output == {"plan": [1, 2]}
    for event, outcome in zip(driver.events, driver.outcomes, strict=True):
        for directive in outcome.directives:
            assert directive.conversation_id == "c1"
            assert directive.run_id == "r1"
            assert directive.cause_id == event.event_id
    start = next(d for d in driver.directives if isinstance(d, StartEffect))
    assert start.policy == driver.step("r1", "plan").definition.policy
    assert start.idempotency_key == "r1:plan:1"


def test_core_13_non_retryable_or_unlisted_failures_do_not_retry(driver: CoreDriver) -> None:
    """CORE-13: retry needs retryable=True and a category in retry_on."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    outcome = driver.fail("r1", "plan", FailureCategory.rate_limited, "429", retryable=True)
    assert driver.run_state("r1").status is RunStatus.failed  # rate_limited is not in retry_on
    assert not any(isinstance(d, StartEffect) for d in outcome.directives)


def test_core_14_on_failure_continue(driver: CoreDriver) -> None:
    """CORE-14: on_failure=continue tells the mode and goes on to the next step."""
    driver.run("r1", "lenient")
    driver.started("r1", "a")
    outcome = driver.fail("r1", "a", FailureCategory.executor_error, "boom")
    assert [(d.step_id, d.attempt) for d in outcome.directives if isinstance(d, StartEffect)] == [
        ("b", 1)
    ]
    finish_step(driver, "r1", "b")
    run = driver.run_state("r1")
    assert run.status is RunStatus.completed
    assert run.output == {"outputs": {"b": "b-out"}, "failed": ["a"]}
    assert LENIENT.steps[0].policy.on_failure.value == "continue"


def test_core_16_authorization_and_audit(driver: CoreDriver) -> None:
    """CORE-16: refusals are typed and audited; operators are allowed; allowed actions audited."""
    driver.run("r1", "pipeline")
    refused = driver.interrupt("r1", principal="mallory")
    assert isinstance(refused.error, NotAuthorizedError)
    assert refused.directives == (refused.directives[0],)
    audit = refused.directives[0]
    assert isinstance(audit, EmitAudit)
    assert (audit.allowed, audit.principal, audit.action.value) == (False, "mallory", "interrupt")
    for action in (
        lambda: driver.resume("r1", principal="mallory"),
        lambda: driver.cancel("r1", principal="mallory"),
        lambda: driver.answer("r1", "approve", "x", principal="mallory"),
    ):
        assert isinstance(action().error, NotAuthorizedError)
    allowed = driver.interrupt("r1", principal="ops")
    audits = [d for d in allowed.directives if isinstance(d, EmitAudit)]
    assert [(a.allowed, a.principal) for a in audits] == [(True, "ops")]


def test_core_17_interrupt_of_a_step_not_yet_started(driver: CoreDriver) -> None:
    """CORE-17: a scheduled (not yet started) effect is cancelled too."""
    driver.run("r1", "pipeline")
    outcome = driver.interrupt("r1")
    assert outcome.directives[0] == CancelEffects(
        "c1", "r1", ("r1/plan/1",), "interrupt_requested", outcome.directives[0].cause_id
    )
    assert driver.step("r1", "plan").status is StepStatus.cancelling


def test_core_18_a_late_start_after_the_cancel_is_ignored(driver: CoreDriver) -> None:
    """CORE-18: effect_started racing the cancel leaves the step cancelling."""
    driver.run("r1", "pipeline")
    driver.interrupt("r1")
    outcome = driver.started("r1", "plan")
    assert outcome.reason is IgnoredReason.cancel_pending
    assert driver.step("r1", "plan").status is StepStatus.cancelling


def test_core_19_resume_only_from_interrupted(driver: CoreDriver) -> None:
    """CORE-19: resume of a terminal run is ResumeNotAllowedError naming the status."""
    driver.run("r1", "pipeline")
    driver.cancel("r1")
    outcome = driver.resume("r1")
    assert isinstance(outcome.error, ResumeNotAllowedError)
    assert outcome.error.status == "canceled"
    assert "only an interrupted run" in str(outcome.error)


def test_core_20_cancel_of_an_interrupted_run_sends_no_second_cancel(driver: CoreDriver) -> None:
    """CORE-20, DIR-3: a cancelling step already had its cancel; cancel ends it without another."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.interrupt("r1")
    outcome = driver.cancel("r1", reason="user_gave_up")
    assert not any(isinstance(d, CancelEffects) for d in outcome.directives)
    run = driver.run_state("r1")
    assert (run.status, run.reason) == (RunStatus.canceled, "user_gave_up")
    assert driver.step("r1", "plan").status is StepStatus.canceled
    assert isinstance(outcome.directives[-1], EmitOutput)


def test_core_21_duplicate_and_late_effect_answers(driver: CoreDriver) -> None:
    """CORE-21: a duplicate answer or a second answer of one effect changes nothing."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    assert driver.started("r1", "plan").reason is IgnoredReason.duplicate_effect_event
    driver.interrupt("r1")
    driver.canceled("r1", "plan")
    state = driver.state
    for outcome in (
        driver.complete("r1", "plan", "late"),
        driver.canceled("r1", "plan"),
        driver.fail("r1", "plan"),
    ):
        assert outcome.reason is IgnoredReason.effect_already_answered
        assert outcome.state is state


def test_core_22_stale_effects_are_ignored(driver: CoreDriver) -> None:
    """CORE-22: an answer from an older attempt is ignored as stale."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.fail("r1", "plan", FailureCategory.transient, retryable=True)
    state = driver.state
    stale = driver.complete("r1", "plan", "old", attempt=1)
    assert (stale.reason, stale.state) == (IgnoredReason.stale_effect, state)


def test_core_23_human_gate_addressing(driver: CoreDriver) -> None:
    """CORE-23: answers to non-gates, changed answers, and closed gates are typed errors."""
    driver.run("r1", "pipeline")
    assert isinstance(driver.answer("r1", "plan", "x").error, StepNotFoundError)  # not planned
    finish_step(driver, "r1", "plan")
    assert isinstance(driver.answer("r1", "plan", "x").error, StepNotFoundError)  # not a gate
    finish_step(driver, "r1", "fetch")
    driver.started("r1", "approve")
    assert driver.answer("r1", "approve", "yes").applied
    assert driver.answer("r1", "approve", "yes").reason is IgnoredReason.duplicate_input
    assert isinstance(driver.answer("r1", "approve", "no").error, RunConflictError)
    driver.cancel("r1")
    assert driver.answer("r1", "approve", "yes").reason is IgnoredReason.duplicate_input
    other = CoreDriver(make_coordinator())
    other.run("r2", "pipeline")
    other.cancel("r2")
    assert isinstance(other.answer("r2", "approve", "x").error, RunTerminalError)
    assert isinstance(other.answer("r2", "ghost", "x").error, StepNotFoundError)
    gate = Sequence(
        "gate",
        (
            StepDefinition(
                "g", StepClass.human_gate, policy=LENIENT.steps[0].policy
            ),  # on_failure=continue
            StepDefinition("after", StepClass.tool),
        ),
    )
    third = CoreDriver(Coordinator([gate]))
    third.run("r3", "gate")
    third.started("r3", "g")
    third.fail("r3", "g", FailureCategory.executor_error)
    assert isinstance(third.answer("r3", "g", "late").error, GateClosedError)
    third.cancel("r3")
    assert isinstance(third.answer("r3", "g", "late").error, RunTerminalError)


def test_core_24_waiting_gate_completes_on_answer(driver: CoreDriver) -> None:
    """CORE-24: answering a waiting gate completes it and releases its waiter."""
    driver.run("r1", "pipeline")
    finish_step(driver, "r1", "plan")
    finish_step(driver, "r1", "fetch")
    driver.started("r1", "approve")
    outcome = driver.answer("r1", "approve", {"ok": True})
    assert isinstance(outcome.directives[0], CancelEffects)
    assert outcome.directives[0].reason == "answered"
    step = driver.step("r1", "approve")
    assert step.status is StepStatus.completed
    assert step.result is not None and step.result.output == {"ok": True}
    assert [d.step_id for d in outcome.directives if isinstance(d, StartEffect)] == ["wait"]
    # The waiter's answer to that cancel is late and changes nothing.
    assert driver.canceled("r1", "approve").reason is IgnoredReason.effect_already_answered


def test_dir_1_exactly_one_output_per_run() -> None:
    """DIR-1: every way a run ends emits exactly one emit_output."""
    for end in ("complete", "fail", "cancel", "supersede"):
        driver = CoreDriver(make_coordinator())
        driver.run("r1", "pipeline")
        if end == "complete":
            for step_id in STEPS:
                finish_step(driver, "r1", step_id)
        elif end == "fail":
            driver.started("r1", "plan")
            driver.fail("r1", "plan", FailureCategory.invalid_input)
        elif end == "cancel":
            driver.cancel("r1")
        else:
            driver.run("r2", "pipeline", supersede=True)
        outputs = [d for d in driver.directives if isinstance(d, EmitOutput) and d.run_id == "r1"]
        assert len(outputs) == 1, end


def test_dir_2_order_cancel_first_output_last(driver: CoreDriver) -> None:
    """DIR-2: cancel_effects comes first and emit_output last in one outcome."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    outcome = driver.cancel("r1")
    kinds = [type(d).__name__ for d in outcome.directives]
    assert kinds[0] == "CancelEffects"
    assert kinds[-1] == "EmitOutput"
    assert kinds[-2] == "EmitLifecycle" and outcome.directives[-2].name == "run.canceled"


def test_dir_3_one_cancel_per_effect_over_a_run(driver: CoreDriver) -> None:
    """DIR-3: interrupt, resume, interrupt again before the answer: still one cancel."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    driver.interrupt("r1")
    driver.resume("r1")
    driver.interrupt("r1")
    driver.cancel("r1")
    ids = [i for d in driver.directives if isinstance(d, CancelEffects) for i in d.effect_ids]
    assert ids == ["r1/plan/1"]


def test_mode_1_context_is_json_serializable(driver: CoreDriver) -> None:
    """MODE-1: the built-in modes' contexts survive a JSON round trip unchanged."""
    driver.run("r1", "pipeline", {"x": [1, 2]})
    finish_step(driver, "r1", "plan", {"k": "v"})
    context = driver.run_state("r1").context
    assert json.loads(json.dumps(context)) == context
    agent = CoreDriver(make_coordinator())
    agent.run("a1", "agent", {"prompt": "hi"})
    assert json.loads(json.dumps(agent.run_state("a1").context)) == agent.run_state("a1").context


def test_mode_2_sequence_rejects_duplicate_step_ids() -> None:
    """MODE-2: a Sequence's step ids are unique."""
    with pytest.raises(ValueError, match="unique"):
        Sequence("dup", (StepDefinition("a", StepClass.tool), StepDefinition("a", StepClass.tool)))


class _Exploding:
    """A mode whose plan raises after the first step."""

    name = "exploding"

    def start(self, input: object) -> object:
        return {"n": 0}

    def plan(self, context: dict[str, int]) -> object:
        if context["n"]:
            raise ModeError("cannot go on", category=FailureCategory.invalid_input)
        return NextStep(StepDefinition("s", StepClass.system))

    def on_result(self, context: dict[str, int], result: object) -> object:
        return {"n": 1}

    on_failure = on_result

    def on_interrupt(self, context: object, reason: str) -> object:
        raise RuntimeError("bug in on_interrupt")

    def on_resume(self, context: object) -> object:
        return context

    def finalize(self, context: object, status: object) -> object:
        raise RuntimeError("bug in finalize")


def test_mode_3_raising_callbacks_fail_the_run() -> None:
    """MODE-3: exceptions from mode callbacks fail the run and never escape reduce."""
    driver = CoreDriver(Coordinator([_Exploding()]))  # type: ignore[list-item]
    driver.run("r1", "exploding")
    driver.started("r1", "s")
    driver.complete("r1", "s")
    run = driver.run_state("r1")
    assert run.status is RunStatus.failed
    assert run.error is not None
    assert (run.error.category, run.error.message) == (
        FailureCategory.invalid_input,
        "ModeError: cannot go on",
    )
    assert run.output is None  # finalize raised; the run still ended once
    second = CoreDriver(Coordinator([_Exploding()]))  # type: ignore[list-item]
    second.run("r1", "exploding")
    second.interrupt("r1")
    assert second.run_state("r1").status is RunStatus.failed
    assert second.run_state("r1").error.message == "RuntimeError: bug in on_interrupt"  # type: ignore[union-attr]


def test_mode_4_completed_tool_call_is_not_called_again_after_interrupt() -> None:
    """MODE-4: interrupting inside a turn never repeats a finished tool call."""
    driver = CoreDriver(make_coordinator())
    driver.run("r1", "agent", {"prompt": "two tools"})
    driver.started("r1", "turn-1.llm")
    calls = [
        {"id": "a", "name": "search", "arguments": {"q": 1}},
        {"id": "b", "name": "search", "arguments": {"q": 2}},
    ]
    driver.complete("r1", "turn-1.llm", {"content": "", "tool_calls": calls})
    finish_step(driver, "r1", "turn-1.tool-a")
    driver.started("r1", "turn-1.tool-b")
    driver.interrupt("r1")
    driver.canceled("r1", "turn-1.tool-b")
    driver.resume("r1")
    starts = [(d.step_id, d.attempt) for d in driver.directives if isinstance(d, StartEffect)]
    assert starts == [
        ("turn-1.llm", 1),
        ("turn-1.tool-a", 1),
        ("turn-1.tool-b", 1),
        ("turn-1.tool-b", 2),
    ]
    driver.started("r1", "turn-1.tool-b")
    driver.complete("r1", "turn-1.tool-b", "b-out")
    driver.started("r1", "turn-2.llm")
    driver.complete("r1", "turn-2.llm", {"content": "done"})
    assert driver.run_state("r1").status is RunStatus.completed


def test_mode_4_turn_bound_fails_the_run() -> None:
    """MODE-4: a model that never stops calling tools fails after max_turns."""
    driver = CoreDriver(make_coordinator())
    driver.run("r1", "agent", {"prompt": "loop"})
    for turn in range(1, 4):
        call = [{"id": f"t{turn}", "name": "search", "arguments": {}}]
        driver.started("r1", f"turn-{turn}.llm")
        driver.complete("r1", f"turn-{turn}.llm", {"content": "", "tool_calls": call})
        finish_step(driver, "r1", f"turn-{turn}.tool-t{turn}")
    run = driver.run_state("r1")
    assert run.status is RunStatus.failed
    assert run.error is not None and "3 turns" in run.error.message


def test_plan_values_are_the_three_kinds() -> None:
    """MODE-2: Complete and Fail are plain values a mode returns."""
    assert Complete() == Complete()
    assert Fail("x").category is FailureCategory.mode_error
    assert initial_state("c").conversation_id == "c"


def test_core_24_answer_before_the_gate_is_planned_is_kept(driver: CoreDriver) -> None:
    """CORE-24: an answer to a declared gate the run has not reached is kept and applied once."""
    driver.run("r1", "pipeline")
    kept = driver.answer("r1", "approve", "early")
    assert kept.applied
    assert driver.run_state("r1").early_inputs == (("approve", "early"),)
    assert driver.answer("r1", "approve", "early").reason is IgnoredReason.duplicate_input
    assert isinstance(driver.answer("r1", "approve", "other").error, RunConflictError)
    assert isinstance(driver.answer("r1", "plan", "x").error, StepNotFoundError)  # not a gate
    finish_step(driver, "r1", "plan")
    finish_step(driver, "r1", "fetch")
    assert driver.run_state("r1").early_inputs == ()
    assert driver.step("r1", "approve").input == "early"
    opened = driver.started("r1", "approve")
    assert driver.step("r1", "approve").status is StepStatus.completed
    assert [d.step_id for d in opened.directives if isinstance(d, StartEffect)] == ["wait"]


def test_core_25_a_lost_effect_restarts_with_a_new_uncounted_attempt(driver: CoreDriver) -> None:
    """CORE-25: effect_lost makes the step pending; a running run restarts it at once."""
    driver.run("r1", "pipeline")
    driver.started("r1", "plan")
    outcome = driver.lost("r1", "plan")
    starts = [
        (d.step_id, d.attempt, d.delay) for d in outcome.directives if isinstance(d, StartEffect)
    ]
    assert starts == [("plan", 2, 0.0)]
    assert driver.step("r1", "plan").failures == 0
    assert driver.complete("r1", "plan", "old", attempt=1).reason is IgnoredReason.stale_effect
    driver.started("r1", "plan")
    driver.interrupt("r1")
    lost = driver.lost("r1", "plan")  # lost while cancelling: the cancel needs no answer now
    assert not any(isinstance(d, StartEffect) for d in lost.directives)
    assert driver.step("r1", "plan").status is StepStatus.pending
    resumed = driver.resume("r1")
    assert [(d.step_id, d.attempt) for d in resumed.directives if isinstance(d, StartEffect)] == [
        ("plan", 3)
    ]
