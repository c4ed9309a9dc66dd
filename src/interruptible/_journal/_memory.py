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
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from types import TracebackType

from .._vocabulary import Event
from ._check import check_depths, check_events, check_target, closed, stale
from ._protocol import AppendBatch, JournalRecord


class MemoryJournal:
    """An in-process journal: the protocol without durability, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: dict[str, list[JournalRecord]] = {}
        self._closed = False

    def append(self, conversation_id: str, expected_last: int, events: Sequence[Event]) -> int:
        """Append `events` after sequence `expected_last`; return the new last sequence."""
        return self.append_many([AppendBatch(conversation_id, expected_last, events)])[0]

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
                if last != batch.expected_last:
                    raise stale(cid, batch.expected_last, last)
                lasts[cid] = last + len(batch.events)
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
