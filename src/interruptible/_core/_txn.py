"""One run's changes while `reduce` handles one event: every status change goes through here.

Theory of operation
-------------------
A `RunTxn` copies the fields of a `RunState` that an event may change into plain attributes,
fires the compiled lifecycles (`RUN`, `STEP`) on them, and turns the directive templates of each
fired transition into directives. `commit()` builds the new immutable `RunState` once at the end,
which is both simpler and faster than replacing frozen records after every transition.

Directive order, the same for every event (DIR-2): one merged `cancel_effects` first (so a cancel
reaches the effect at once), then the other directives in the order their transitions fired, and
the run's `emit_output` last. The `cancel_effects` templates of the step transitions contribute
their step's live effect id; all of one event's ids travel in one directive (DIR-3).

A mode callback that raises fails the run with a `mode_error` envelope (MODE-3); the callback's
exception never escapes `reduce`. The one exception: `on_result` refusing an effect's output
(`OutputRefusedError`) is left in `refusal`, and the coordinator fails the step instead (CORE-28).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar, TypeVarTuple

from .._errors import IllegalTransition
from .._interpreter import NO_GUARDS, CompiledLifecycle, Transition, compile_lifecycle
from .._lifecycle import (
    LIVE_STEP_STATUSES,
    STEP_CLASS_TRAITS,
    DirectiveKind,
    RunLifecycle,
    RunStatus,
    StepLifecycle,
    StepStatus,
)
from .._vocabulary import (
    CancelEffects,
    Directive,
    EmitLifecycle,
    EmitOutput,
    EmitProgress,
    FailureCategory,
    JsonValue,
    StartEffect,
    StepDefinition,
    StepFailure,
    StepResult,
    effect_id_for,
    idempotency_key_for,
)
from . import _steps
from ._modes import Complete, Fail, Mode, ModeError, NextStep, OutputRefusedError
from ._state import NO_INPUT, RunState, StepState, step_with
from ._steps import Draft, Steps, freeze

RUN: Final[CompiledLifecycle[RunStatus]] = compile_lifecycle(RunLifecycle, RunStatus)
STEP: Final[CompiledLifecycle[StepStatus]] = compile_lifecycle(StepLifecycle, StepStatus)

# Per status, the `emit_lifecycle` name and status value (an enum's `.value` is a slow property).
_RUN_EMITS: Final = {status: (f"run.{status.value}", status.value) for status in RunStatus}
_STEP_EMITS: Final = {status: (f"step.{status.value}", status.value) for status in StepStatus}
Args = TypeVarTuple("Args")
Answer = TypeVar("Answer")

_EMIT: Final = DirectiveKind.emit_lifecycle
_START: Final = DirectiveKind.start_effect
_CANCEL: Final = DirectiveKind.cancel_effects
_PROGRESS: Final = DirectiveKind.emit_progress
_OUTPUT: Final = DirectiveKind.emit_output


class RunTxn:
    """The working copy of one run while one event is reduced."""

    __slots__ = (
        "cancel_ids",
        "cancel_reason",
        "cause_id",
        "context",
        "conversation_id",
        "directives",
        "early_inputs",
        "error",
        "mode",
        "output",
        "reason",
        "refusal",
        "run",
        "status",
        "step_ids",
        "steps",
    )

    def __init__(self, conversation_id: str, run: RunState, mode: Mode, cause_id: str) -> None:
        self.conversation_id = conversation_id
        self.run = run
        self.mode = mode
        self.cause_id = cause_id
        self.status = run.status
        steps = run.steps  # a list to edit, or O(1) edits of a long run's `Steps` (CORE-26)
        self.steps: Draft = steps.draft() if type(steps) is Steps else list(steps)
        self.step_ids = run.step_ids
        self.context = run.context
        self.reason = run.reason
        self.output = run.output
        self.error = run.error
        self.early_inputs = run.early_inputs
        self.directives: list[Directive] = []
        self.cancel_ids: list[str] = []
        self.cancel_reason = "interrupted"
        self.refusal: OutputRefusedError | None = None

    # --- firing the lifecycles ------------------------------------------------------------------

    def fire_run(self, event: str, guards: Mapping[str, bool] = NO_GUARDS) -> None:
        """Fire a run lifecycle event; on a terminal target, end every unfinished step first."""
        transition = RUN.fire(self.status, event, guards)
        if transition.target in RUN.finals:
            self.cancel_reason = self.reason or transition.target.value
            for index, step in enumerate(self.steps):
                if step.status not in STEP.finals:
                    self.fire_step(index, "abandon")
        self.status = transition.target
        for kind in transition.directives:
            if kind is _EMIT:
                name, value = _RUN_EMITS[transition.target]
                self.directives.append(
                    EmitLifecycle(
                        self.conversation_id,
                        self.run.run_id,
                        name,
                        value,
                        self.cause_id,
                        self.reason,
                    )
                )
        if transition.emits(_OUTPUT):
            self.output = self.call_mode(self.mode.finalize, self.context, self.status)
            self.directives.append(
                EmitOutput(
                    self.conversation_id,
                    self.run.run_id,
                    _RUN_EMITS[self.status][1],
                    self.output,
                    self.error,
                    self.cause_id,
                )
            )

    def fire_step(
        self, index: int, event: str, guards: Mapping[str, bool] = NO_GUARDS
    ) -> StepStatus:
        """Fire a step lifecycle event on step `index` and emit its directive templates."""
        step = self.steps[index]
        transition = STEP.fire(step.status, event, guards)
        target = transition.target
        if target is not step.status:
            step = step_with(step, status=target)
            self.steps[index] = step
        self._emit_step(step, transition)
        return target

    def _emit_step(self, step: StepState, transition: Transition[StepStatus]) -> None:
        """The directives of a step transition that `step` (already rebuilt) has taken."""
        for kind in transition.directives:
            if kind is _EMIT:
                name, value = _STEP_EMITS[transition.target]
                self.directives.append(
                    EmitLifecycle(
                        self.conversation_id,
                        self.run.run_id,
                        name,
                        value,
                        self.cause_id,
                        None,  # a step's lifecycle has no reason of its own
                        step.definition.step_id,
                        step.effect_id,
                        step.attempt,
                    )
                )
            elif kind is _CANCEL:
                if step.effect_id is not None:
                    self.cancel_ids.append(step.effect_id)
            elif kind is _START:
                self.directives.append(self._start_effect(step))

    def emit_progress(self, index: int, sequence: int, progress: JsonValue) -> None:
        """Fire `effect_progress` on step `index` and emit the progress it carries."""
        step = self.steps[index]
        transition = STEP.fire(step.status, "effect_progress")
        self.steps[index] = step_with(step, progress_sequence=sequence)
        if transition.emits(_PROGRESS):
            assert step.effect_id is not None  # a running step always has its effect
            self.directives.append(
                EmitProgress(
                    self.conversation_id,
                    self.run.run_id,
                    step.definition.step_id,
                    step.effect_id,
                    step.attempt,
                    sequence,
                    progress,
                    self.cause_id,
                )
            )

    def _start_effect(self, step: StepState) -> StartEffect:
        definition = step.definition
        assert step.effect_id is not None  # set by schedule() before firing
        run_id = self.run.run_id
        return StartEffect(
            self.conversation_id,
            run_id,
            definition.step_id,
            step.effect_id,
            step.attempt,
            definition.step_class,
            definition.input,
            definition.policy,
            idempotency_key_for(run_id, definition.step_id, step.attempt),
            definition.policy.backoff.delay(step.failures) if step.failures else 0.0,
            self.cause_id,
        )

    # --- the coordinator's moves ---------------------------------------------------------------

    def schedule(self, index: int) -> None:
        """Give step `index` a new attempt and effect id, and start it."""
        step = self.steps[index]
        transition = STEP.fire(step.status, "schedule")
        attempt = step.attempt + 1
        effect_id = effect_id_for(self.run.run_id, step.definition.step_id, attempt)
        step = step_with(
            step,
            status=transition.target,
            attempt=attempt,
            effect_id=effect_id,
            progress_sequence=-1,  # no progress seen from the new effect yet
        )
        self.steps[index] = step
        self._emit_step(step, transition)

    def complete_step(
        self, index: int, event: str, output: JsonValue, *, refusable: bool = False
    ) -> None:
        """Fire `event` (which completes step `index`), keep `output` and tell the mode.

        With `refusable`, a mode that refuses the output (`OutputRefusedError`) does not fail the
        run: the refusal is left in `self.refusal` and the caller drops this txn (CORE-28).
        """
        transition = STEP.fire(self.steps[index].status, event)
        assert transition.target is StepStatus.completed
        result = self._keep(index, output)
        self._emit_step(self.steps[index], transition)
        on_result = self._on_result_refusable if refusable else self.mode.on_result
        self.update_context(on_result, self.context, result)

    def _on_result_refusable(self, context: JsonValue, result: StepResult) -> JsonValue:
        try:
            return self.mode.on_result(context, result)
        except OutputRefusedError as refusal:
            self.refusal = refusal
            return context

    def keep_result(self, index: int, output: JsonValue) -> None:
        """Keep the result of step `index`, which has completed, and tell the mode."""
        self.update_context(self.mode.on_result, self.context, self._keep(index, output))

    def _keep(self, index: int, output: JsonValue) -> StepResult:
        """Rebuild step `index` completed with `output` as its kept result; return the result."""
        step = self.steps[index]
        assert step.effect_id is not None
        result = StepResult(step.definition.step_id, step.attempt, step.effect_id, output)
        # an early human answer is used up
        self.steps[index] = step_with(
            step, status=StepStatus.completed, result=result, input=NO_INPUT
        )
        return result

    def advance(self) -> None:
        """While the run is running and no step is live, ask the mode what comes next."""
        while self.status is RunStatus.running:
            if self.steps and self.steps[-1].status in LIVE_STEP_STATUSES:
                return  # only the last step can be unfinished (_place), so only it can be live
            plan = self.call_mode(self.mode.plan, self.context)
            if self.status is not RunStatus.running:
                return  # the mode raised and the run failed
            if isinstance(plan, NextStep):
                index = self._place(plan.step)
                if index is None:
                    return
                self.schedule(index)
                return
            if isinstance(plan, Complete):
                no_step_left = all(step.status in STEP.finals for step in self.steps)
                try:
                    self.fire_run("complete", {"no_step_left": no_step_left})
                except IllegalTransition:
                    self.fail_protocol("the mode completed the run while a step is unfinished")
                return
            if isinstance(plan, Fail):
                self.fail(StepFailure(plan.category, plan.message, details=plan.details))
                return
            self.fail_protocol(f"the mode's plan returned {plan!r}, not a Plan")
            return

    def _place(self, definition: StepDefinition) -> int | None:
        """The index of the planned step, appending it when new; None when the run failed.

        One step is unfinished at a time, and it is the last one planned (CORE-10), so only the
        last step is looked at; `step_ids` answers "was this id planned before" without a scan.
        """
        step_id = definition.step_id
        if self.steps:
            last = self.steps[-1]
            if last.status not in STEP.finals:
                if last.definition.step_id != step_id:
                    self.fail_protocol(
                        f"the mode planned {step_id!r} before {last.definition.step_id!r} ended"
                    )
                    return None
                if last.definition != definition:
                    self.fail_protocol(f"the mode changed the definition of {step_id!r}")
                    return None
                return len(self.steps) - 1
        if step_id in self.step_ids:
            self.fail_protocol(f"the mode planned step {step_id!r} again")
            return None
        if definition.step_class not in STEP_CLASS_TRAITS:
            self.fail_protocol(f"step {step_id!r} has no known step class")
            return None
        self.step_ids = self.step_ids.add(step_id)
        step = StepState(definition)
        for step_id, value in self.early_inputs:
            if step_id == definition.step_id:  # an answer that came before the gate was planned
                step = step_with(step, input=value)
                self.early_inputs = tuple(e for e in self.early_inputs if e[0] != step_id)
        self.steps.append(step)
        return len(self.steps) - 1

    def fail(self, failure: StepFailure) -> None:
        """End the run as failed, projecting `failure` as its error."""
        self.error = failure
        self.reason = failure.category.value
        self.fire_run("fail")

    def fail_protocol(self, message: str) -> None:
        """End the run because a mode broke the protocol."""
        self.fail(StepFailure(FailureCategory.protocol_error, message))

    def update_context(self, callback: Callable[[*Args], JsonValue], *args: *Args) -> None:
        """Replace the context by a mode callback's answer."""
        context = self.call_mode(callback, *args)
        if self.status not in RUN.finals:
            self.context = context

    def call_mode(self, callback: Callable[[*Args], Answer], *args: *Args) -> Answer | None:
        """Call a mode callback; if it raises, fail the run (once) and return None."""
        try:
            return callback(*args)
        except Exception as exc:
            if self.status in RUN.finals:
                return None  # finalize itself raised: the run already ended
            category = exc.category if isinstance(exc, ModeError) else FailureCategory.mode_error
            self.fail(StepFailure(category, f"{type(exc).__name__}: {exc}"))
            return None

    def commit(self) -> tuple[RunState, tuple[Directive, ...]]:
        """The new run state and the event's directives, in the documented order."""
        directives = self.directives
        if self.cancel_ids:
            cancel = CancelEffects(
                self.conversation_id,
                self.run.run_id,
                tuple(self.cancel_ids),
                self.cancel_reason,
                self.cause_id,
            )
            directives = [cancel, *directives]
        run = self.run
        steps = self.steps
        state = RunState(
            run.run_id,
            run.mode,
            self.status,
            run.input,
            run.principal,
            # `freeze`'s common case written out (a call per event measured at 1-2% of reduce).
            tuple(steps)
            if type(steps) is list and len(steps) <= _steps.LONG_RUN
            else freeze(steps),
            self.context,
            self.reason,
            self.output,
            self.error,
            run.requested_at,
            self.early_inputs,
            self.step_ids,
            run.fingerprint,
            run.definition,
        )
        return state, tuple(directives)
