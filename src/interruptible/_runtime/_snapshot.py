"""Snapshots: what callers of the runtime get back, built from the core's run state."""

from __future__ import annotations

from dataclasses import dataclass

from .._core import RunState, StepState
from .._lifecycle import TERMINAL_RUN_STATUSES, RunStatus, StepClass, StepStatus
from .._vocabulary import JsonValue, StepFailure


@dataclass(frozen=True, slots=True)
class StepSnapshot:
    """One step of a run, as a caller sees it."""

    step_id: str
    step_class: StepClass
    label: str
    status: StepStatus
    attempt: int
    output: JsonValue
    failure: StepFailure | None

    @classmethod
    def of(cls, step: StepState) -> StepSnapshot:
        """The snapshot of a core step state."""
        definition = step.definition
        return cls(
            step_id=definition.step_id,
            step_class=definition.step_class,
            label=definition.label,
            status=step.status,
            attempt=step.attempt,
            output=step.result.output if step.result is not None else None,
            failure=step.failure,
        )


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run at one moment: status, reason, output or error, and its steps in plan order."""

    conversation_id: str
    run_id: str
    mode: str
    status: RunStatus
    reason: str | None
    output: JsonValue
    error: StepFailure | None
    steps: tuple[StepSnapshot, ...]

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended (completed, failed or canceled)."""
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def current_step(self) -> StepSnapshot | None:
        """The last planned step that has not ended, if any."""
        for step in reversed(self.steps):
            if step.status not in (StepStatus.completed, StepStatus.failed, StepStatus.canceled):
                return step
        return None

    @classmethod
    def of(cls, conversation_id: str, run: RunState) -> RunSnapshot:
        """The snapshot of a core run state."""
        return cls(
            conversation_id=conversation_id,
            run_id=run.run_id,
            mode=run.mode,
            status=run.status,
            reason=run.reason,
            output=run.output,
            error=run.error,
            steps=tuple(StepSnapshot.of(step) for step in run.steps),
        )
