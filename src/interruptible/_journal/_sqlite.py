"""`SQLiteJournal`: the journal protocol in one SQLite file (stdlib `sqlite3`, WAL mode).

Theory of operation
-------------------
Writes. Every append is one write transaction: `BEGIN IMMEDIATE` takes SQLite's write lock
first, so the `expected_last` check and the inserts that follow see the same last sequence; a
stale writer gets `StaleWriterError` and the transaction is rolled back with nothing written
(JRN-3). The primary key (conversation_id, sequence) backs that check: a writer that skipped it
still cannot fork a history, its insert fails and is reported as stale too. `append_many` puts
every batch in the same transaction, so 500 conversations cost one commit, one fsync (JRN-4).
Rows are encoded before the lock is taken; under it the hot path is four statements.

Durability. WAL mode with `synchronous=FULL` (the default) fsyncs the log at every commit, so an
append that returned survives a power loss; `NORMAL` fsyncs only at checkpoints, so an append
survives a crash of the process but the last commits may be lost with the machine (JRN-5).

Reads. `read` pages through a conversation 1,024 rows at a time (each page its own short read,
under the lock), and checks every record on the way out: a record that is not whole raises
`JournalError` rather than be skipped or guessed at (JRN-6).

Recovery. Opening the file checks the last `check_tail` records of every conversation; a torn
record and every record after it are moved to `quarantine`, the conversation ends at its last
whole event, and each move is reported in `recovered` and logged as a warning (JRN-9). `verify`
checks every record without changing anything; `recover(tail=None)` repairs the whole file.

One connection, shared by threads (`check_same_thread=False`) under one lock: the runtime calls
the journal from a writer thread while others read.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Final, Literal

from .._errors import JournalError, StaleWriterError
from .._vocabulary import Event
from ._check import check_target, closed, stale
from ._protocol import AppendBatch, JournalRecord
from ._records import RecoveryNote, Row, TornRecord, decode_record, encode_rows, find_tear
from ._schema import prepare

logger = logging.getLogger("interruptible.journal")

# A torn write can only hit the last transaction a writer made, and one transaction adds one
# batch per conversation, rarely more than a few events; 32 records cover that with room to
# spare while keeping the check on open at a few rows per conversation.
DEFAULT_CHECK_TAIL: Final = 32

# Rows fetched per query by `read`: large enough that the query overhead vanishes against
# decoding, small enough that the lock is never held for long and memory stays flat.
_PAGE: Final = 1024

# How long a writer waits for another connection's write lock before giving up (seconds).
DEFAULT_BUSY_TIMEOUT: Final = 30.0

_LAST: Final = "SELECT coalesce(max(sequence), 0) FROM events WHERE conversation_id = ?"
_INSERT: Final = (
    "INSERT INTO events (conversation_id, sequence, type, body, crc) VALUES (?, ?, ?, ?, ?)"
)
_PAGE_QUERY: Final = (
    "SELECT sequence, type, body, crc FROM events WHERE conversation_id = ? AND sequence > ? "
    "ORDER BY sequence LIMIT ?"
)
_TAIL_QUERY: Final = (
    "SELECT sequence, type, body, crc FROM events WHERE conversation_id = ? "
    "ORDER BY sequence DESC LIMIT ?"
)

Synchronous = Literal["FULL", "NORMAL"]


def _sqlite_error(exc: sqlite3.Error, doing: str) -> JournalError:
    return JournalError(
        f"SQLite failed while {doing}: {exc}; nothing was written. Check the file, its disk and "
        "its permissions, then retry.",
        reason="sqlite_error",
    )


class SQLiteJournal:
    """A durable journal in one SQLite file; the default journal of the embedded runtime."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        check_tail: int = DEFAULT_CHECK_TAIL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        self.synchronous: Synchronous = synchronous
        self.recovered: list[RecoveryNote] = []
        self._lock = threading.Lock()
        try:
            # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE.
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, f"opening {self.path!r}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            prepare(conn, self.path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(
                f"{self.path!r} cannot be opened as a journal: {exc}; point the journal at a new "
                "file or at one that interruptible created.",
                reason="not_a_journal",
            ) from None
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        self.recover(tail=check_tail)

    # --- writes ----------------------------------------------------------------------------

    def append(self, conversation_id: str, expected_last: int, events: Sequence[Event]) -> int:
        """Append `events` after sequence `expected_last`; durable when it returns."""
        check_target(conversation_id, expected_last)
        rows = encode_rows(conversation_id, expected_last, events)
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    (last,) = conn.execute(_LAST, (conversation_id,)).fetchone()
                    if last != expected_last:
                        raise stale(conversation_id, expected_last, last)
                    conn.executemany(_INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                # Only a writer that bypassed the check above can collide on the primary key.
                actual = self._last(conn, conversation_id)
                raise stale(conversation_id, expected_last, actual) from None
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, f"appending to {conversation_id!r}") from None
        return expected_last + len(rows)

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append several conversations' events in one transaction, one commit; all or nothing."""
        rows: list[Row] = []
        for batch in batches:
            check_target(batch.conversation_id, batch.expected_last)
            rows.extend(encode_rows(batch.conversation_id, batch.expected_last, batch.events))
        results: list[int] = []
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # A conversation may appear in several batches; later ones follow earlier ones.
                    pending: dict[str, int] = {}
                    for batch in batches:
                        cid = batch.conversation_id
                        last = pending.get(cid)
                        if last is None:
                            (last,) = conn.execute(_LAST, (cid,)).fetchone()
                        if last != batch.expected_last:
                            raise stale(cid, batch.expected_last, last)
                        pending[cid] = last + len(batch.events)
                        results.append(pending[cid])
                    conn.executemany(_INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                # Only a writer that bypassed the checks above can collide on the primary key.
                raise StaleWriterError(
                    "a batch collided with another writer's records, and nothing was written; "
                    "read the conversations again, fold what you missed, and decide again.",
                    reason="stale_writer",
                ) from None
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, f"appending {len(batches)} batches") from None
        return results

    # --- reads -----------------------------------------------------------------------------

    def read(self, conversation_id: str, after: int = 0) -> Iterator[JournalRecord]:
        """The conversation's records with sequence > `after`, in order, each checked whole."""
        with self._lock:
            self._live()  # a closed journal refuses now, not at the first next()
        return self._records(conversation_id, max(after, 0))

    def _records(self, conversation_id: str, after: int) -> Iterator[JournalRecord]:
        expected = after + 1
        while True:
            page = self._query(_PAGE_QUERY, (conversation_id, expected - 1, _PAGE))
            for sequence, type_, body, crc in page:
                try:
                    event = decode_record(conversation_id, expected, sequence, type_, body, crc)
                except TornRecord as torn:
                    raise self._torn_error(conversation_id, torn) from None
                yield JournalRecord(conversation_id, sequence, event)
                expected += 1
            if len(page) < _PAGE:
                return

    def last_sequence(self, conversation_id: str) -> int:
        """The conversation's last sequence number (0 when it has no event)."""
        last: int = self._query(_LAST, (conversation_id,))[0][0]
        return last

    def conversations(self) -> list[str]:
        """Every conversation id with at least one event, sorted."""
        rows = self._query("SELECT DISTINCT conversation_id FROM events ORDER BY 1", ())
        return [cid for (cid,) in rows]

    def quarantined(self) -> list[tuple[str, int, str]]:
        """The records recovery moved out of the log: (conversation_id, sequence, reason)."""
        rows = self._query(
            "SELECT conversation_id, sequence, reason FROM quarantine ORDER BY rowid", ()
        )
        return [(cid, sequence, reason) for cid, sequence, reason in rows]

    # --- verification and recovery ---------------------------------------------------------

    def verify(self, *, tail: int | None = None) -> list[RecoveryNote]:
        """Check the last `tail` records of every conversation (all when None); change nothing."""
        notes = []
        for cid in self.conversations():
            torn = self._tear(cid, tail)
            if torn is not None:
                notes.append(RecoveryNote(cid, torn.expected - 1, torn.sequence, 0, torn.problem))
        return notes

    def recover(self, *, tail: int | None = None) -> list[RecoveryNote]:
        """Move each torn record and its followers to `quarantine`; report and log each move."""
        suspects = self.verify(tail=tail)
        if not suspects:
            return []
        notes = []
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for suspect in suspects:
                        # Checked again under the write lock: another writer may have moved on.
                        torn = self._tear(suspect.conversation_id, tail, conn)
                        if torn is not None:
                            notes.append(self._quarantine(conn, suspect.conversation_id, torn))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, "recovering torn records") from None
        for note in notes:
            logger.warning(
                "journal %s: conversation %r torn at sequence %d (%s); %d record(s) moved to "
                "quarantine, the conversation continues from sequence %d",
                self.path,
                note.conversation_id,
                note.first_bad,
                note.problem,
                note.quarantined,
                note.last_good,
            )
        self.recovered.extend(notes)
        return notes

    def _tear(
        self, cid: str, tail: int | None, conn: sqlite3.Connection | None = None
    ) -> TornRecord | None:
        if tail is None:
            rows = self._query(
                "SELECT sequence, type, body, crc FROM events WHERE conversation_id = ? "
                "ORDER BY sequence",
                (cid,),
                conn,
            )
            return find_tear(cid, rows, 1)
        rows = self._query(_TAIL_QUERY, (cid, max(tail, 1)), conn)[::-1]
        # Fewer rows than asked for means the window reaches the conversation's first record.
        first = 1 if len(rows) < max(tail, 1) else rows[0][0]
        return find_tear(cid, rows, first)

    def _quarantine(self, conn: sqlite3.Connection, cid: str, torn: TornRecord) -> RecoveryNote:
        # The one permitted delete (JRN-9): copy first, then delete; the schema's trigger refuses
        # to delete any row that is not already in quarantine unchanged.
        conn.execute(
            "INSERT INTO quarantine "
            "(conversation_id, sequence, type, body, crc, reason, quarantined_at) "
            "SELECT conversation_id, sequence, type, body, crc, "
            "CASE WHEN sequence = ? THEN ? ELSE ? END, ? "
            "FROM events WHERE conversation_id = ? AND sequence >= ?",
            (
                torn.sequence,
                torn.problem,
                f"follows the torn record {torn.sequence}",
                time.time(),
                cid,
                torn.sequence,
            ),
        )
        moved = conn.execute(
            "DELETE FROM events WHERE conversation_id = ? AND sequence >= ?", (cid, torn.sequence)
        ).rowcount
        return RecoveryNote(cid, torn.expected - 1, torn.sequence, moved, torn.problem)

    def _torn_error(self, cid: str, torn: TornRecord) -> JournalError:
        return JournalError(
            f"journal {self.path!r}: record {torn.sequence} of conversation {cid!r} is torn "
            f"({torn.problem}); the conversation is whole up to sequence {torn.expected - 1}. "
            "Run recover(tail=None) to quarantine the torn records, then read again.",
            conversation_id=cid,
            reason="torn_record",
        )

    # --- plumbing --------------------------------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise closed("SQLiteJournal")
        return self._conn

    def _query(
        self, sql: str, params: tuple[Any, ...], conn: sqlite3.Connection | None = None
    ) -> list[Any]:
        if conn is not None:  # the caller holds the lock and a transaction
            return conn.execute(sql, params).fetchall()
        with self._lock:
            live = self._live()
            try:
                return live.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, "reading") from None

    def _last(self, conn: sqlite3.Connection, cid: str) -> int:
        try:
            last: int = conn.execute(_LAST, (cid,)).fetchone()[0]
        except sqlite3.Error:
            return -1
        return last

    def close(self) -> None:
        """Close the connection; later calls raise `JournalError`. Closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SQLiteJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
