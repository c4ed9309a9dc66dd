"""The journal protocol: an append-only, per-conversation sequence of events (spec/journal.md).

Every journal numbers the events of each conversation 1, 2, 3, ... with no gap (JRN-1). `append`
takes the sequence number the writer believes is the conversation's last (`expected_last`): if
another writer got there first, the append fails with `StaleWriterError` and writes nothing, so
two writers can never fork one conversation's history (JRN-3). Nothing is ever updated or deleted
(JRN-11); the one exception is the recovery of a SQLite or PostgreSQL journal, which moves
torn records to a quarantine table (JRN-9, PGJ-7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._vocabulary import Event
from ._ownership import Command, CommandAnswer, OwnerRecord


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
    # The writer's epoch (OWN-3): None only for a conversation that has never had an owner.
    epoch: int | None = None
    # Commands answered by these events: (command id, answer JSON), written in the same
    # transaction (OWN-6).
    answers: Sequence[tuple[int, str]] = ()
    # Whether the conversation still has a run to drive after these events (spec/workers.md,
    # WRK-2): None leaves the journal's marker as it is. Only a journal that shares work
    # between workers (`PostgresJournal`) keeps it; the others ignore it.
    active: bool | None = None


@runtime_checkable
class Journal(Protocol):
    """An append-only event log, per conversation."""

    def append(
        self,
        conversation_id: str,
        expected_last: int,
        events: Sequence[Event],
        *,
        epoch: int | None = None,
    ) -> int:
        """Append `events` after sequence `expected_last`; return the new last sequence.

        Durable when it returns (JRN-5). Raises `StaleWriterError` (and writes nothing) when the
        conversation's last sequence is not `expected_last` (JRN-3); an empty `events` only checks
        that. Raises `JournalError` (and writes nothing) for an item that is not a well-formed
        event of this conversation (JRN-10). Raises `StaleOwnerError` (and writes nothing) when
        `epoch` is not the conversation's current owner epoch; `None` is the epoch of a
        conversation that has never had an owner (OWN-3).
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

    # --- ownership (spec/ownership.md) -----------------------------------------------------

    def register(self, owner_id: str, host: str, pid: int, expires: float) -> None:
        """Record (or refresh) the lease of an owner: alive until `expires` (OWN-4)."""
        ...

    def renew(self, owner_id: str, expires: float) -> None:
        """Move an owner's lease to `expires` (the heartbeat)."""
        ...

    def release(self, owner_id: str) -> None:
        """End an owner's lease now: every conversation it owns is abandoned at once."""
        ...

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        """Make `owner_id` the conversation's owner at epoch `seen_epoch + 1` (OWN-2).

        A compare-and-set: raises `StaleOwnerError` (and changes nothing) when the current epoch
        is not `seen_epoch` (0: no owner yet), so of two claimants that saw the same epoch one
        wins. `JournalError` when `owner_id` has no registered lease.
        """
        ...

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner (largest epoch), None if it never had one."""
        ...

    def owners(self) -> list[OwnerRecord]:
        """The current owner of every owned conversation, by conversation id."""
        ...

    def ownership_history(self, conversation_id: str) -> list[OwnerRecord]:
        """Every owner the conversation had, by epoch (each takeover, journaled: OWN-5)."""
        ...

    def submit(self, conversation_id: str, event: Event, at: float) -> int:
        """Queue a command (a request event) for the conversation's owner; its id (OWN-6)."""
        ...

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        """Unanswered commands with id > `after` (of one conversation, or all), in order."""
        ...

    def last_command_id(self) -> int:
        """The largest command id submitted so far (0 when none)."""
        ...

    def answer(self, command_id: int) -> CommandAnswer | None:
        """The owner's answer to a command, None while it is pending."""
        ...

    def change_token(self) -> int:
        """A number that changes when another writer commits (cheap: polled by owners)."""
        ...

    def close(self) -> None:
        """Release the journal's resources; later calls raise `JournalError` (JRN-8).

        Closing a closed journal does nothing.
        """
        ...
