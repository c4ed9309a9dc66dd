"""Errors: one base class, one subclass per failure, structured fields, messages that say what
to do.

Definition errors (a lifecycle declared wrongly) are kept apart from runtime rejections (a valid
machine refusing an event): the first is a bug in a declaration and is raised at compile time;
the second is bad input and never changes state.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Final


class InterruptibleError(Exception):
    """Base class of every error this package raises on purpose."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.conversation_id = conversation_id
        self.run_id = run_id
        self.status = status
        self.reason = reason

    def fields(self) -> dict[str, str | None]:
        """The structured fields, for telemetry and the journal."""
        return {
            "code": self.code,
            "conversation_id": self.conversation_id,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
        }

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, InterruptibleError)
            and other.message == self.message
            and other.fields() == self.fields()
        )

    def __hash__(self) -> int:
        return hash((type(self), self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- definition errors ---------------------------------------------------------------------------


class LifecycleDefinitionError(InterruptibleError):
    """A declared lifecycle cannot be compiled (boolean guard strings, unknown directive names)."""

    code = "lifecycle_definition"


# --- rejections of a valid machine ---------------------------------------------------------------


class IllegalTransition(InterruptibleError):
    """An event that the lifecycle does not allow in the current status."""

    code = "illegal_transition"

    def __init__(
        self,
        machine: str,
        status: str,
        event: str,
        allowed: Iterable[str],
        failed_guards: Iterable[str] = (),
        *,
        conversation_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.machine = machine
        self.event = event
        self.allowed = tuple(sorted(allowed))
        self.failed_guards = tuple(failed_guards)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (final status)"
        if self.failed_guards:
            why = f"its guards do not hold ({', '.join(self.failed_guards)})"
        elif event in self.allowed:  # pragma: no cover - guards are the only way to refuse then
            why = "no transition matched"
        else:
            why = "the event is not allowed there"
        super().__init__(
            f"{machine}: event {event!r} is illegal in status {status!r}: {why}. "
            f"Events allowed in {status!r}: {allowed_text}.",
            conversation_id=conversation_id,
            run_id=run_id,
            status=status,
            reason="illegal_transition",
        )


class MissingGuardError(InterruptibleError):
    """The guard context given to `fire` has no value for a guard the transition needs."""

    code = "missing_guard"

    def __init__(self, machine: str, status: str, event: str, guard: str) -> None:
        self.guard = guard
        super().__init__(
            f"{machine}: firing {event!r} from {status!r} needs guard {guard!r} as a bool; "
            f"pass it in the guard context (a mapping of guard name to True or False).",
            status=status,
            reason="missing_guard",
        )


class _Short(reprlib.Repr):
    """`repr` cut short: a few levels, a few items, long text and huge integers abbreviated."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = 80

    def repr_int(self, x: int, level: int) -> str:
        # Python refuses to write an integer of more than 4,300 digits as text (ValueError).
        if x.bit_length() > 256:
            return f"<an integer of {x.bit_length():,} bits>"
        return super().repr_int(x, level)


_SHORT: Final = _Short()


def shown(value: object, width: int = 80) -> str:
    """A short `repr` of any value, for a message: never longer than `width`, never raising."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a foreign object whose repr fails: say what it is
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= width else text[: width - 3] + "..."


class DecodeError(InterruptibleError):
    """A JSON document or a field of it does not fit the vocabulary."""

    code = "decode_error"

    def __init__(self, path: str, expected: str, got: object) -> None:
        self.path = path
        self.expected = expected
        self.got = got
        # Both shown short, whatever they hold: a path may carry a foreign key of any length.
        super().__init__(
            f"field {shown(path, 120)}: expected {expected}, got {shown(got)}; fix that field "
            "and decode again.",
            reason="decode_error",
        )


class PayloadLimitError(InterruptibleError, ValueError):
    """A payload deeper or larger than the runtime accepts (RT-22); nothing was journaled."""

    code = "payload_limit"

    def __init__(self, what: str, limit: str, maximum: int, found: int | None = None) -> None:
        self.what = what
        self.limit = limit  # "depth" or "bytes"
        self.maximum = maximum
        self.found = found
        if limit == "depth":
            over = f"is nested more than {maximum:,} levels deep (arrays and objects)"
        else:
            over = f"is {found:,} characters of JSON text, more than {maximum:,}"
        super().__init__(
            f"{what} {over}, over the runtime's limit; send a smaller value (keep a large or "
            "deeply nested document elsewhere and pass a reference to it).",
            reason="payload_limit",
        )


class PolicyError(InterruptibleError, ValueError):
    """A step policy or backoff with values no runtime can honour."""

    code = "invalid_policy"


class UnknownCategoryError(InterruptibleError, ValueError):
    """A failure category given as a string that names no `FailureCategory`."""

    code = "unknown_category"

    def __init__(self, category: str, known: Iterable[str]) -> None:
        self.category = category
        self.known = tuple(known)
        super().__init__(
            f"unknown failure category {shown(category)}: use one of "
            f"{', '.join(self.known)} (or a FailureCategory member)",
            reason=category,
        )


class InvalidEventError(InterruptibleError):
    """An event object that is not one of the vocabulary's events, or is malformed."""

    code = "invalid_event"


class RunInProgressError(InterruptibleError):
    """The conversation already has an active run (pending, running or interrupted)."""

    code = "run_in_progress"


class RunNotFoundError(InterruptibleError):
    """No run with this id exists in the conversation."""

    code = "run_not_found"


class StepNotFoundError(InterruptibleError):
    """No step with this id exists in the run."""

    code = "step_not_found"


class ResumeNotAllowedError(InterruptibleError):
    """A resume of a run that is not interrupted."""

    code = "resume_not_allowed"


class RunConflictError(InterruptibleError):
    """A run id reused for a different request, or a human answer unlike the kept one."""

    code = "run_conflict"


class NotAuthorizedError(InterruptibleError):
    """The principal may not perform this action on this run."""

    code = "not_authorized"


class RunTerminalError(InterruptibleError):
    """An operation that needs a live run, on a run that has already ended."""

    code = "run_terminal"


class JournalError(InterruptibleError):
    """The journal refused an operation (a stale writer, a closed journal, a corrupt record)."""

    code = "journal_error"


class StaleWriterError(JournalError):
    """Another writer advanced this conversation first; this writer's view is stale."""

    code = "stale_writer"


class ConversationFailedError(InterruptibleError):
    """The runtime failed while handling a conversation (a bug); it stopped driving that one."""

    code = "conversation_failed"

    def __init__(self, conversation_id: str, while_doing: str, cause: BaseException) -> None:
        self.cause = f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"conversation {conversation_id!r} is fenced: {while_doing} raised {self.cause}. "
            f"This is a bug (report it); the journal holds everything committed before it: "
            f"reopen the journal in a new runtime to recover the conversation.",
            conversation_id=conversation_id,
            reason="conversation_failed",
        )


class GateClosedError(InterruptibleError):
    """A human answer for a gate that ended without one (its step failed or was canceled)."""

    code = "gate_closed"


class ModeNotFoundError(InterruptibleError):
    """No mode is registered under the name a run asks for."""

    code = "mode_not_found"


class RuntimeClosedError(InterruptibleError):
    """The runtime closed while a call waited on it (a `wait` for a run that had not settled)."""

    code = "runtime_closed"


# --- ownership (spec/ownership.md) ---------------------------------------------------------------


class StaleOwnerError(StaleWriterError):
    """Another owner took the conversation over: this owner's epoch is no longer current."""

    code = "stale_owner"


class OwnedElsewhereError(InterruptibleError):
    """The conversation is driven by another live process; this process may not drive it."""

    code = "owned_elsewhere"

    def __init__(
        self,
        message: str,
        *,
        conversation_id: str,
        owner_id: str,
        host: str,
        pid: int,
        run_id: str | None = None,
    ) -> None:
        super().__init__(
            message, conversation_id=conversation_id, run_id=run_id, reason="owned_elsewhere"
        )
        self.owner_id = owner_id
        self.host = host
        self.pid = pid

    def fields(self) -> dict[str, str | None]:
        """The structured fields, with the owner's id, host and pid."""
        return {
            **super().fields(),
            "owner_id": self.owner_id,
            "host": self.host,
            "pid": str(self.pid),
        }


class CommandTimeoutError(InterruptibleError):
    """A command was accepted but not answered in time; it is applied once by the owner."""

    code = "command_timeout"


# --- upgrades (spec/upgrades.md) -----------------------------------------------------------------


class DefinitionChangedError(InterruptibleError):
    """A run started on a definition that is no longer registered, and the registered one would
    change what it did or will do next (UPG-3); the run stays as it was."""

    code = "definition_changed"

    def __init__(
        self,
        message: str,
        *,
        conversation_id: str | None,
        run_id: str,
        run_fingerprint: str | None,
        current_fingerprint: str | None,
        step_id: str | None,
        status: str | None = None,
    ) -> None:
        super().__init__(
            message,
            conversation_id=conversation_id,
            run_id=run_id,
            status=status,
            reason="definition_changed",
        )
        self.run_fingerprint = run_fingerprint
        self.current_fingerprint = current_fingerprint
        self.step_id = step_id

    def fields(self) -> dict[str, str | None]:
        """The structured fields, with both fingerprints and the first differing step."""
        return {
            **super().fields(),
            "run_fingerprint": self.run_fingerprint,
            "current_fingerprint": self.current_fingerprint,
            "step_id": self.step_id,
        }
