"""Checks every journal makes before it writes: the batch is well formed, the journal is open.

Every journal refuses the same inputs with the same errors (JRN-10), so the contract tests can
run unchanged against any; the checks live here once. The one difference: only the SQLite and
PostgreSQL journals encode the events, so only they refuse a payload that is not JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._core._validate import event_problem
from .._errors import JournalError, StaleOwnerError, StaleWriterError
from .._vocabulary import EVENT_TYPES, Event

EVENT_CLASSES: Final = frozenset(EVENT_TYPES.values())


def check_target(conversation_id: object, expected_last: object) -> None:
    """Refuse a conversation id that is not a non-empty string or a negative `expected_last`."""
    if type(conversation_id) is not str or not conversation_id:
        raise JournalError(
            f"conversation id must be a non-empty string, got {conversation_id!r}; pass the "
            "conversation_id of the events you append.",
            reason="bad_conversation_id",
        )
    if type(expected_last) is not int or expected_last < 0:
        raise JournalError(
            f"expected_last must be an int >= 0, got {expected_last!r}; pass the last sequence "
            "you read (0 for a new conversation).",
            conversation_id=conversation_id,
            reason="bad_expected_last",
        )


def foreign_event(conversation_id: str, index: int, event: object) -> JournalError:
    """The error for an object that is not a vocabulary event of this conversation."""
    if type(event) not in EVENT_CLASSES:
        return JournalError(
            f"item {index} of the batch is a {type(event).__name__}, not an event; journals "
            "record interruptible's event classes only.",
            conversation_id=conversation_id,
            reason="not_an_event",
        )
    other = getattr(event, "conversation_id", None)
    return JournalError(
        f"item {index} of the batch belongs to conversation {other!r}, not "
        f"{conversation_id!r}; append it to its own conversation.",
        conversation_id=conversation_id,
        reason="wrong_conversation",
    )


def check_event(conversation_id: str, index: int, event: Event) -> None:
    """Refuse a non-event, another conversation's event, or a malformed one (JRN-10)."""
    if type(event) not in EVENT_CLASSES or event.conversation_id != conversation_id:
        raise foreign_event(conversation_id, index, event)
    # The check `reduce` makes: an event it would reject as malformed may not enter the journal,
    # or replay would meet a record that does not decode.
    problem = event_problem(event)
    if problem is not None:
        raise JournalError(
            f"item {index} of the batch is malformed: {problem}; fix the event and append again.",
            conversation_id=conversation_id,
            reason="malformed_event",
        )


def check_events(conversation_id: str, events: Sequence[Event]) -> None:
    """Refuse a batch holding any event that `check_event` refuses; nothing is written."""
    for index, event in enumerate(events):
        check_event(conversation_id, index, event)


def stale(conversation_id: str, expected_last: int, actual_last: int) -> StaleWriterError:
    """The error for a writer whose `expected_last` is not the conversation's last sequence."""
    return StaleWriterError(
        f"conversation {conversation_id!r} is at sequence {actual_last}, not {expected_last}: "
        f"another writer advanced it, and nothing was written. Read the conversation after "
        f"sequence {expected_last}, fold what you missed, and decide again.",
        conversation_id=conversation_id,
        reason="stale_writer",
    )


def closed(kind: str) -> JournalError:
    """The error for any call on a closed journal (JRN-8)."""
    return JournalError(
        f"this {kind} is closed; open a new one (open_journal) to keep using the journal.",
        reason="journal_closed",
    )


def stale_owner(conversation_id: str, epoch: int | None, current: int | None) -> StaleOwnerError:
    """The error for a write or claim whose owner epoch is not the conversation's current one."""
    theirs = "no owner" if current is None else f"owner epoch {current}"
    return StaleOwnerError(
        f"conversation {conversation_id!r} is at {theirs}, not "
        f"{'no owner' if epoch is None else f'epoch {epoch}'}: another process took it over, "
        "and nothing was written. Stop driving it; its owner answers commands for it.",
        conversation_id=conversation_id,
        reason="stale_owner",
    )


def no_lease(owner_id: str) -> JournalError:
    """The error for a claim by an owner that registered no lease."""
    return JournalError(
        f"owner {owner_id!r} has no lease in this journal; register it before claiming.",
        reason="no_lease",
    )
