"""Snapshots: what callers of the runtime get back, built from the core's run state."""

from __future__ import annotations

from dataclasses import dataclass

from .._core import Mode, RunState, StepState
from .._lifecycle import TERMINAL_RUN_STATUSES, RunStatus, StepClass, StepStatus
from .._vocabulary import JsonValue, StepDefinition, StepFailure


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

    @classmethod
    def upcoming(cls, definition: StepDefinition) -> StepSnapshot:
        """A step the mode declares but has not planned yet: `pending`, attempt 0 (RT-32)."""
        return cls(
            definition.step_id,
            definition.step_class,
            definition.label,
            StepStatus.pending,
            0,
            None,
            None,
        )


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run at one moment: status, reason, output or error, its steps in plan order, and the
    steps its mode declares but has not planned yet (`upcoming`, RT-32)."""

    conversation_id: str
    run_id: str
    mode: str
    status: RunStatus
    reason: str | None
    output: JsonValue
    error: StepFailure | None
    steps: tuple[StepSnapshot, ...]
    upcoming: tuple[StepSnapshot, ...] = ()

    @property
    def is_terminal(self) -> bool:
        """Whether the run has ended (completed, failed or canceled)."""
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def current_step(self) -> StepSnapshot | None:
        """The last planned step that has not ended, if any (never an `upcoming` one)."""
        for step in reversed(self.steps):
            if step.status not in (StepStatus.completed, StepStatus.failed, StepStatus.canceled):
                return step
        return None

    def step(self, step_id: str) -> StepSnapshot | None:
        """The step `step_id`, planned or upcoming, if the snapshot shows it."""
        for step in (*self.steps, *self.upcoming):
            if step.step_id == step_id:
                return step
        return None

    @classmethod
    def of(cls, conversation_id: str, run: RunState, mode: Mode | None = None) -> RunSnapshot:
        """The snapshot of a core run state; with its `mode`, the upcoming steps too."""
        return cls(
            conversation_id=conversation_id,
            run_id=run.run_id,
            mode=run.mode,
            status=run.status,
            reason=run.reason,
            output=run.output,
            error=run.error,
            steps=tuple(StepSnapshot.of(step) for step in run.steps),
            upcoming=_upcoming(run, mode),
        )


def _upcoming(run: RunState, mode: Mode | None) -> tuple[StepSnapshot, ...]:
    """The steps `mode` declares for the run that it has not planned (none once it ended)."""
    declared = getattr(mode, "upcoming_steps", None)  # optional: a mode may not have it
    if declared is None or run.status in TERMINAL_RUN_STATUSES:
        return ()
    try:
        definitions = declared(run.context)
    except Exception:  # a snapshot is a read: a mode that cannot tell shows nothing upcoming
        return ()
    planned = run.step_ids
    return tuple(StepSnapshot.upcoming(d) for d in definitions if d.step_id not in planned)
