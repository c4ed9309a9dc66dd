"""The coordinator: `reduce(state, event) -> Outcome`, pure and total.

Theory of operation
-------------------
`Coordinator.reduce` looks the event's class up in a handler table (one handler per event), checks
the event's fields, and hands it to its handler. A handler first does the checks that may refuse
the event (unknown run, authorization, duplicates, stale effects) without touching the state; only
then does it open a `RunTxn`, fire lifecycle events through the compiled tables, and commit. So a
refused or ignored event always returns the state object it was given (CORE-2).

`reduce` never raises for bad input (CORE-1): a malformed event, an unknown id, an out-of-order
effect event all come back as a rejected `Outcome` with a typed error, and a mode callback that
raises fails its run instead of escaping.

No clock, no randomness, no IO: ids and times arrive inside events (CORE-4), so replaying a
journal yields the same states and directives as the live execution did (CORE-5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from .._errors import (
    DefinitionChangedError,
    GateClosedError,
    IllegalTransition,
    InterruptibleError,
    InvalidEventError,
    ModeNotFoundError,
    NotAuthorizedError,
    RunInProgressError,
)
from .._lifecycle import (
    STEP_CLASS_TRAITS,
    TERMINAL_RUN_STATUSES,
    RunStatus,
    StepStatus,
)
from .._vocabulary import (
    AuditAction,
    CancelEffects,
    CancelRequested,
    Directive,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    EmitAudit,
    Event,
    HumanInputReceived,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    RunUpgraded,
    StepFailure,
)
from ._authorizer import Authorizer, OwnerOrOperator
from ._definitions import Differs, definition_of, fingerprint_of, follow, rebuild
from ._guards import attempts_left, is_retryable
from ._modes import Mode, mode_registry
from ._refusals import (
    run_conflict_for_changed_answer,
    run_conflict_for_reused_id,
    step_not_found_for_non_gate,
    step_not_found_for_unplanned_step,
)
from ._rules import RULES, Answer, EventRule, Ignore
from ._state import (
    HISTORY_LIMIT,
    NO_INPUT,
    NO_STEP_IDS,
    ConversationState,
    Disposition,
    IgnoredReason,
    Outcome,
    RunState,
    StepState,
    step_with,
)
from ._steps import freeze
from ._txn import RUN, STEP, RunTxn
from ._validate import check_for

_Handler = Callable[[ConversationState, Any], Outcome]

# The guards `effect_started` reads, per (step class, whether an answer is kept): built once.
# Plain dicts (only `fire` reads them, and a mappingproxy's `get` costs about 25 ns more).
_STARTED_GUARDS: Final = {
    (step_class, has_input): {"awaits_input": traits.awaits_input, "has_input": has_input}
    for step_class, traits in STEP_CLASS_TRAITS.items()
    for has_input in (False, True)
}

# The event rules (`_rules.py`, SPEC-7) the handlers read, one name per event.
_RUN_REQUESTED: Final = RULES[RunRequested]
_INTERRUPT: Final = RULES[InterruptRequested]
_RESUME: Final = RULES[ResumeRequested]
_CANCEL: Final = RULES[CancelRequested]
_STARTED: Final = RULES[EffectStarted]
_PROGRESS: Final = RULES[EffectProgress]
_COMPLETED: Final = RULES[EffectCompleted]
_FAILED: Final = RULES[EffectFailed]
_HUMAN_INPUT: Final = RULES[HumanInputReceived]
_UPGRADED: Final = RULES[RunUpgraded]


def _sources(lifecycle: Any, event: str) -> frozenset[Any]:
    return frozenset(t.source for t in lifecycle.transitions if t.event == event)


# The steps an interrupt stops: the step table's sources of the step event it fires (read from
# the table, not restated; the step diagram's `active` box, STEP_STATUS_GROUPS, is the same set).
_LIVE_UNCANCELLED: Final = _sources(STEP, _INTERRUPT.step_fires[0])
# The run statuses in which a request's run event fires (else it only tells the mode).
_INTERRUPTIBLE: Final = _sources(RUN, _INTERRUPT.run_fires[0])
_RESUMABLE: Final = _sources(RUN, _RESUME.run_fires[0])


def _ignored(state: ConversationState, reason: IgnoredReason) -> Outcome:
    return Outcome(state, (), Disposition.ignored, reason)


def _answer(state: ConversationState, event: Any, answer: Answer, status: str | None) -> Outcome:
    """The outcome an event rule's answer gives: ignored, or refused naming `status`."""
    if isinstance(answer, Ignore):
        return Outcome(state, (), Disposition.ignored, answer.reason)
    error = answer.build(event, answer.status or status)
    return Outcome(state, (), Disposition.rejected, None, error)


