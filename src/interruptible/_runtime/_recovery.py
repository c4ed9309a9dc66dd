"""Recovery: the events that restart the effects a crashed (or closed) process left in flight.

Theory of operation
-------------------
After a process stops, the journal may show effects that were live: a step `scheduled`,
`running` or `waiting_input` (its task died with the process) or `cancelling` (its cancel was
asked for, but the answer died with it). Nothing will ever answer them, so a new process must.
It does so through the core, with existing events only, chosen so that a restart never counts
as a failure of the step (a policy's `max_attempts` is for the step's own failures; a timer, a
human gate or a system step has one attempt by default, and a process restart must not fail it):

* a `cancelling` step gets the `effect_canceled` its dead effect owed: it is pending again;
* a `running` run with live effects is interrupted with reason `process_restart`, each of those
  effects answers `effect_canceled`, and the run is resumed: the core then starts the first step
  without a kept result with a new attempt and a new effect id (at-least-once, same idempotency
  key prefix `run_id:step_id:`); the interruption and resumption are in the journal and in the
  audit trail, acting as the run's own principal;
* an `interrupted` run stays interrupted (someone stopped it; someone resumes it).

If the authorizer refuses the run's own principal, the fallback is the one event the core has
for "this attempt is gone": `effect_failed` with category `executor_error`, retryable, message
"interrupted by a process restart", which does count toward `max_attempts` (RT-8).

These events go through the runtime's ordinary journal-first path, like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._core import ConversationState, Coordinator, Disposition, RunState
from .._lifecycle import RunStatus, StepStatus
from .._vocabulary import (
    EffectCanceled,
    EffectFailed,
    Event,
    FailureCategory,
    InterruptRequested,
    ResumeRequested,
)

RESTART_REASON: Final = "process_restart"
RESTART_MESSAGE: Final = "interrupted by a process restart"

_UNCANCELLED: Final = frozenset(
    {StepStatus.scheduled, StepStatus.running, StepStatus.waiting_input}
)


def recovery_events(
    coordinator: Coordinator,
    state: ConversationState,
    ids: Callable[[], str],
    clock: Callable[[], float],
) -> list[Event]:
    """The events that answer every effect left live in `state` (empty when none is)."""
    run = state.active_run
    conversation_id = state.conversation_id
    if run is None or conversation_id is None or not run.live_steps():
        return []
    now = clock()
    if run.status is RunStatus.running and any(s.status in _UNCANCELLED for s in run.steps):
        events = _interrupt_and_resume(conversation_id, run, ids, now)
        if _all_apply(coordinator, state, events):
            return events
        return _fail_attempts(conversation_id, run, ids, now)
    return [_canceled(conversation_id, run, step_id, ids, now) for step_id in _cancelling(run)]


def _interrupt_and_resume(
    conversation_id: str, run: RunState, ids: Callable[[], str], now: float
) -> list[Event]:
    events: list[Event] = [
        InterruptRequested(ids(), conversation_id, run.run_id, RESTART_REASON, run.principal, now)
    ]
    # After the interrupt every live step is cancelling: each owes one effect_canceled.
    events.extend(
        _canceled(conversation_id, run, step.step_id, ids, now) for step in run.live_steps()
    )
    events.append(ResumeRequested(ids(), conversation_id, run.run_id, run.principal, now))
    return events


def _fail_attempts(
    conversation_id: str, run: RunState, ids: Callable[[], str], now: float
) -> list[Event]:
    events: list[Event] = []
    for step in run.live_steps():
        assert step.effect_id is not None
        if step.status is StepStatus.cancelling:
            events.append(_canceled(conversation_id, run, step.step_id, ids, now))
            continue
        events.append(
            EffectFailed(
                ids(),
                conversation_id,
                run.run_id,
                step.step_id,
                step.effect_id,
                step.attempt,
                FailureCategory.executor_error,
                RESTART_MESSAGE,
                True,
                None,
                now,
            )
        )
    return events


def _cancelling(run: RunState) -> list[str]:
    return [step.step_id for step in run.steps if step.status is StepStatus.cancelling]


def _canceled(
    conversation_id: str, run: RunState, step_id: str, ids: Callable[[], str], now: float
) -> EffectCanceled:
    step = run.step(step_id)
    assert step is not None and step.effect_id is not None
    return EffectCanceled(
        ids(), conversation_id, run.run_id, step_id, step.effect_id, step.attempt, now
    )


def _all_apply(coordinator: Coordinator, state: ConversationState, events: list[Event]) -> bool:
    for event in events:
        outcome = coordinator.reduce(state, event)
        if outcome.disposition is not Disposition.applied:
            return False
        state = outcome.state
    return True
