"""The journal protocol: an append-only, per-conversation sequence of events (spec/journal.md).

Every journal numbers the events of each conversation 1, 2, 3, ... with no gap (JRN-1). `append`
takes the sequence number the writer believes is the conversation's last (`expected_last`): if
another writer got there first, the append fails with `StaleWriterError` and writes nothing, so
two writers can never fork one conversation's history (JRN-3). Nothing is ever updated or deleted
(JRN-11); the one exception is a SQLite journal's recovery, which moves torn records to a
quarantine table (JRN-9).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._vocabulary import Event


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled event with its per-conversation sequence number."""

    conversation_id: str
    sequence: int
    event: Event


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Events to append to one conversation, after its last sequence `expected_last`."""

    conversation_id: str
    expected_last: int
    events: Sequence[Event]


@runtime_checkable
class Journal(Protocol):
    """An append-only event log, per conversation."""

    def append(self, conversation_id: str, expected_last: int, events: Sequence[Event]) -> int:
        """Append `events` after sequence `expected_last`; return the new last sequence.

        Durable when it returns (JRN-5). Raises `StaleWriterError` (and writes nothing) when the
        conversation's last sequence is not `expected_last` (JRN-3); an empty `events` only checks
        that. Raises `JournalError` (and writes nothing) for an item that is not a well-formed
        event of this conversation (JRN-10).
        """
        ...

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append several conversations' events in one durable commit (group commit).

        All or nothing: if one batch is stale, `StaleWriterError` is raised and nothing is written.
        Returns the new last sequence of each batch, in order.
        """
        ...

    def read(self, conversation_id: str, after: int = 0) -> Iterator[JournalRecord]:
        """The conversation's records with sequence > `after`, in order.

        A record that is not whole (torn, damaged) raises `JournalError` when reached, after the
        whole records before it (JRN-6); nothing is skipped.
        """
        ...

    def last_sequence(self, conversation_id: str) -> int:
        """The conversation's last sequence number (0 when it has no event)."""
        ...

    def conversations(self) -> list[str]:
        """Every conversation id with at least one event, sorted."""
        ...

    def close(self) -> None:
        """Release the journal's resources; later calls raise `JournalError` (JRN-8).

        Closing a closed journal does nothing.
        """
        ...
