"""`MemoryJournal`: the journal protocol in a dict of lists, for tests and throwaway runtimes.

Theory of operation
-------------------
Each conversation is a list of `JournalRecord`s whose index is `sequence - 1`, so "no gap" holds
by construction and `last_sequence` is the list's length. One lock guards every call: an append
checks `expected_last` and extends the list under it, so two threads sharing the journal are two
writers fenced exactly as two SQLite connections are (JRN-3). `append_many` checks every batch
before it changes anything, which makes it all-or-nothing without an undo log (JRN-4).

Events are stored as the objects given: they are frozen, and the core never mutates a payload.
Nothing is durable; a process that exits loses the journal.

Ownership (spec/ownership.md) is kept the same way: per conversation a list of owner records
whose index is `epoch - 1`, leases by owner id, and commands with their answers. The epoch fence
(OWN-3) is checked with the sequence fence, under the same lock, before anything changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from types import TracebackType

from .._vocabulary import Event
from ._check import (
    check_depths,
    check_events,
    check_target,
    closed,
    no_lease,
    stale,
    stale_owner,
)
from ._ownership import Command, CommandAnswer, OwnerRecord
from ._protocol import AppendBatch, JournalRecord

_Lease = tuple[str, int, float]  # host, pid, expires


class MemoryJournal:
    """An in-process journal: the protocol without durability, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: dict[str, list[JournalRecord]] = {}
        self._owners: dict[str, list[tuple[str, str | None, str, float]]] = {}
        self._leases: dict[str, _Lease] = {}
        self._commands: list[Command] = []
        self._answers: dict[int, CommandAnswer] = {}
        self._changes = 0
        self._closed = False

    def append(
        self,
        conversation_id: str,
        expected_last: int,
        events: Sequence[Event],
        *,
        epoch: int | None = None,
    ) -> int:
        """Append `events` after sequence `expected_last`; return the new last sequence."""
        return self.append_many([AppendBatch(conversation_id, expected_last, events, epoch)])[0]

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append several conversations' events at once; all or nothing."""
        for batch in batches:
            check_target(batch.conversation_id, batch.expected_last)
            check_events(batch.conversation_id, batch.events)
            check_depths(batch.conversation_id, batch.events)
        with self._lock:
            if self._closed:
                raise closed("MemoryJournal")
            # Check every batch first, counting earlier batches of the same conversation, so a
            # stale batch anywhere leaves the journal untouched.
            lasts: dict[str, int] = {}
            for batch in batches:
                cid = batch.conversation_id
                last = lasts.get(cid)
                if last is None:
                    last = len(self._log.get(cid, ()))
                # The epoch first: a writer that lost the conversation is told so (and lets it
                # go) even when the new owner has also moved the sequence on.
                current = self._epoch(cid)
                if batch.epoch != current:
                    raise stale_owner(cid, batch.epoch, current)
                if last != batch.expected_last:
                    raise stale(cid, batch.expected_last, last)
                lasts[cid] = last + len(batch.events)
                for command_id, _body in batch.answers:
                    if command_id in self._answers:
                        raise stale_owner(cid, batch.epoch, current)
            results = []
            for batch in batches:
                cid = batch.conversation_id
                log = self._log.setdefault(cid, [])
                start = len(log) + 1
                log.extend(
                    JournalRecord(cid, start + offset, event)
                    for offset, event in enumerate(batch.events)
                )
                results.append(len(log))
                for command_id, body in batch.answers:
                    self._answers[command_id] = CommandAnswer(command_id, batch.epoch, body, 0.0)
            self._changes += 1
            return results

    def read(self, conversation_id: str, after: int = 0) -> Iterator[JournalRecord]:
        """The conversation's records with sequence > `after`, in order."""
        with self._lock:
            if self._closed:
                raise closed("MemoryJournal")
            # A copy taken under the lock: the reader sees a prefix of the history even while
            # writers go on appending.
            return iter(self._log.get(conversation_id, [])[max(after, 0) :])

    def last_sequence(self, conversation_id: str) -> int:
        """The conversation's last sequence number (0 when it has no event)."""
        with self._lock:
            if self._closed:
                raise closed("MemoryJournal")
            return len(self._log.get(conversation_id, ()))

    def conversations(self) -> list[str]:
        """Every conversation id with at least one event, sorted."""
        with self._lock:
            if self._closed:
                raise closed("MemoryJournal")
            return sorted(cid for cid, log in self._log.items() if log)

    # --- ownership ------------------------------------------------------------------------

    def _live(self) -> None:
        if self._closed:
            raise closed("MemoryJournal")

    def _epoch(self, conversation_id: str) -> int | None:
        owners = self._owners.get(conversation_id)
        return len(owners) if owners else None

    def _record(self, conversation_id: str, epoch: int) -> OwnerRecord:
        owner_id, previous, reason, at = self._owners[conversation_id][epoch - 1]
        host, pid, expires = self._leases.get(owner_id, ("", 0, 0.0))
        return OwnerRecord(
            conversation_id, epoch, owner_id, previous, reason, at, host, pid, expires
        )

    def register(self, owner_id: str, host: str, pid: int, expires: float) -> None:
        """Record (or refresh) an owner's lease."""
        with self._lock:
            self._live()
            self._leases[owner_id] = (host, pid, expires)
            self._changes += 1

    def renew(self, owner_id: str, expires: float) -> None:
        """Move an owner's lease to `expires`."""
        with self._lock:
            self._live()
            lease = self._leases.get(owner_id)
            if lease is not None:
                self._leases[owner_id] = (lease[0], lease[1], expires)
                self._changes += 1

    def release(self, owner_id: str) -> None:
        """End an owner's lease now."""
        self.renew(owner_id, 0.0)

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        """Take the conversation at epoch `seen_epoch + 1`, if its epoch is still `seen_epoch`."""
        check_target(conversation_id, 0)
        with self._lock:
            self._live()
            current = self._epoch(conversation_id)
            if (current or 0) != seen_epoch:
                raise stale_owner(conversation_id, seen_epoch or None, current)
            if owner_id not in self._leases:
                raise no_lease(owner_id)
            owners = self._owners.setdefault(conversation_id, [])
            previous = owners[-1][0] if owners else None
            owners.append((owner_id, previous, reason, at))
            self._changes += 1
            return self._record(conversation_id, len(owners))

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner."""
        with self._lock:
            self._live()
            epoch = self._epoch(conversation_id)
            return None if epoch is None else self._record(conversation_id, epoch)

    def owners(self) -> list[OwnerRecord]:
        """The current owner of every owned conversation."""
        with self._lock:
            self._live()
            return [self._record(cid, len(self._owners[cid])) for cid in sorted(self._owners)]

    def ownership_history(self, conversation_id: str) -> list[OwnerRecord]:
        """Every owner the conversation had, by epoch."""
        with self._lock:
            self._live()
            count = len(self._owners.get(conversation_id, ()))
            return [self._record(conversation_id, epoch) for epoch in range(1, count + 1)]

    def submit(self, conversation_id: str, event: Event, at: float) -> int:
        """Queue a command for the conversation's owner."""
        check_target(conversation_id, 0)
        check_events(conversation_id, [event])
        with self._lock:
            self._live()
            command = Command(len(self._commands) + 1, conversation_id, event, at)
            self._commands.append(command)
            self._changes += 1
            return command.command_id

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        """Unanswered commands with id > `after`, in order."""
        with self._lock:
            self._live()
            return [
                command
                for command in self._commands[max(after, 0) :]
                if command.command_id not in self._answers
                and (conversation_id is None or command.conversation_id == conversation_id)
            ]

    def last_command_id(self) -> int:
        """The largest command id submitted so far."""
        with self._lock:
            self._live()
            return len(self._commands)

    def answer(self, command_id: int) -> CommandAnswer | None:
        """The owner's answer to a command, None while it is pending."""
        with self._lock:
            self._live()
            return self._answers.get(command_id)

    def fork(self) -> MemoryJournal:
        """An independent copy, of this journal's class: what one of them writes, the other never
        sees (the model checker explores every move from one journal state)."""
        with self._lock:
            self._live()
            copy = type(self)()
            # Records, commands and answers are frozen: the copy shares them, not their lists.
            copy._log = {cid: list(log) for cid, log in self._log.items()}
            copy._owners = {cid: list(owners) for cid, owners in self._owners.items()}
            copy._leases = dict(self._leases)
            copy._commands = list(self._commands)
            copy._answers = dict(self._answers)
            copy._changes = self._changes
            return copy

    def change_token(self) -> int:
        """Counts every write (one process: every writer is "another writer")."""
        with self._lock:
            return self._changes

    def close(self) -> None:
        """Forget the events; later calls raise `JournalError`. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            self._log = {}

    def __enter__(self) -> MemoryJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
