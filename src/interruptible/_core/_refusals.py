"""The typed errors `reduce` answers with: one builder per refusal, saying what to do next.

Naming: a builder is named `<code>_for_<case>`, where `<code>` is the `code` of the error class
it returns (`run_terminal_for_gate_answer` builds a `RunTerminalError`) and `<case>` is the
refusal it words; a caller reads the error type off the name.
"""

from __future__ import annotations

from typing import Any

from .._errors import (
    ResumeNotAllowedError,
    RunConflictError,
    RunNotFoundError,
    RunTerminalError,
    StepNotFoundError,
)
from .._vocabulary import HumanInputReceived, ResumeRequested, RunRequested, StepDefinition
from ._state import RunState


def run_not_found_for_unknown_id(event: Any, status: str | None = None) -> RunNotFoundError:
    """No run with the event's run id in its conversation (`status`: none, there is no run)."""
    return RunNotFoundError(
        f"conversation {event.conversation_id!r} has no run {event.run_id!r}; check the run id "
        f"(the conversation state's `runs` lists its retained runs).",
        conversation_id=event.conversation_id,
        run_id=event.run_id,
        status=status,
        reason="run_not_found",
    )


def run_conflict_for_reused_id(event: RunRequested, status: str | None) -> RunConflictError:
    """A run id used before for a different request."""
    return RunConflictError(
        f"run id {event.run_id!r} was already used in conversation {event.conversation_id!r} "
        f"for a different request; use a new run id.",
        conversation_id=event.conversation_id,
        run_id=event.run_id,
        status=status,
        reason="run_id_reused",
    )


def resume_not_allowed_for_uninterrupted(
    event: ResumeRequested, status: str
) -> ResumeNotAllowedError:
    """A resume of a run that is not interrupted."""
    return ResumeNotAllowedError(
        f"run {event.run_id!r} is {status}, and only an interrupted run can be resumed; "
        f"start a new run instead.",
        conversation_id=event.conversation_id,
        run_id=event.run_id,
        status=status,
        reason="not_interrupted",
    )


def step_not_found_for_unplanned_step(event: Any, run: RunState) -> StepNotFoundError:
    """An event naming a step the run has not planned."""
    return StepNotFoundError(
        f"run {run.run_id!r} has no step {event.step_id!r}; its steps are "
        f"{[step.step_id for step in run.steps]}.",
        conversation_id=event.conversation_id,
        run_id=run.run_id,
        status=run.status.value,
        reason="step_not_found",
    )


def step_not_found_for_non_gate(
    event: HumanInputReceived, run: RunState, definition: StepDefinition
) -> StepNotFoundError:
    """A human answer for a step that is not a human gate."""
    return StepNotFoundError(
        f"step {event.step_id!r} of run {run.run_id!r} is a "
        f"{definition.step_class.value} step, not a human gate.",
        conversation_id=event.conversation_id,
        run_id=run.run_id,
        status=run.status.value,
        reason="not_a_gate",
    )


def run_conflict_for_changed_answer(
    event: HumanInputReceived, run: RunState, status: str
) -> RunConflictError:
    """A human answer unlike the one the gate already has."""
    return RunConflictError(
        f"gate {event.step_id!r} of run {run.run_id!r} already has a different "
        f"answer; an answer cannot be changed.",
        conversation_id=event.conversation_id,
        run_id=run.run_id,
        status=status,
        reason="answer_conflict",
    )


def run_terminal_for_gate_answer(event: HumanInputReceived, status: str) -> RunTerminalError:
    """A human answer for a gate of a run that has ended."""
    return RunTerminalError(
        f"run {event.run_id!r} has ended ({status}); its gates take no more answers.",
        conversation_id=event.conversation_id,
        run_id=event.run_id,
        status=status,
        reason="run_terminal",
    )
