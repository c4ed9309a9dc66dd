"""Command answers: what an owner writes back for a command from another process (OWN-6).

An answer is one JSON document: `{"snapshot": {...}}` with the run as the owner saw it right
after the command, or `{"error": {"type": ..., "message": ..., "fields": {...}}}` with the typed
error the owner's core gave. The sender rebuilds the same `RunSnapshot`, or raises an error of the
same class with the same message and fields, so a caller cannot tell a command answered by
another process from one answered locally.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .. import _errors
from .._codec import value_from_json, value_to_json
from .._errors import InterruptibleError
from .._lifecycle import RunStatus, StepClass, StepStatus
from .._vocabulary import StepFailure
from ._snapshot import RunSnapshot, StepSnapshot

# The base fields every `InterruptibleError` takes as keywords; the rest are set as attributes.
_BASE_FIELDS: Final = ("conversation_id", "run_id", "status", "reason")


def _failure(value: StepFailure | None) -> object:
    return None if value is None else value_to_json(value)


def _step(step: StepSnapshot) -> list[object]:
    return [
        step.step_id,
        step.step_class.value,
        step.label,
        step.status.value,
        step.attempt,
        step.output,
        _failure(step.failure),
    ]


def _step_from(data: list[Any]) -> StepSnapshot:
    step_id, step_class, label, status, attempt, output, failure = data
    return StepSnapshot(
        step_id,
        StepClass(step_class),
        label,
        StepStatus(status),
        attempt,
        output,
        _failure_from(failure),
    )


def snapshot_answer(snapshot: RunSnapshot) -> str:
    """The answer document of a command that the owner applied (or found a duplicate)."""
    return json.dumps(
        {
            "snapshot": {
                "conversation_id": snapshot.conversation_id,
                "run_id": snapshot.run_id,
                "mode": snapshot.mode,
                "status": snapshot.status.value,
                "reason": snapshot.reason,
                "output": snapshot.output,
                "error": _failure(snapshot.error),
                "steps": [_step(step) for step in snapshot.steps],
                "upcoming": [_step(step) for step in snapshot.upcoming],
            }
        },
        separators=(",", ":"),
    )


def error_answer(error: InterruptibleError) -> str:
    """The answer document of a command that the owner refused."""
    return json.dumps(
        {
            "error": {
                "type": type(error).__name__,
                "message": error.message,
                "fields": error.fields(),
            }
        },
        separators=(",", ":"),
    )


def _failure_from(value: Any) -> Any:
    return None if value is None else value_from_json(StepFailure, value)


def read_answer(body: str) -> RunSnapshot:
    """The snapshot an answer carries; raises the error it carries instead."""
    document = json.loads(body)
    if "error" in document:
        raise _rebuild(document["error"])
    data = document["snapshot"]
    return RunSnapshot(
        conversation_id=data["conversation_id"],
        run_id=data["run_id"],
        mode=data["mode"],
        status=RunStatus(data["status"]),
        reason=data["reason"],
        output=data["output"],
        error=_failure_from(data["error"]),
        steps=tuple(_step_from(step) for step in data["steps"]),
        upcoming=tuple(_step_from(step) for step in data.get("upcoming", ())),
    )


def _rebuild(data: dict[str, Any]) -> InterruptibleError:
    cls = getattr(_errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, InterruptibleError)):
        cls = InterruptibleError
    fields: dict[str, Any] = dict(data.get("fields") or {})
    fields.pop("code", None)
    # Built without the class's own constructor (its arguments differ per class): the base
    # initialiser, then every other field as the attribute `fields()` reads it from.
    error: InterruptibleError = cls.__new__(cls)
    InterruptibleError.__init__(
        error, str(data.get("message")), **{key: fields.pop(key, None) for key in _BASE_FIELDS}
    )
    for key, value in fields.items():
        setattr(error, key, int(value) if key == "pid" and value is not None else value)
    return error