def _rejected(
    state: ConversationState, error: InterruptibleError, directives: tuple[Directive, ...] = ()
) -> Outcome:
    return Outcome(state, directives, Disposition.rejected, None, error)


class Coordinator:
    """Sequences mode decisions with lifecycle transitions; `reduce` is its one entry point."""

    def __init__(
        self,
        modes: Iterable[Mode] | Mapping[str, Mode] = (),
        authorizer: Authorizer | None = None,
        *,
        history_limit: int = HISTORY_LIMIT,
    ) -> None:
        registered = list(modes.values() if isinstance(modes, Mapping) else modes)
        # Every registered version by fingerprint, and per name the newest (the last listed),
        # which new runs get (UPG-4).
        self.modes: Mapping[str, Mode] = dict(mode_registry(registered))
        self.registered: tuple[Mode, ...] = tuple(registered)
        self.versions: dict[str, Mode] = {}
        self.current: dict[str, tuple[str, object]] = {}  # name -> (fingerprint, definition)
        for mode in registered:
            definition = definition_of(mode)
            fingerprint = fingerprint_of(definition)
            self.versions[fingerprint] = mode
            self.current[mode.name] = (fingerprint, definition)
        self._rebuilt: dict[str, Mode] = {}  # journaled definitions rebuilt, by fingerprint
        self.authorizer: Authorizer = authorizer if authorizer is not None else OwnerOrOperator()
        self.history_limit = history_limit
        handlers: dict[type[Any], _Handler] = {
            RunRequested: self._run_requested,
            InterruptRequested: self._interrupt_requested,
            ResumeRequested: self._resume_requested,
            CancelRequested: self._cancel_requested,
            EffectStarted: self._effect_started,
            EffectProgress: self._effect_progress,
            EffectCompleted: self._effect_completed,
            EffectFailed: self._effect_failed,
            EffectCanceled: lambda state, event: self._effect_ended(
                state, event, RULES[EffectCanceled]
            ),
            EffectLost: lambda state, event: self._effect_ended(state, event, RULES[EffectLost]),
            HumanInputReceived: self._human_input_received,
            RunUpgraded: self._run_upgraded,
        }
        # Per event class, its handler and its generated field check: one lookup per event.
        self._dispatch: dict[type[Any], tuple[_Handler, Callable[[object], str | None]]] = {
            cls: (handler, check_for(cls)) for cls, handler in handlers.items()
        }

    def with_modes(self, *modes: Mode) -> Coordinator:
        """A coordinator with these modes added (same authorizer and retention)."""
        return Coordinator(
            (*self.registered, *modes), self.authorizer, history_limit=self.history_limit
        )

    def fingerprint(self, name: str) -> str | None:
        """The fingerprint of the newest definition registered as `name` (UPG-1)."""
        current = self.current.get(name)
        return None if current is None else current[0]

    # --- the entry point ----------------------------------------------------------------------

    def reduce(self, state: ConversationState, event: Event) -> Outcome:
        """Fold one event into the conversation state; never raises for bad input."""
        dispatch = self._dispatch.get(type(event))
        if dispatch is None:
            return _rejected(
                state,
                InvalidEventError(
                    f"{type(event).__name__} is not an event of the vocabulary; "
                    f"build one of interruptible's event classes."
                ),
            )
        handler, check = dispatch
        problem = check(event)
        if problem is not None:
            return _rejected(state, InvalidEventError(problem, reason="malformed_event"))
        if state.conversation_id is not None and event.conversation_id != state.conversation_id:
            return _rejected(
                state,
                InvalidEventError(
                    f"event for conversation {event.conversation_id!r} given to the state of "
                    f"conversation {state.conversation_id!r}; reduce it with that conversation's "
                    "state.",
                    conversation_id=event.conversation_id,
                    reason="wrong_conversation",
                ),
            )
        try:
            return handler(state, event)
        except IllegalTransition as exc:
            # An event out of order for its step (progress before start, an unrequested cancel).
            exc.conversation_id = event.conversation_id
            exc.run_id = event.run_id
            return _rejected(state, exc)
        except RecursionError:
            # A payload nested past the interpreter's stack (comparing or copying it recursed):
            # the runtime and the journals refuse such values at their edge (RT-22, JRN-15), but
            # a direct caller of the core may not; refused like any malformed event (CORE-29).
            return _rejected(
                state,
                InvalidEventError(
                    f"{type(event).__name__} carries a payload nested too deep to compare; "
                    "keep payloads within MAX_PAYLOAD_DEPTH levels.",
                    conversation_id=event.conversation_id,
                    run_id=getattr(event, "run_id", None),
                    reason="too_deep",
                ),
            )

    # --- shared steps -------------------------------------------------------------------------

    def _mode(self, run: RunState) -> Mode:
        """The mode a run follows: the registered version with its fingerprint, else the one its
        journaled definition rebuilds (UPG-2), else (a run journaled without one, or a mode of
        the application's own) the one registered under its name."""
        mode = self.versions.get(run.fingerprint)  # type: ignore[arg-type]  # None: no entry
        if mode is not None:
            return mode
        return (
            self.journaled_mode(run.mode, run.fingerprint, run.definition) or self.modes[run.mode]
        )

    def mode_of(self, run: RunState) -> Mode | None:
        """The mode a run follows (UPG-2), or None when none is known here."""
        try:
            return self._mode(run)
        except KeyError:
            return None

    def journaled_mode(self, name: str, fingerprint: str | None, definition: object) -> Mode | None:
        """The mode a journaled definition names: registered, or rebuilt from the document."""
        if fingerprint is None:
            return None
        mode = self.versions.get(fingerprint) or self._rebuilt.get(fingerprint)
        if mode is None:
            mode = rebuild(definition, self.modes.get(name))
            if mode is None or mode.name != name or fingerprint_of(definition) != fingerprint:
                return None
            self._rebuilt[fingerprint] = mode
        return mode

    def _commit(self, state: ConversationState, txn: RunTxn) -> Outcome:
        run, directives = txn.commit()
        if run.status not in TERMINAL_RUN_STATUSES:
            new_state = ConversationState(
                state.conversation_id, run, state.run_history, state.run_ids
            )
        else:
            history = (*state.run_history, run)
            if len(history) > self.history_limit:
                history = history[len(history) - self.history_limit :]
            active = state.active_run
            if active is not None and active.run_id == run.run_id:
                active = None
            new_state = ConversationState(state.conversation_id, active, history, state.run_ids)
        return Outcome(new_state, directives)

    def _audit(
        self, event: Any, run: RunState, action: AuditAction, allowed: bool, reason: str
    ) -> EmitAudit:
        return EmitAudit(  # positional: keyword arguments to a record cost about 30 ns each
            event.conversation_id,
            run.run_id,
            action,
            event.principal,
            allowed,
            reason,
            event.event_id,
        )

    def _refuse(
        self, state: ConversationState, event: Any, run: RunState, action: AuditAction
    ) -> Outcome:
        audit = self._audit(event, run, action, False, "not_authorized")
        error = NotAuthorizedError(
            f"principal {event.principal!r} may not {action.value} run {run.run_id!r}; ask the "
            f"run's principal or an operator.",
            conversation_id=event.conversation_id,
            run_id=run.run_id,
            status=run.status.value,
            reason="not_authorized",
        )
        return _rejected(state, error, (audit,))

    # --- run requests -------------------------------------------------------------------------

    def _run_requested(self, state: ConversationState, event: RunRequested) -> Outcome:
        existing = state.run(event.run_id)
        if existing is not None:
            if (existing.mode, existing.input, existing.principal) == (
                event.mode,
                event.input,
                event.principal,
            ):
                return _ignored(state, IgnoredReason.duplicate_request)
            return _rejected(state, run_conflict_for_reused_id(event, existing.status.value))
        if event.run_id in state.run_ids:
            return _rejected(state, run_conflict_for_reused_id(event, None))
        mode = self.journaled_mode(event.mode, event.fingerprint, event.definition)
        if mode is None:
            mode = self.modes.get(event.mode)
        if mode is None:
            return _rejected(
                state,
                ModeNotFoundError(
                    f"no mode named {event.mode!r}; registered modes: {sorted(self.modes)}.",
                    conversation_id=event.conversation_id,
                    run_id=event.run_id,
                    reason="mode_not_found",
                ),
            )
        if state.conversation_id is None:
            state = replace(state, conversation_id=event.conversation_id)
        prefix: tuple[Directive, ...] = ()
        active = state.active_run
        if active is not None:
            if not event.supersede:
                return _rejected(
                    state,
                    RunInProgressError(
                        f"conversation {event.conversation_id!r} already has run "
                        f"{active.run_id!r} ({active.status.value}); wait for it, cancel it, or "
                        f"ask for supersede=True.",
                        conversation_id=event.conversation_id,
                        run_id=active.run_id,
                        status=active.status.value,
                        reason="run_in_progress",
                    ),
                )
            action = _RUN_REQUESTED.authorized_as
            assert action is not None
            if not self.authorizer.allows(action, event.principal, active):
                return self._refuse(state, event, active, action)
            txn = RunTxn(event.conversation_id, active, self._mode(active), event.event_id)
            txn.reason = "superseded"
            txn.fire_run(_RUN_REQUESTED.run_fires[1])
            outcome = self._commit(state, txn)
            audit = self._audit(event, active, action, True, "superseded")
            ended = outcome.directives
            # DIR-2: the superseded run's one cancel_effects stays first, before the audit.
            if ended and isinstance(ended[0], CancelEffects):
                prefix = (ended[0], audit, *ended[1:])
            else:
                prefix = (audit, *ended)
            state = outcome.state
        run = RunState(
            run_id=event.run_id,
            mode=event.mode,
            status=RunStatus.pending,
            input=event.input,
            principal=event.principal,
            requested_at=event.at,
            fingerprint=event.fingerprint,
            definition=event.definition,
        )
        state = ConversationState(
            state.conversation_id, None, state.run_history, state.run_ids | {event.run_id}
        )
        txn = RunTxn(event.conversation_id, run, mode, event.event_id)
        txn.update_context(mode.start, event.input)
        if txn.status is RunStatus.pending:
            txn.fire_run(_RUN_REQUESTED.run_fires[0])
            txn.advance()
        outcome = self._commit(state, txn)
        return Outcome(outcome.state, (*prefix, *outcome.directives))

    def _authorized(
        self, state: ConversationState, event: Any, rule: EventRule
    ) -> RunState | Outcome:
        """The run a request names, once its principal may act on it and its rule lets it in
        that run's status; else the outcome its rule answers (SPEC-7).

        `rule.forgotten` answers for a run id the conversation had but no longer retains (CORE-3).
        """
        run = _known_run(state, event, rule)
        if isinstance(run, Outcome):
            return run
        action = rule.authorized_as
        if action is not None and not self.authorizer.allows(action, event.principal, run):
            return self._refuse(state, event, run, action)
        answer = rule.run_answers.get(run.status)
        if answer is not None:
            return _answer(state, event, answer, run.status.value)
        return run

    def _interrupt_requested(self, state: ConversationState, event: InterruptRequested) -> Outcome:
        run = self._authorized(state, event, _INTERRUPT)
        if isinstance(run, Outcome):
            return run
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.reason = event.reason
        txn.cancel_reason = event.reason
        txn.update_context(txn.mode.on_interrupt, txn.context, event.reason)
        if txn.status in _INTERRUPTIBLE:
            for index, step in enumerate(txn.steps):
                if step.status in _LIVE_UNCANCELLED:
                    txn.fire_step(index, _INTERRUPT.step_fires[0])
            txn.fire_run(_INTERRUPT.run_fires[0])
        txn.directives.insert(0, self._audit(event, run, AuditAction.interrupt, True, event.reason))
        return self._commit(state, txn)

    def _resume_requested(self, state: ConversationState, event: ResumeRequested) -> Outcome:
        run = self._authorized(state, event, _RESUME)
        if isinstance(run, Outcome):
            return run
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.reason = None
        txn.update_context(txn.mode.on_resume, txn.context)
        if txn.status in _RESUMABLE:
            txn.fire_run(_RESUME.run_fires[0])
            txn.advance()
        txn.directives.insert(0, self._audit(event, run, AuditAction.resume, True, "resumed"))
        return self._commit(state, txn)

    def _cancel_requested(self, state: ConversationState, event: CancelRequested) -> Outcome:
        run = self._authorized(state, event, _CANCEL)
        if isinstance(run, Outcome):
            return run
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.reason = event.reason
        txn.fire_run(_CANCEL.run_fires[0])
        txn.directives.insert(0, self._audit(event, run, AuditAction.cancel, True, event.reason))
        return self._commit(state, txn)

    # --- effect lifecycle ---------------------------------------------------------------------

    def _effect_target(
        self, state: ConversationState, event: Any, rule: EventRule
    ) -> tuple[RunState, int, StepState] | Outcome:
        """The run and step an effect event is for, or the outcome its rule answers (SPEC-7)."""
        run = state.run(event.run_id)
        if run is None:
            return _known_run(state, event, rule)  # type: ignore[return-value]  # an Outcome
        answers = rule.run_answers
        if run.status in answers:
            return _answer(state, event, answers[run.status], run.status.value)
        steps = run.steps
        for index in range(len(steps) - 1, -1, -1):  # the live step is the last one planned
            step = steps[index]
            if step.definition.step_id == event.step_id:
                if event.effect_id != step.effect_id or event.attempt != step.attempt:
                    return _ignored(state, IgnoredReason.stale_effect)
                step_answers = rule.step_answers
                if step.status in step_answers:
                    return _answer(state, event, step_answers[step.status], run.status.value)
                return run, index, step
        return _rejected(state, step_not_found_for_unplanned_step(event, run))

    def _effect_started(self, state: ConversationState, event: EffectStarted) -> Outcome:
        target = self._effect_target(state, event, _STARTED)
        if isinstance(target, Outcome):
            return target
        run, index, step = target
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        guards = _STARTED_GUARDS[step.definition.step_class, step.input is not NO_INPUT]
        if txn.fire_step(index, _STARTED.step_fires[0], guards) is StepStatus.completed:
            txn.cancel_reason = "answered"
            txn.keep_result(index, step.input)
            txn.advance()
        return self._commit(state, txn)

    def _effect_progress(self, state: ConversationState, event: EffectProgress) -> Outcome:
        target = self._effect_target(state, event, _PROGRESS)
        if isinstance(target, Outcome):
            return target
        run, index, step = target
        if event.sequence <= step.progress_sequence:
            return _ignored(state, IgnoredReason.duplicate_effect_event)
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.emit_progress(index, event.sequence, event.progress)
        return self._commit(state, txn)

    def _effect_completed(self, state: ConversationState, event: EffectCompleted) -> Outcome:
        target = self._effect_target(state, event, _COMPLETED)
        if isinstance(target, Outcome):
            return target
        run, index, step = target
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.complete_step(index, _COMPLETED.step_fires[0], event.output, refusable=True)
        refusal = txn.refusal
        if refusal is not None:
            # CORE-28: the mode refused the output; the step failed instead (this txn is dropped).
            failure = StepFailure(
                refusal.category,
                refusal.message,
                step.step_id,
                step.attempt,
                refusal.retryable,
                refusal.details,
            )
            return self._fail_step(state, event, run, index, step, failure)
        txn.advance()
        return self._commit(state, txn)

    def _effect_failed(self, state: ConversationState, event: EffectFailed) -> Outcome:
        target = self._effect_target(state, event, _FAILED)
        if isinstance(target, Outcome):
            return target
        run, index, step = target
        failure = StepFailure(
            category=event.category,
            message=event.message,
            step_id=step.step_id,
            attempt=step.attempt,
            retryable=event.retryable,
            details=event.details,
        )
        return self._fail_step(state, event, run, index, step, failure)

    def _fail_step(
        self,
        state: ConversationState,
        event: Any,
        run: RunState,
        index: int,
        step: StepState,
        failure: StepFailure,
    ) -> Outcome:
        """The live step's effect failed with `failure`: retry, go on, or fail the run."""
        policy = step.definition.policy
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        guards = {
            "attempts_left": attempts_left(step.failures, policy.max_attempts),
            "is_retryable": is_retryable(failure.category, failure.retryable, policy.retry_on),
        }
        target_status = txn.fire_step(index, _FAILED.step_fires[0], guards)
        if target_status is StepStatus.pending:
            txn.advance()  # the failure answered an interrupt's cancel: it does not count
        elif target_status is StepStatus.retrying:
            txn.steps[index] = _counted(txn.steps[index], failure)
            txn.schedule(index)
        else:
            txn.steps[index] = _counted(txn.steps[index], failure)
            if policy.on_failure.value == "continue":
                txn.update_context(txn.mode.on_failure, txn.context, failure)
                txn.advance()
            else:
                txn.fail(failure)
        return self._commit(state, txn)

    def _effect_ended(self, state: ConversationState, event: Any, rule: EventRule) -> Outcome:
        """`effect_canceled` or `effect_lost`: the step is pending again, the attempt uncounted.

        A cancel must have been asked for (else the lifecycle raises `IllegalTransition`); a lost
        effect may be in any live status. A running run then starts the step again at once.
        """
        target = self._effect_target(state, event, rule)
        if isinstance(target, Outcome):
            return target
        run, index, _ = target
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.fire_step(index, rule.step_fires[0])
        txn.advance()
        return self._commit(state, txn)

    # --- human gates --------------------------------------------------------------------------

    def _human_input_received(self, state: ConversationState, event: HumanInputReceived) -> Outcome:
        run = _known_run(state, event, _HUMAN_INPUT)
        if isinstance(run, Outcome):
            return run
        action = _HUMAN_INPUT.authorized_as
        assert action is not None
        if not self.authorizer.allows(action, event.principal, run):
            return self._refuse(state, event, run, action)
        index, step = next(
            ((i, s) for i, s in enumerate(run.steps) if s.step_id == event.step_id), (-1, None)
        )
        if step is None:
            return self._early_answer(state, event, run)
        if not STEP_CLASS_TRAITS[step.definition.step_class].awaits_input:
            return _rejected(state, step_not_found_for_non_gate(event, run, step.definition))
        kept = step.result.output if step.result is not None else step.input
        if step.result is not None or step.input is not NO_INPUT:
            if kept == event.value:
                return _ignored(state, IgnoredReason.duplicate_input)
            return _rejected(state, run_conflict_for_changed_answer(event, run, step.status.value))
        answer = _HUMAN_INPUT.run_answers.get(run.status)
        if answer is not None:  # after the duplicate check: a repeated answer stays a duplicate
            return _answer(state, event, answer, run.status.value)
        if step.status in STEP.finals:
            return _rejected(
                state,
                GateClosedError(
                    f"gate {event.step_id!r} of run {run.run_id!r} ended ({step.status.value}) "
                    f"without an answer.",
                    conversation_id=event.conversation_id,
                    run_id=run.run_id,
                    status=step.status.value,
                    reason="gate_closed",
                ),
            )
        txn = RunTxn(event.conversation_id, run, self._mode(run), event.event_id)
        txn.directives.append(self._audit(event, run, AuditAction.provide_input, True, "answered"))
        if step.status is StepStatus.waiting_input and run.status is RunStatus.running:
            txn.cancel_reason = "answered"
            txn.complete_step(index, _HUMAN_INPUT.step_fires[0], event.value)
            txn.advance()
        else:
            # Kept until the gate opens (the run is interrupted or the step has not started).
            txn.steps[index] = step_with(step, input=event.value)
        return self._commit(state, txn)

    def _early_answer(
        self, state: ConversationState, event: HumanInputReceived, run: RunState
    ) -> Outcome:
        """An answer to a gate the run has not planned yet: kept if the mode declares the gate."""
        mode = self._mode(run)
        try:
            definition = mode.declared_step(run.context, event.step_id)
        except Exception:  # a mode bug must not escape reduce; the gate is then unknown
            definition = None
        if definition is None:
            return _rejected(state, step_not_found_for_unplanned_step(event, run))
        if not STEP_CLASS_TRAITS[definition.step_class].awaits_input:
            return _rejected(state, step_not_found_for_non_gate(event, run, definition))
        kept = dict(run.early_inputs)
        if event.step_id in kept:
            if kept[event.step_id] == event.value:
                return _ignored(state, IgnoredReason.duplicate_input)
            return _rejected(state, run_conflict_for_changed_answer(event, run, "pending"))
        answer = _HUMAN_INPUT.run_answers.get(run.status)
        if answer is not None:  # after the duplicate check: a repeated answer stays a duplicate
            return _answer(state, event, answer, run.status.value)
        txn = RunTxn(event.conversation_id, run, mode, event.event_id)
        txn.directives.append(self._audit(event, run, AuditAction.provide_input, True, "kept"))
        txn.early_inputs = (*run.early_inputs, (event.step_id, event.value))
        return self._commit(state, txn)

    # --- definitions (spec/upgrades.md) --------------------------------------------------------

    def _run_upgraded(self, state: ConversationState, event: RunUpgraded) -> Outcome:
        """The run follows another definition from now on (UPG-4, UPG-5): its planned steps
        renamed and their definitions replaced as `follow` finds them, its context replaced."""
        run = self._authorized(state, event, _UPGRADED)  # no action: a runtime's, not a person's
        if isinstance(run, Outcome):
            return run
        if run.fingerprint == event.fingerprint:
            return _ignored(state, IgnoredReason.duplicate_request)
        new = self.journaled_mode(run.mode, event.fingerprint, event.definition)
        renames = event.renames if isinstance(event.renames, Mapping) else {}
        followed = (
            Differs(None, f"its definition {event.fingerprint} is neither registered nor journaled")
            if new is None
            else Differs(None, f"it follows {run.fingerprint}, not {event.from_fingerprint}")
            if run.fingerprint != event.from_fingerprint
            else follow(new, run, renames, lenient=event.migration is not None)
        )
        if isinstance(followed, Differs):
            return _rejected(
                state,
                DefinitionChangedError(
                    f"run {run.run_id!r} cannot move to definition {event.fingerprint}: "
                    f"{followed.detail}",
                    conversation_id=event.conversation_id,
                    run_id=run.run_id,
                    run_fingerprint=run.fingerprint,
                    current_fingerprint=event.fingerprint,
                    step_id=followed.step_id,
                    status=run.status.value,
                ),
            )
        steps: list[StepState] = []
        ids = NO_STEP_IDS
        definitions = iter(followed.definitions)
        for step in run.steps:
            step_id = renames.get(step.step_id, step.step_id)
            if step_id is None:
                continue  # dropped by the migration
            definition = next(definitions, None) or replace(step.definition, step_id=step_id)
            result, failure = step.result, step.failure
            steps.append(
                replace(
                    step,
                    definition=definition,
                    result=None if result is None else replace(result, step_id=step_id),
                    failure=None if failure is None else replace(failure, step_id=step_id),
                )
            )
            ids = ids.add(step_id)
        upgraded = replace(
            run,
            steps=freeze(steps),
            step_ids=ids,
            context=event.context,
            early_inputs=tuple(
                (renames.get(step_id, step_id) or step_id, value)
                for step_id, value in run.early_inputs
            ),
            fingerprint=event.fingerprint,
            definition=event.definition,
        )
        return Outcome(
            ConversationState(state.conversation_id, upgraded, state.run_history, state.run_ids)
        )


def _counted(step: StepState, failure: StepFailure) -> StepState:
    """`step` with one more counted failure, and that failure's envelope."""
    return step_with(step, failures=step.failures + 1, failure=failure)


def _known_run(state: ConversationState, event: Any, rule: EventRule) -> RunState | Outcome:
    """The retained run an event names, else what its rule answers for a forgotten or unknown
    run id (CORE-3, SPEC-7)."""
    run = state.run(event.run_id)
    if run is not None:
        return run
    answer = rule.forgotten if event.run_id in state.run_ids else rule.unknown
    assert answer is not None  # every rule of an event naming a run declares both
    return _answer(state, event, answer, None)
