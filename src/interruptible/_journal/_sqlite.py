"""`SQLiteJournal`: the journal protocol in one SQLite file (stdlib `sqlite3`, WAL mode).

Theory of operation
-------------------
Writes. Every append is one write transaction, and the `expected_last` check of JRN-3 is made
by SQLite inside it, row by row: the primary key (conversation_id, sequence) refuses a second
row of a sequence, and the schema's `events_follow_last` trigger refuses a row whose sequence
does not follow the conversation's largest one, so a row goes in only right after the
conversation's last one, even where damage left a gap deeper in the history. A stale
batch therefore fails the statement (`IntegrityError`), nothing is written, and
`StaleWriterError` names the first stale batch (JRN-3); a foreign writer that bypasses this code
meets the same constraints. `append_many` puts every batch in the same transaction, so 500
conversations cost one commit, one fsync (JRN-4). Rows are encoded before the lock is taken.
Up to `_ONE_STATEMENT` rows, the write is one multi-row INSERT, which SQLite runs as a
transaction of its own (all rows or none); a larger write, or one with an empty batch (a fence
probe, which only an explicit check can refuse), is BEGIN IMMEDIATE, the explicit check (for a
probe), one executemany, COMMIT.

Memory. The connection's page cache is 16 MiB (`CACHE_KIB`, not SQLite's 2 MB): a group commit
touches one leaf page per conversation, and a cache that holds them all writes without reading.

Checkpoints. SQLite's automatic checkpoint stays on (every 1,000 pages of log, inside the commit
that crosses it): it keeps the log small and reused, which keeps a synced commit cheap. See
spec/journal.md for why it is not moved to a thread.

Durability. WAL mode with `synchronous=FULL` (the default) fsyncs the log at every commit, so an
append that returned survives a power loss; `NORMAL` fsyncs only at checkpoints, so an append
survives a crash of the process but the last commits may be lost with the machine (JRN-5).

Reads. `read` pages through a conversation 1,024 rows at a time (each page its own short read,
under the lock), and checks every record on the way out: a record that is not whole raises
`JournalError` rather than be skipped or guessed at (JRN-6). `sqlite3` cannot fetch a TEXT value
whose bytes are not UTF-8 (a foreign writer's; SQLite stores any bytes): the whole fetch fails.
Such a page is fetched again with those values as their bytes (`UndecodableText`), so the one
record is torn and the rest of the journal reads as before (JRN-16).

Recovery. Opening the file checks the last `check_tail` records of every conversation; a torn
record and every record after it are moved to `quarantine`, the conversation ends at its last
whole event, and each move is reported in `recovered` and logged as a warning (JRN-9). `verify`
checks every record without changing anything; `recover(tail=None)` repairs the whole file.

Read-only. `SQLiteJournal(path, readonly=True)` reads and changes nothing (JRN-17): no WAL
switch, no schema, no recovery, no side file left behind (see `_readonly.py`); a torn record is
reported by `read` and `verify` as usual, and every write raises `JournalError`.

One connection, shared by threads (`check_same_thread=False`) under one lock: the runtime writes
from its event loop while other threads (a tool, an inspecting tool) may read.
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

from .._codec import dumps, loads_event
from .._errors import DecodeError, JournalError, StaleWriterError
from .._vocabulary import TYPE_NAMES, Event
from ._check import check_events, check_target, closed, no_lease, stale, stale_batches, stale_owner
from ._ownership import Command, CommandAnswer, OwnerRecord
from ._protocol import AppendBatch, JournalRecord
from ._readonly import READONLY_BUSY_TIMEOUT, connect_readonly
from ._records import (
    RecoveryNote,
    Row,
    TornRecord,
    UndecodableText,
    decode_page,
    encode_rows,
    find_tear,
)
from ._schema import prepare

logger = logging.getLogger("interruptible.journal")

# A torn write can only hit the last transaction a writer made, and one transaction adds one
# batch per conversation: the runtime's batches hold the few events a conversation got since the
# previous commit. 8 records cover that with room to spare and keep opening cheap (about 50 ms
# per 1,000 conversations); damage deeper in history is found by `read` (JRN-6) or `verify`.
DEFAULT_CHECK_TAIL: Final = 8

# Rows fetched per query by `read`: large enough that the query overhead vanishes against
# decoding, small enough that the lock is never held for long and memory stays flat.
_PAGE: Final = 1024

# How long a writer waits for another connection's write lock before giving up (seconds).
DEFAULT_BUSY_TIMEOUT: Final = 30.0

# The connection's page cache, in KiB (SQLite's default is 2,000 KiB). Rows are clustered by
# conversation, so a group commit dirties one leaf page per conversation in it: with the default
# cache, a round of 500 conversations read most of its pages back from the OS before writing
# them (measured: half of the round's SQLite time). 16 MiB holds the working pages of about
# 4,000 conversations; it is memory SQLite takes only as pages are used.
CACHE_KIB: Final = 16 * 1024

_LAST: Final = "SELECT coalesce(max(sequence), 0) FROM events WHERE conversation_id = ?"
# The schema's constraints make the JRN-3 check (see the module's docstring): a plain INSERT.
_APPEND: Final = "INSERT INTO events (conversation_id, sequence, type, body, crc, epoch) VALUES "
_ROW: Final = "(?, ?, ?, ?, ?, ?)"
# Writes of up to this many rows are one statement (its own transaction); larger ones are
# BEGIN IMMEDIATE, executemany, COMMIT. The runtime's single-conversation writes hold 1 to 3.
_ONE_STATEMENT: Final = 16
_INSERTS: Final = tuple(_APPEND + ", ".join([_ROW] * n) for n in range(_ONE_STATEMENT + 1))
_COLUMNS: Final = "SELECT sequence, type, body, crc FROM events"
_PAGE_QUERY: Final = (
    f"{_COLUMNS} WHERE conversation_id = ? AND sequence > ? ORDER BY sequence LIMIT ?"
)
_TAIL_QUERY: Final = f"{_COLUMNS} WHERE conversation_id = ? ORDER BY sequence DESC LIMIT ?"
_ALL_QUERY: Final = f"{_COLUMNS} WHERE conversation_id = ? ORDER BY sequence"
# The same columns with each TEXT value as its bytes, flagged, so that no value is decoded.
_AS_BYTES: Final = "SELECT " + ", ".join(
    f"CASE WHEN typeof({c}) = 'text' THEN CAST({c} AS BLOB) ELSE {c} END, typeof({c}) = 'text'"
    for c in ("sequence", "type", "body", "crc")
)

_EPOCH: Final = "SELECT max(epoch) FROM owners WHERE conversation_id = ?"
_OWNER_COLUMNS: Final = (
    "o.conversation_id, o.epoch, o.owner_id, o.previous_owner, o.reason, o.taken_at, "
    "coalesce(l.host, ''), coalesce(l.pid, 0), coalesce(l.expires, 0.0)"
)
_OWNER: Final = (
    f"SELECT {_OWNER_COLUMNS} FROM owners AS o LEFT JOIN leases AS l USING (owner_id) "
    "WHERE o.conversation_id = ? ORDER BY o.epoch DESC LIMIT 1"
)
_OWNERS: Final = (
    f"SELECT {_OWNER_COLUMNS} FROM owners AS o "
    "JOIN (SELECT conversation_id, max(epoch) AS epoch FROM owners GROUP BY conversation_id) "
    "USING (conversation_id, epoch) LEFT JOIN leases AS l USING (owner_id) "
    "ORDER BY o.conversation_id"
)
_HISTORY: Final = (
    f"SELECT {_OWNER_COLUMNS} FROM owners AS o LEFT JOIN leases AS l USING (owner_id) "
    "WHERE o.conversation_id = ? ORDER BY o.epoch"
)
_PENDING: Final = (
    "SELECT c.command_id, c.conversation_id, c.body, c.submitted_at FROM commands AS c "
    "WHERE c.command_id > ? {only} AND NOT EXISTS "
    "(SELECT 1 FROM command_answers AS a WHERE a.command_id = c.command_id) "
    "ORDER BY c.command_id"
)


def _text(value: Any, is_text: int) -> Any:
    """A column fetched as bytes, as `sqlite3` gives it, unless it is TEXT that is not UTF-8."""
    if not is_text:
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return UndecodableText(value)


Synchronous = Literal["FULL", "NORMAL"]
# (conversation_id, expected_last, events in the batch, the writer's owner epoch)
_Target = tuple[str, int, int, int | None]


def _sqlite_error(exc: sqlite3.Error, doing: str) -> JournalError:
    return JournalError(
        f"SQLite failed while {doing}: {exc}; nothing was written. Check the file, its disk and "
        "its permissions, then retry.",
        reason="sqlite_error",
    )


def _first_stale(conn: sqlite3.Connection, targets: Sequence[_Target]) -> StaleWriterError | None:
    """The error for the first batch whose epoch is not its conversation's current owner epoch
    (OWN-3), or whose `expected_last` is not its conversation's last."""
    pending: dict[str, int] = {}
    for cid, expected_last, count, epoch in targets:
        last = pending.get(cid)
        if last is None:
            (last,) = conn.execute(_LAST, (cid,)).fetchone()
        # The epoch first: a writer that lost the conversation is told so (and lets it go) even
        # when the new owner has also moved the sequence on.
        (current,) = conn.execute(_EPOCH, (cid,)).fetchone()
        if current != epoch:
            return stale_owner(cid, epoch, current)
        if last != expected_last:
            return stale(cid, expected_last, last)
        # A conversation may appear in several batches; a later one follows the earlier ones.
        pending[cid] = last + count
    return None


