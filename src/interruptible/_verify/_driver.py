"""`CoreDriver`: drive the pure core event by event, as a runtime would, for tests and examples."""

from __future__ import annotations

from collections.abc import Iterable
from types import EllipsisType
from typing import Any

from .._core import ConversationState, Coordinator, Mode, Outcome, RunState, StepState
from .._core import initial_state as _initial_state
from .._vocabulary import (
    CancelRequested,
    Directive,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    Event,
    FailureCategory,
    HumanInputReceived,
    InterruptRequested,
    JsonValue,
    ResumeRequested,
    RunRequested,
)


class CoreDriver:
    """Sends events to `Coordinator.reduce`, keeping the state, the events and every outcome.

    Event ids are `e1`, `e2`, ... and times count up by one second per event, so a driven
    sequence is deterministic. Effect events name the step's latest attempt unless told otherwise.
    """

    def __init__(
        self,
        coordinator: Coordinator | Iterable[Mode],
        conversation_id: str = "c1",
        principal: str | None = "alice",
    ) -> None:
        self.coordinator = (
            coordinator if isinstance(coordinator, Coordinator) else Coordinator(coordinator)
        )
        self.conversation_id = conversation_id
        self.principal = principal
        self.state: ConversationState = _initial_state()
        self.events: list[Event] = []
        self.outcomes: list[Outcome] = []

    # --- sending -------------------------------------------------------------------------------

    def send(self, event: Event) -> Outcome:
        """Reduce one event and keep the new state."""
        outcome = self.coordinator.reduce(self.state, event)
        self.events.append(event)
        self.outcomes.append(outcome)
        self.state = outcome.state
        return outcome

    def _who(self, principal: str | EllipsisType | None) -> str | None:
        return self.principal if isinstance(principal, EllipsisType) else principal

    def _base(self, run_id: str) -> dict[str, Any]:
        n = len(self.events) + 1
        return {
            "event_id": f"e{n}",
            "conversation_id": self.conversation_id,
            "run_id": run_id,
            "at": float(n),
        }

    def run(
        self,
        run_id: str,
        mode: str,
        input: JsonValue = None,
        *,
        principal: str | EllipsisType | None = ...,
        supersede: bool = False,
    ) -> Outcome:
        """Send `run_requested`."""
        who = self._who(principal)
        return self.send(
            RunRequested(
                **self._base(run_id), mode=mode, input=input, principal=who, supersede=supersede
            )
        )

    def interrupt(
        self,
        run_id: str,
        reason: str = "interrupt_requested",
        principal: str | EllipsisType | None = ...,
    ) -> Outcome:
        """Send `interrupt_requested`."""
        who = self._who(principal)
        return self.send(InterruptRequested(**self._base(run_id), reason=reason, principal=who))

    def resume(self, run_id: str, principal: str | EllipsisType | None = ...) -> Outcome:
        """Send `resume_requested`."""
        who = self._who(principal)
        return self.send(ResumeRequested(**self._base(run_id), principal=who))

    def cancel(
        self,
        run_id: str,
        reason: str = "cancel_requested",
        principal: str | EllipsisType | None = ...,
    ) -> Outcome:
        """Send `cancel_requested`."""
        who = self._who(principal)
        return self.send(CancelRequested(**self._base(run_id), reason=reason, principal=who))

    def _effect(self, run_id: str, step_id: str, attempt: int | None) -> dict[str, Any]:
        step = self.step(run_id, step_id)
        n = step.attempt if attempt is None else attempt
        return {
            **self._base(run_id),
            "step_id": step_id,
            "effect_id": f"{run_id}/{step_id}/{n}",
            "attempt": n,
        }

    def started(self, run_id: str, step_id: str, *, attempt: int | None = None) -> Outcome:
        """Send `effect_started` for the step's latest (or the given) attempt."""
        return self.send(EffectStarted(**self._effect(run_id, step_id, attempt)))

    def progress(
        self,
        run_id: str,
        step_id: str,
        sequence: int,
        progress: JsonValue = None,
        *,
        attempt: int | None = None,
    ) -> Outcome:
        """Send `effect_progress`."""
        return self.send(
            EffectProgress(
                **self._effect(run_id, step_id, attempt), sequence=sequence, progress=progress
            )
        )

    def complete(
        self, run_id: str, step_id: str, output: JsonValue = None, *, attempt: int | None = None
    ) -> Outcome:
        """Send `effect_completed`."""
        return self.send(EffectCompleted(**self._effect(run_id, step_id, attempt), output=output))

    def fail(
        self,
        run_id: str,
        step_id: str,
        category: FailureCategory = FailureCategory.executor_error,
        message: str = "failed",
        *,
        retryable: bool = False,
        details: JsonValue = None,
        attempt: int | None = None,
    ) -> Outcome:
        """Send `effect_failed`."""
        return self.send(
            EffectFailed(
                **self._effect(run_id, step_id, attempt),
                category=category,
                message=message,
                retryable=retryable,
                details=details,
            )
        )

    def canceled(self, run_id: str, step_id: str, *, attempt: int | None = None) -> Outcome:
        """Send `effect_canceled`."""
        return self.send(EffectCanceled(**self._effect(run_id, step_id, attempt)))

    def lost(self, run_id: str, step_id: str, *, attempt: int | None = None) -> Outcome:
        """Send `effect_lost` (the runtime's process stopped with the effect in flight)."""
        return self.send(EffectLost(**self._effect(run_id, step_id, attempt)))

    def answer(
        self,
        run_id: str,
        step_id: str,
        value: JsonValue,
        principal: str | EllipsisType | None = ...,
    ) -> Outcome:
        """Send `human_input_received`."""
        who = self._who(principal)
        return self.send(
            HumanInputReceived(**self._base(run_id), step_id=step_id, value=value, principal=who)
        )

    # --- reading -------------------------------------------------------------------------------

    def run_state(self, run_id: str) -> RunState:
        """The run's current state."""
        return self.state.runs[run_id]

    def step(self, run_id: str, step_id: str) -> StepState:
        """One step's current state."""
        step = self.run_state(run_id).step(step_id)
        if step is None:
            raise KeyError(f"run {run_id!r} has no step {step_id!r}")
        return step

    @property
    def directives(self) -> list[Directive]:
        """Every directive emitted so far, in order."""
        return [d for outcome in self.outcomes for d in outcome.directives]
