"""Seeded defects: coordinators with one deliberate bug each, which the verification must catch.

A property that no broken core can violate proves nothing; each class here breaks exactly one
promise of the design, the way a plausible bug would, and the stateful machines and the model
checker are tested against all of them (VER-15). They subclass the real
`Coordinator` and override one behaviour (one handler, or two for the wedged interrupt), so
everything else is the real core.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final

from ..._core import (
    ConversationState,
    Coordinator,
    Disposition,
    IgnoredReason,
    Mode,
    Outcome,
    Sequence,
)
from ..._core._state import NO_STEP_IDS, RunState, StepIds
from ..._lifecycle import RunStatus, StepStatus
from ..._vocabulary import (
    CancelEffects,
    CancelRequested,
    EffectCompleted,
    EmitOutput,
    InterruptRequested,
    ResumeRequested,
)


def _ids_up_to(run: RunState, index: int) -> StepIds:
    """The step ids of `run.steps[: index + 1]`, as the core keeps them."""
    ids = NO_STEP_IDS
    for step in run.steps[: index + 1]:
        ids = ids.add(step.step_id)
    return ids


class TerminalTwice(Coordinator):
    """Defect (a): a late `effect_completed` for an ended run completes it again."""

    def _effect_completed(self, state: ConversationState, event: EffectCompleted) -> Outcome:
        run = state.run(event.run_id)
        if run is not None and run.is_terminal:
            again = EmitOutput(
                conversation_id=event.conversation_id,
                run_id=run.run_id,
                status=RunStatus.completed.value,
                output=event.output,
                error=None,
                cause_id=event.event_id,
            )
            return Outcome(state, (again,))
        return super()._effect_completed(state, event)


class EagerResume(Coordinator):
    """Defect (b): resume schedules the interrupted step again without waiting for the answer
    to its cancel, so the step has two live effects."""

    def _resume_requested(self, state: ConversationState, event: ResumeRequested) -> Outcome:
        run = state.active_run
        if run is None or run.run_id != event.run_id or run.status is not RunStatus.interrupted:
            return super()._resume_requested(state, event)
        steps = tuple(
            replace(step, status=StepStatus.pending)
            if step.status is StepStatus.cancelling
            else step
            for step in run.steps
        )
        eager = replace(state, active_run=replace(run, steps=steps))
        outcome = super()._resume_requested(eager, event)
        return outcome if outcome.applied else super()._resume_requested(state, event)


class LostCancel(Coordinator):
    """Defect (c): an interrupt forgets its `cancel_effects`; the effects run on."""

    def _interrupt_requested(self, state: ConversationState, event: InterruptRequested) -> Outcome:
        outcome = super()._interrupt_requested(state, event)
        kept = tuple(d for d in outcome.directives if type(d) is not CancelEffects)
        return replace(outcome, directives=kept)


class RerunOnResume(Coordinator):
    """Defect (e): resume re-runs the last finished step (LangGraph re-runs its interrupted
    node), so a step with a kept result is started again. For `Sequence` contexts."""

    def _resume_requested(self, state: ConversationState, event: ResumeRequested) -> Outcome:
        run = state.active_run
        if run is None or run.run_id != event.run_id or run.status is not RunStatus.interrupted:
            return super()._resume_requested(state, event)
        done = [i for i, step in enumerate(run.steps) if step.result is not None]
        context = run.context
        if not done or not isinstance(context, dict) or "outputs" not in context:
            return super()._resume_requested(state, event)
        index = done[-1]
        if any(later.is_live for later in run.steps[index + 1 :]):
            return super()._resume_requested(state, event)  # keep this defect to one property
        step = run.steps[index]
        # Forget the step's output and rewind the Sequence to it (its position is its index,
        # since a Sequence plans its steps in order); later steps are dropped, so the rewound
        # step is the run's one unfinished step again.
        kept = [p for p in Sequence.outputs_of(context) if p[0] != step.step_id]
        steps = (*run.steps[:index], replace(step, status=StepStatus.pending))
        rerun = replace(
            run,
            steps=steps,
            step_ids=_ids_up_to(run, index),
            context={**Sequence.with_outputs(context, kept), "next": index},
        )
        outcome = super()._resume_requested(replace(state, active_run=rerun), event)
        return outcome if outcome.applied else super()._resume_requested(state, event)


class LostAnswer(Coordinator):
    """Defect (f): a completion of a started effect is dropped as a duplicate, so its step
    waits for an answer that already came."""

    def _effect_completed(self, state: ConversationState, event: EffectCompleted) -> Outcome:
        run = state.run(event.run_id)
        step = None if run is None else run.step(event.step_id)
        if step is not None and step.status is StepStatus.running:
            return Outcome(state, (), Disposition.ignored, IgnoredReason.duplicate_effect_event)
        return super()._effect_completed(state, event)


class WedgedInterrupt(Coordinator):
    """Defect (d), for liveness: an interrupted run ignores resume and cancel, so once no fresh
    run can supersede it, it never ends."""

    def _resume_requested(self, state: ConversationState, event: ResumeRequested) -> Outcome:
        if self._is_interrupted(state, event.run_id):
            return Outcome(state, (), Disposition.ignored, IgnoredReason.duplicate_request)
        return super()._resume_requested(state, event)

    def _cancel_requested(self, state: ConversationState, event: CancelRequested) -> Outcome:
        if self._is_interrupted(state, event.run_id):
            return Outcome(state, (), Disposition.ignored, IgnoredReason.duplicate_request)
        return super()._cancel_requested(state, event)

    @staticmethod
    def _is_interrupted(state: ConversationState, run_id: str) -> bool:
        run = state.run(run_id)
        return run is not None and run.status is RunStatus.interrupted


DefectFactory = Callable[[Iterable[Mode]], Coordinator]

DEFECTS: Final[dict[str, type[Coordinator]]] = {
    "terminal_twice": TerminalTwice,
    "eager_resume": EagerResume,
    "lost_answer": LostAnswer,
    "lost_cancel": LostCancel,
    "rerun_on_resume": RerunOnResume,
    "wedged_interrupt": WedgedInterrupt,
}
# The property each defect breaks: the first one the checker must report.
BROKEN_PROPERTY: Final = {
    "terminal_twice": "VER-3",
    "eager_resume": "VER-4",
    "lost_answer": "VER-5",
    "lost_cancel": "VER-5",
    "rerun_on_resume": "VER-6",
    "wedged_interrupt": "VER-12",
}