class SQLiteJournal:
    """A durable journal in one SQLite file; the default journal of the embedded runtime."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        check_tail: int = DEFAULT_CHECK_TAIL,
        busy_timeout: float | None = None,
        readonly: bool = False,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        self.synchronous: Synchronous = synchronous
        self.recovered: list[RecoveryNote] = []
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:  # JRN-17: read what is there, change nothing (no WAL, schema or recovery)
            self._open_readonly(READONLY_BUSY_TIMEOUT if busy_timeout is None else busy_timeout)
            return
        try:
            # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE.
            conn = sqlite3.connect(
                self.path,
                timeout=DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, f"opening {self.path!r}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # negative: KiB, not pages
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
        self._cursor = conn.cursor()

        if check_tail > 0:  # 0 opts out; `read` still refuses a torn record (JRN-6)
            self.recover(tail=check_tail)

    def _open_readonly(self, busy_timeout: float) -> None:
        conn = connect_readonly(self.path, busy_timeout)
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # the connection's memory, not the file
        self._conn = conn
        self._cursor = conn.cursor()

    # --- writes ----------------------------------------------------------------------------

    def append(
        self,
        conversation_id: str,
        expected_last: int,
        events: Sequence[Event],
        *,
        epoch: int | None = None,
    ) -> int:
        """Append `events` after sequence `expected_last`; durable when it returns."""
        if self.readonly:
            raise self._refused("append")
        check_target(conversation_id, expected_last)
        rows = encode_rows(conversation_id, expected_last, events, epoch)
        self._write(rows, ((conversation_id, expected_last, len(rows), epoch),), probe=not rows)
        return expected_last + len(rows)

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append several conversations' events in one transaction, one commit; all or nothing."""
        if self.readonly:
            raise self._refused("append")
        rows: list[Row] = []
        targets: list[_Target] = []
        answers: list[tuple[int, int | None, str]] | None = None
        for batch in batches:
            check_target(batch.conversation_id, batch.expected_last)
            batch_rows = encode_rows(
                batch.conversation_id, batch.expected_last, batch.events, batch.epoch
            )
            rows.extend(batch_rows)
            targets.append(
                (batch.conversation_id, batch.expected_last, len(batch_rows), batch.epoch)
            )
            if batch.answers:
                if answers is None:
                    answers = []
                answers.extend((cid, batch.epoch, body) for cid, body in batch.answers)
        self._write(rows, targets, probe=any(target[2] == 0 for target in targets), answers=answers)
        return [target[1] + target[2] for target in targets]

    def _write(
        self,
        rows: list[Row],
        targets: Sequence[_Target],
        *,
        probe: bool,
        answers: list[tuple[int, int | None, str]] | None = None,
    ) -> None:
        with self._lock:
            conn = self._live()
            cursor = self._cursor  # one cursor for every write: no allocation per append
            count = len(rows)
            try:
                if answers is not None:
                    self._write_transaction(conn, cursor, rows, targets, probe=True, commit=False)
                    self._answered(conn, cursor, answers)
                elif 0 < count <= _ONE_STATEMENT and not probe:
                    # One statement: SQLite makes it a transaction, all rows or none.
                    cursor.execute(
                        _INSERTS[count],
                        rows[0] if count == 1 else [value for row in rows for value in row],
                    )
                else:
                    self._write_transaction(conn, cursor, rows, targets, probe=probe)
            except sqlite3.IntegrityError:
                # Another writer first: a row of one of these sequences is already there, or a
                # row does not follow the last one (the conversation moved, or recovery
                # shortened it).
                try:
                    error = _first_stale(conn, targets) or stale_batches()
                except sqlite3.Error:
                    error = stale_batches()
                raise error from None
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, f"appending {count} event(s)") from None

    def _write_transaction(
        self,
        conn: sqlite3.Connection,
        cursor: sqlite3.Cursor,
        rows: list[Row],
        targets: Sequence[_Target],
        *,
        probe: bool,
        commit: bool = True,
    ) -> None:
        cursor.execute("BEGIN IMMEDIATE")
        try:
            # An empty batch is a bare fence probe: only an explicit check can refuse it.
            if probe:
                error = _first_stale(conn, targets)
                if error is not None:
                    raise error
            if rows:
                cursor.executemany(_INSERTS[1], rows)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if commit:
            cursor.execute("COMMIT")

    def _answered(
        self,
        conn: sqlite3.Connection,
        cursor: sqlite3.Cursor,
        answers: list[tuple[int, int | None, str]],
    ) -> None:
        # Inside the transaction `_write_transaction(probe=True)` left open: the answers commit
        # with the events that carried the commands out, or not at all (OWN-6). A second answer
        # to one command (an owner that lost the conversation) violates the primary key.
        try:
            now = time.time()
            cursor.executemany(
                "INSERT INTO command_answers (command_id, epoch, body, answered_at) "
                "VALUES (?, ?, ?, ?)",
                [(command_id, epoch, body, now) for command_id, epoch, body in answers],
            )
            cursor.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # --- reads -----------------------------------------------------------------------------

    def read(self, conversation_id: str, after: int = 0) -> Iterator[JournalRecord]:
        """The conversation's records with sequence > `after`, in order, each checked whole."""
        with self._lock:
            self._live()  # a closed journal refuses now, not at the first next()
        return self._records(conversation_id, max(after, 0))

    def _records(self, conversation_id: str, after: int) -> Iterator[JournalRecord]:
        expected = after + 1
        while True:
            page = self._rows(_PAGE_QUERY, (conversation_id, expected - 1, _PAGE))
            events, torn = decode_page(conversation_id, expected, page)
            for event in events:
                yield JournalRecord(conversation_id, expected, event)
                expected += 1
            if torn is not None:
                raise self._torn_error(conversation_id, torn)
            if len(page) < _PAGE:
                return

    def last_sequence(self, conversation_id: str) -> int:
        """The conversation's last sequence number (0 when it has no event)."""
        rows = self._query(_LAST, (conversation_id,))
        last: int = rows[0][0] if rows else 0
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
        if tail is not None and tail < 1:
            raise ValueError(f"tail must be at least 1 (or None for every record), got {tail}")
        notes = []
        for cid in self.conversations():
            torn = self._tear(cid, tail)
            if torn is not None:
                notes.append(RecoveryNote(cid, torn.expected - 1, torn.sequence, 0, torn.problem))
        return notes

    def recover(self, *, tail: int | None = None) -> list[RecoveryNote]:
        """Move each torn record and its followers to `quarantine`; report and log each move."""
        if self.readonly:
            raise self._refused("recover torn records")
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
            return find_tear(cid, self._rows(_ALL_QUERY, (cid,), conn), 1)
        rows = self._rows(_TAIL_QUERY, (cid, tail), conn)[::-1]
        # Fewer rows than asked for means the window reaches the conversation's first record.
        first = 1 if len(rows) < tail else rows[0][0]
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

    # --- ownership (spec/ownership.md) -----------------------------------------------------

    def _execute(self, doing: str, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            conn = self._live()
            try:
                conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, doing) from None

    def register(self, owner_id: str, host: str, pid: int, expires: float) -> None:
        """Record (or refresh) an owner's lease."""
        self._execute(
            "registering an owner",
            "INSERT INTO leases (owner_id, host, pid, expires) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (owner_id) DO UPDATE SET expires = excluded.expires",
            (owner_id, host, pid, expires),
        )

    def renew(self, owner_id: str, expires: float) -> None:
        """Move an owner's lease to `expires` (one row, whatever it owns)."""
        self._execute(
            "renewing a lease",
            "UPDATE leases SET expires = ? WHERE owner_id = ?",
            (expires, owner_id),
        )

    def release(self, owner_id: str) -> None:
        """End an owner's lease now."""
        self.renew(owner_id, 0.0)

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        """Take the conversation at epoch `seen_epoch + 1`, if its epoch is still `seen_epoch`."""
        check_target(conversation_id, 0)
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(_OWNER, (conversation_id,)).fetchone()
                    current = None if row is None else row[1]
                    if (current or 0) != seen_epoch:
                        raise stale_owner(conversation_id, seen_epoch or None, current)
                    if (
                        conn.execute(
                            "SELECT 1 FROM leases WHERE owner_id = ?", (owner_id,)
                        ).fetchone()
                        is None
                    ):
                        raise no_lease(owner_id)
                    conn.execute(
                        "INSERT INTO owners (conversation_id, epoch, owner_id, previous_owner, "
                        "reason, taken_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id,
                            seen_epoch + 1,
                            owner_id,
                            None if row is None else row[2],
                            reason,
                            at,
                        ),
                    )
                    claimed = conn.execute(_OWNER, (conversation_id,)).fetchone()
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, f"claiming conversation {conversation_id!r}") from None
        return OwnerRecord(*claimed)

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner."""
        rows = self._query(_OWNER, (conversation_id,))
        return OwnerRecord(*rows[0]) if rows else None

    def owners(self) -> list[OwnerRecord]:
        """The current owner of every owned conversation."""
        return [OwnerRecord(*row) for row in self._query(_OWNERS, ())]

    def ownership_history(self, conversation_id: str) -> list[OwnerRecord]:
        """Every owner the conversation had, by epoch."""
        return [OwnerRecord(*row) for row in self._query(_HISTORY, (conversation_id,))]

    def submit(self, conversation_id: str, event: Event, at: float) -> int:
        """Queue a command for the conversation's owner."""
        check_target(conversation_id, 0)
        check_events(conversation_id, [event])
        with self._lock:
            conn = self._live()
            try:
                cursor = conn.execute(
                    "INSERT INTO commands (conversation_id, type, body, submitted_at) "
                    "VALUES (?, ?, ?, ?)",
                    (conversation_id, TYPE_NAMES[type(event)], dumps(event), at),
                )
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, "submitting a command") from None
            command_id = cursor.lastrowid
        assert command_id is not None
        return command_id

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        """Unanswered commands with id > `after`, in order (one that does not decode is kept
        pending and skipped, with a warning: an owner never acts on a damaged command)."""
        if conversation_id is None:
            rows = self._query(_PENDING.format(only=""), (after,))
        else:
            rows = self._query(
                _PENDING.format(only="AND c.conversation_id = ?"), (after, conversation_id)
            )
        commands = []
        for command_id, cid, body, submitted_at in rows:
            try:
                event = loads_event(body)
            except DecodeError as exc:
                logger.warning(
                    "journal %s: command %d does not decode: %s", self.path, command_id, exc
                )
                continue
            if getattr(event, "conversation_id", None) != cid:
                logger.warning(
                    "journal %s: command %d names another conversation", self.path, command_id
                )
                continue
            commands.append(Command(command_id, cid, event, submitted_at))
        return commands

    def last_command_id(self) -> int:
        """The largest command id submitted so far."""
        last: int = self._query("SELECT coalesce(max(command_id), 0) FROM commands", ())[0][0]
        return last

    def answer(self, command_id: int) -> CommandAnswer | None:
        """The owner's answer to a command, None while it is pending."""
        rows = self._query(
            "SELECT command_id, epoch, body, answered_at FROM command_answers WHERE command_id = ?",
            (command_id,),
        )
        return CommandAnswer(*rows[0]) if rows else None

    def change_token(self) -> int:
        """SQLite's `data_version`: it changes when another connection commits."""
        token: int = self._query("PRAGMA data_version", ())[0][0]
        return token

    # --- plumbing --------------------------------------------------------------------------

    def _refused(self, doing: str) -> JournalError:
        return JournalError(
            f"journal {self.path!r} is open read-only and cannot {doing}; open it without "
            "readonly=True to write (a runtime does, and recovers torn records then).",
            reason="journal_readonly",
        )

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise closed("SQLiteJournal")
        return self._conn

    def _query(
        self, sql: str, params: tuple[Any, ...], conn: sqlite3.Connection | None = None
    ) -> list[Any]:
        try:
            if conn is not None:  # the caller holds the lock and a transaction
                return conn.execute(sql, params).fetchall()
            with self._lock:
                live = self._live()
                try:
                    return live.execute(sql, params).fetchall()
                except sqlite3.Error as exc:
                    raise _sqlite_error(exc, "reading") from None
        except UnicodeEncodeError:  # an id with a lone surrogate: no row holds one (JRN-16)
            return []

    def _rows(
        self, sql: str, params: tuple[Any, ...], conn: sqlite3.Connection | None = None
    ) -> list[Any]:
        """The records a query selects; a TEXT value that is not UTF-8 as `UndecodableText`."""
        try:
            return self._query(sql, params, conn)
        except (JournalError, sqlite3.Error) as exc:
            # sqlite3 cannot decode some TEXT value (or the read failed): fetch the bytes. If
            # that fails too, the read itself failed, and the first error says how.
            error = exc
        try:
            raw = self._query(sql.replace(_COLUMNS, f"{_AS_BYTES} FROM events"), params, conn)
        except (JournalError, sqlite3.Error):
            raise error from None
        return [
            (_text(a, at), _text(b, bt), _text(c, ct), _text(d, dt))
            for a, at, b, bt, c, ct, d, dt in raw
        ]

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
