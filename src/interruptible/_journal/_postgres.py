"""`PostgresJournal`: the journal protocol in a PostgreSQL database, through psycopg 3.

Theory of operation
-------------------
One connection per journal, in autocommit mode, shared by threads under one lock (as the SQLite
journal shares its connection): the runtime calls the journal from its event loop, one short
call at a time, and a tool or an inspecting thread may read meanwhile. A write that is one
statement runs as its own transaction; a write of several statements says BEGIN and COMMIT.
The session runs READ COMMITTED, whatever the server's default, and with the
`synchronous_commit` the journal was given ("on": a returned append survives a crash of the
server's machine, JRN-5).

Writes. The fences are the schema's (`_pg_schema.py`): the `events_fenced` trigger checks each
row's epoch (OWN-3) and sequence (JRN-3) in the transaction that inserts it, and the primary key
refuses a second row of a sequence. So an append is a plain INSERT: one row by VALUES, several
(a batch, a group commit of 500 conversations) by one INSERT ... SELECT FROM unnest(arrays),
one statement, one round trip, one commit (JRN-4). A call that carries command answers (OWN-6)
or a fence probe (an empty batch, which only an explicit check can refuse) is BEGIN, the check,
the INSERTs, COMMIT. A refused write fails its statement (an integrity error, or a deadlock or
serialization failure between two stale writers), nothing is written, and the journal then reads
the conversations' last sequences and epochs to name the first stale batch.

Reads. `read` pages through a conversation 1,024 rows at a time, each page its own query, and
decodes each row's `body_text` with the SQLite journal's checked decoder (`decode_page`: crc,
sequence, codec; JRN-6). `body` (jsonb) is for SQL, never for reading back: jsonb keeps numbers
as decimals and drops the difference between 1e16 and 10000000000000000, and between 0.0 and
-0.0, and it refuses a NUL character or an unpaired surrogate in a string, all of which the
codec writes and an event may hold (JRN-2). The text is the record; the document is its view.

A connection that fails (the server restarted, the backend was terminated) is dropped: the call
raises `JournalError` (reason `connection_lost`; for a write its outcome is unknown, see the
message) and the next call connects again. The journal never retries on its own.

Commands take their ids from a one-row counter bumped in the submitting transaction, so they
commit in id order with no gap; the counter is also the change token an owner polls (one
primary-key read), though on PostgreSQL owners listen to the schema's notifications instead
(`listener`, `_pg_listen.py`, spec/workers.md). Workers claim work with `claim_work`, one call
of the schema's function of that name (WRK-1), and owners keep each conversation's activity
marker in the transaction of their events (WRK-2).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Final, Literal

try:
    import psycopg
    from psycopg import errors as pg_errors
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "PostgresJournal needs psycopg 3: pip install 'interruptible[postgres]'"
    ) from exc

from .._codec import dumps, loads_event
from .._errors import DecodeError, InvalidEventError, JournalError, StaleWriterError
from .._vocabulary import TYPE_NAMES, Event
from ._check import check_events, check_target, closed, no_lease, stale, stale_owner
from ._ownership import Command, CommandAnswer, OwnerRecord
from ._pg_listen import KEEPALIVES, Claim, Listener
from ._pg_queries import statements
from ._pg_schema import DEFAULT_SCHEMA, channel, check_readable, prepare
from ._protocol import AppendBatch, JournalRecord
from ._records import RecoveryNote, Row, TornRecord, decode_page, encode_rows, find_tear

logger = logging.getLogger("interruptible.journal")

# Rows fetched per query by `read` (as in the SQLite journal): the query's cost vanishes against
# decoding, the lock is never held for long, memory stays flat.
_PAGE: Final = 1024

# How long a connection attempt may take before the call fails (seconds): long enough for a
# server on another machine, short enough that a dead one is reported, not waited on.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

# A connection whose peer is gone is noticed within about half a minute (`KEEPALIVES`), a
# transaction its client abandoned ends within `_IDLE_IN_TRANSACTION`, and no statement waits
# longer than `_LOCK_TIMEOUT` for a row lock (it fails instead: the caller's typed error).
_IDLE_IN_TRANSACTION: Final = "30s"
_LOCK_TIMEOUT: Final = "10s"

SynchronousCommit = Literal["on", "off", "local", "remote_write", "remote_apply"]
_SYNCHRONOUS_COMMIT: Final = frozenset({"on", "off", "local", "remote_write", "remote_apply"})

# (conversation_id, expected_last, events in the batch, the writer's owner epoch)
_Target = tuple[str, int, int, int | None]

# Errors that a write refused by the fences raises: the trigger's and the primary key's
# integrity errors, and what two stale writers racing on the same rows may get instead.
_REFUSED: Final = (
    pg_errors.IntegrityError,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)


def _storable(text: str) -> bool:
    """Whether PostgreSQL text can hold `text` (no NUL, no unpaired surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(what: str, value: str, reason: str) -> JournalError:
    return JournalError(
        f"{what} {value!r} cannot be stored in PostgreSQL text (it holds a NUL character or an "
        f"unpaired surrogate); use another {what}.",
        reason=reason,
    )


def _stale_batches() -> StaleWriterError:
    return StaleWriterError(
        "another writer advanced a conversation of this batch while it was written, and nothing "
        "was written; read the conversations again, fold what you missed, and decide again.",
        reason="stale_writer",
    )


def _name_stale(
    targets: Sequence[_Target], lasts: dict[str, int], epochs: dict[str, int | None]
) -> StaleWriterError | None:
    """The error for the first batch whose epoch or `expected_last` is not its conversation's.

    The epoch first (OWN-3): a writer that lost the conversation is told so, and lets it go,
    even when the new owner has also moved the sequence on.
    """
    pending: dict[str, int] = {}
    for cid, expected_last, count, epoch in targets:
        last = pending.get(cid, lasts.get(cid, 0))
        current = epochs.get(cid)
        if current != epoch:
            return stale_owner(cid, epoch, current)
        if last != expected_last:
            return stale(cid, expected_last, last)
        # A conversation may appear in several batches; a later one follows the earlier ones.
        pending[cid] = last + count
    return None


class PostgresJournal:
    """A durable journal in a PostgreSQL database, shared by processes on any machine."""

    def __init__(
        self,
        dsn: str = "",
        *,
        schema: str = DEFAULT_SCHEMA,
        synchronous_commit: SynchronousCommit = "on",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        readonly: bool = False,
        application_name: str = "interruptible",
    ) -> None:
        if synchronous_commit not in _SYNCHRONOUS_COMMIT:
            raise ValueError(
                f"synchronous_commit must be one of {sorted(_SYNCHRONOUS_COMMIT)}, "
                f"got {synchronous_commit!r}"
            )
        if type(schema) is not str or not schema or not _storable(schema):
            raise ValueError(f"schema must be a non-empty PostgreSQL name, got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.synchronous_commit: SynchronousCommit = synchronous_commit
        self.connect_timeout = connect_timeout
        # Read only: nothing is created or migrated on open, and the session refuses writes
        # (a reading command never writes, RT-21).
        self.readonly = readonly
        # What `pg_stat_activity` shows for its connections (its listener's: + " listener").
        self.application_name = application_name
        # Recovery notes of `recover` (nothing is checked on open: PGJ-7).
        self.recovered: list[RecoveryNote] = []
        self._sql = statements(schema)
        self._lock = threading.Lock()
        self._closed = False
        conn = self._connect()
        try:
            encoding = conn.info.parameter_status("server_encoding")
            if encoding != "UTF8":
                raise JournalError(
                    f"the database's encoding is {encoding!r}, and the journal needs UTF8 (its "
                    "text is Unicode); create the database with ENCODING 'UTF8'.",
                    reason="not_a_journal",
                )
            if readonly:
                check_readable(conn, schema)
            else:
                prepare(conn, schema)
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(
                f"PostgreSQL failed while preparing schema {schema!r}: {exc}; check that the "
                "user may create it (or that it holds an interruptible journal), then retry.",
                reason="postgres_error",
            ) from None
        except BaseException:
            conn.close()
            raise
        self._conn: psycopg.Connection[Any] | None = conn

    # --- connection ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name=self.application_name,
                **KEEPALIVES,
            )
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to PostgreSQL ({' '.join(str(exc).split())}); check the DSN and "
                "that the server is running, then retry.",
                reason="connection_failed",
            ) from None
        try:
            # READ COMMITTED whatever the server's default: the schema's fences are written for
            # it (stricter levels stay safe, but fail to serialize where it waits).
            conn.execute(
                (
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; "
                    f"SET synchronous_commit TO {self.synchronous_commit}; "
                    # A transaction left open by a lost client gives its locks back within
                    # these, instead of when TCP gives up (hours): a worker's calls run on its
                    # event loop, and one blocked on such a lock would stall them all.
                    f"SET idle_in_transaction_session_timeout TO '{_IDLE_IN_TRANSACTION}'; "
                    f"SET lock_timeout TO '{_LOCK_TIMEOUT}'"
                    + ("; SET default_transaction_read_only TO on" if self.readonly else "")
                ).encode()
            )
        except psycopg.Error as exc:
            conn.close()
            raise JournalError(
                f"PostgreSQL refused the journal's session settings: {exc}",
                reason="postgres_error",
            ) from None
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise closed("PostgresJournal")

    def _live(self) -> psycopg.Connection[Any]:
        """The open connection, connecting again if the last one was lost (call under the lock)."""
        if self._closed:
            raise closed("PostgresJournal")
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _failed(
        self, conn: psycopg.Connection[Any], exc: psycopg.Error, doing: str, *, write: bool
    ) -> JournalError:
        """The error for a failed call; a lost connection is dropped (the next call reconnects)."""
        if conn.broken or conn.closed:
            conn.close()
            if self._conn is conn:
                self._conn = None
            outcome = (
                " If it was lost during the commit, the write may have been made: read the "
                "conversation's last sequence before writing again."
                if write
                else ""
            )
            return JournalError(
                f"the connection to PostgreSQL was lost while {doing} "
                f"({' '.join(str(exc).split())}); the next call connects again.{outcome}",
                reason="connection_lost",
            )
        return JournalError(
            f"PostgreSQL failed while {doing}: {' '.join(str(exc).split())}; nothing was written. "
            "Check "
            "the server and the journal's schema, then retry.",
            reason="postgres_error",
        )

    def _query(self, name: str, params: Sequence[Any], doing: str = "reading") -> list[Any]:
        with self._lock:
            conn = self._live()
            try:
                return conn.execute(self._sql[name], params).fetchall()
            except psycopg.Error as exc:
                raise self._failed(conn, exc, doing, write=False) from None

    def _execute(self, name: str, params: Sequence[Any], doing: str) -> None:
        with self._lock:
            conn = self._live()
            try:
                conn.execute(self._sql[name], params)
            except psycopg.Error as exc:
                raise self._failed(conn, exc, doing, write=True) from None

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
        check_target(conversation_id, expected_last)
        if not _storable(conversation_id):
            raise _unstorable("conversation id", conversation_id, "bad_conversation_id")
        rows = encode_rows(conversation_id, expected_last, events, epoch)
        self._write(rows, ((conversation_id, expected_last, len(rows), epoch),), probe=not rows)
        return expected_last + len(rows)

    def append_many(self, batches: Sequence[AppendBatch]) -> list[int]:
        """Append several conversations' events in one transaction, one commit; all or nothing."""
        rows: list[Row] = []
        targets: list[_Target] = []
        answers: list[tuple[int, int | None, str]] = []
        marks: list[tuple[str, int | None, bool]] = []
        for batch in batches:
            cid = batch.conversation_id
            check_target(cid, batch.expected_last)
            if not _storable(cid):
                raise _unstorable("conversation id", cid, "bad_conversation_id")
            batch_rows = encode_rows(cid, batch.expected_last, batch.events, batch.epoch)
            rows.extend(batch_rows)
            targets.append((cid, batch.expected_last, len(batch_rows), batch.epoch))
            answers.extend((command_id, batch.epoch, body) for command_id, body in batch.answers)
            if batch.active is not None:
                marks.append((cid, batch.epoch, batch.active))
        self._write(
            rows,
            targets,
            probe=any(target[2] == 0 for target in targets),
            answers=answers,
            marks=marks,
        )
        return [target[1] + target[2] for target in targets]

    def _write(
        self,
        rows: list[Row],
        targets: Sequence[_Target],
        *,
        probe: bool,
        answers: list[tuple[int, int | None, str]] | None = None,
        marks: list[tuple[str, int | None, bool]] | None = None,
    ) -> None:
        with self._lock:
            conn = self._live()
            try:
                if probe or answers or marks:
                    with conn.transaction():
                        if probe:  # an empty batch: only an explicit check can refuse it
                            # Its rows locked first, as an insert's trigger would: a claim
                            # waits until this commits, so no answer or marker commits under
                            # an epoch that moved meanwhile (the fence, OWN-3).
                            conn.execute(
                                self._sql["share_conversations"],
                                (sorted({target[0] for target in targets}),),
                            )
                            error = self._first_stale(conn, targets)
                            if error is not None:
                                raise error
                        self._insert(conn, rows)
                        if answers:
                            now = time.time()
                            conn.execute(
                                self._sql["answer_many"],
                                (
                                    [answer[0] for answer in answers],
                                    [answer[1] for answer in answers],
                                    [answer[2] for answer in answers],
                                    [now] * len(answers),
                                ),
                            )
                        if marks:
                            self._mark(conn, marks)
                else:
                    self._insert(conn, rows)
            except _REFUSED:
                # Another writer first, or a stale owner (or a second answer to a command): the
                # statement failed whole. Name the first stale batch from a fresh look.
                try:
                    error = self._first_stale(conn, targets) or _stale_batches()
                except psycopg.Error:
                    error = _stale_batches()
                    if conn.broken:
                        self._forget(conn)
                raise error from None
            except psycopg.Error as exc:
                raise self._failed(
                    conn, exc, f"appending {len(rows)} event(s)", write=True
                ) from None

    def _insert(self, conn: psycopg.Connection[Any], rows: list[Row]) -> None:
        if len(rows) == 1:
            conn.execute(self._sql["insert_one"], rows[0])
        elif rows:
            conn.execute(
                self._sql["insert_many"], [list(column) for column in zip(*rows, strict=True)]
            )

    def _mark(
        self, conn: psycopg.Connection[Any], marks: Sequence[tuple[str, int | None, bool]]
    ) -> None:
        """Set activity markers under the epoch fence (in the caller's transaction, WRK-2)."""
        changed = conn.execute(
            self._sql["mark"],
            ([m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks]),
        ).rowcount
        if changed != len(marks):
            heads = conn.execute(self._sql["heads"], ([m[0] for m in marks],)).fetchall()
            epochs = {cid: epoch for cid, _last, epoch in heads}
            for cid, epoch, _active in marks:
                if epochs.get(cid) != epoch:
                    raise stale_owner(cid, epoch, epochs.get(cid))
            raise _stale_batches()  # pragma: no cover - a marker row vanished (none ever do)

    def _first_stale(
        self, conn: psycopg.Connection[Any], targets: Sequence[_Target]
    ) -> StaleWriterError | None:
        cids = list(dict.fromkeys(target[0] for target in targets))
        lasts: dict[str, int] = {}
        epochs: dict[str, int | None] = {}
        for cid, last, epoch in conn.execute(self._sql["heads"], (cids,)).fetchall():
            lasts[cid] = last
            epochs[cid] = epoch
        return _name_stale(targets, lasts, epochs)

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        conn.close()
        if self._conn is conn:
            self._conn = None

    # --- reads -----------------------------------------------------------------------------

    def read(self, conversation_id: str, after: int = 0) -> Iterator[JournalRecord]:
        """The conversation's records with sequence > `after`, in order, each checked whole."""
        self._check_open()  # a closed journal refuses now, not at the first next()
        if type(conversation_id) is not str or not _storable(conversation_id):
            return iter(())  # PostgreSQL cannot hold this id: it has no records
        return self._records(conversation_id, max(after, 0))

    def _records(self, conversation_id: str, after: int) -> Iterator[JournalRecord]:
        expected = after + 1
        while True:
            page = self._query("page", (conversation_id, expected - 1, _PAGE))
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
        if not _storable(conversation_id):
            self._check_open()
            return 0
        last: int = self._query("last", (conversation_id,))[0][0]
        return last

    def conversations(self) -> list[str]:
        """Every conversation id with at least one event, sorted."""
        return [cid for (cid,) in self._query("conversations", ())]

    def quarantined(self) -> list[tuple[str, int, str]]:
        """The records recovery moved out of the log: (conversation_id, sequence, reason)."""
        return [(cid, sequence, reason) for cid, sequence, reason in self._query("quarantined", ())]

    # --- verification and recovery (PGJ-7) ---------------------------------------------------

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
        suspects = self.verify(tail=tail)
        if not suspects:
            return []
        notes: list[RecoveryNote] = []
        try:
            with self._lock:
                conn = self._live()
                try:
                    # One transaction per conversation: each move is whole, and recovery holds
                    # one conversation's lock at a time (holding several, in its own order,
                    # could deadlock with a group commit that takes them in another).
                    for suspect in suspects:
                        cid = suspect.conversation_id
                        note = None
                        with conn.transaction():
                            # Hold the conversation against appends, then look again: another
                            # writer may have moved on since `verify`.
                            conn.execute(self._sql["lock_conversation"], (cid,))
                            torn = self._tear(cid, tail, conn)
                            if torn is not None:
                                note = self._quarantine(conn, cid, torn)
                        if note is not None:  # committed
                            notes.append(note)
                except psycopg.Error as exc:
                    raise self._failed(conn, exc, "recovering torn records", write=True) from None
        finally:  # the moves that committed are reported, even if a later one failed
            for note in notes:
                logger.warning(
                    "journal %s: conversation %r torn at sequence %d (%s); %d record(s) moved to "
                    "quarantine, the conversation continues from sequence %d",
                    self._where(),
                    note.conversation_id,
                    note.first_bad,
                    note.problem,
                    note.quarantined,
                    note.last_good,
                )
            self.recovered.extend(notes)
        return notes

    def _tear(
        self, cid: str, tail: int | None, conn: psycopg.Connection[Any] | None = None
    ) -> TornRecord | None:
        def fetch(name: str, params: tuple[Any, ...]) -> list[Any]:
            if conn is not None:  # the caller holds the lock and a transaction
                return conn.execute(self._sql[name], params).fetchall()
            return self._query(name, params)

        if tail is None:
            return find_tear(cid, fetch("all", (cid,)), 1)
        rows = fetch("tail", (cid, tail))[::-1]
        # Fewer rows than asked for means the window reaches the conversation's first record.
        first = 1 if len(rows) < tail else rows[0][0]
        return find_tear(cid, rows, first)

    def _quarantine(
        self, conn: psycopg.Connection[Any], cid: str, torn: TornRecord
    ) -> RecoveryNote:
        # The one permitted delete (JRN-9): copy first, then delete; the schema's trigger refuses
        # to delete any row that is not already in quarantine unchanged.
        conn.execute(
            self._sql["quarantine"],
            (
                torn.sequence,
                torn.problem,
                f"follows the torn record {torn.sequence}",
                time.time(),
                cid,
                torn.sequence,
            ),
        )
        moved = conn.execute(self._sql["unlog"], (cid, torn.sequence)).rowcount
        return RecoveryNote(cid, torn.expected - 1, torn.sequence, moved, torn.problem)

    def _torn_error(self, cid: str, torn: TornRecord) -> JournalError:
        return JournalError(
            f"journal {self._where()}: record {torn.sequence} of conversation {cid!r} is torn "
            f"({torn.problem}); the conversation is whole up to sequence {torn.expected - 1}. "
            "Run recover(tail=None) to quarantine the torn records, then read again.",
            conversation_id=cid,
            reason="torn_record",
        )

    def _where(self) -> str:
        return f"PostgreSQL schema {self.schema!r}"

    # --- ownership (spec/ownership.md) -----------------------------------------------------

    def register(self, owner_id: str, host: str, pid: int, expires: float) -> None:
        """Record (or refresh) an owner's lease."""
        for what, value in (("owner id", owner_id), ("host", host)):
            if not _storable(value):
                raise _unstorable(what, value, "bad_owner")
        self._execute("register", (owner_id, host, pid, expires), "registering an owner")

    def renew(self, owner_id: str, expires: float) -> None:
        """Move an owner's lease to `expires` (one row, whatever it owns)."""
        if _storable(owner_id):
            self._execute("renew", (expires, owner_id), "renewing a lease")
        else:
            self._check_open()  # no such owner can have a lease

    def release(self, owner_id: str) -> None:
        """End an owner's lease now."""
        self.renew(owner_id, 0.0)

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        """Take the conversation at epoch `seen_epoch + 1`, if its epoch is still `seen_epoch`."""
        check_target(conversation_id, 0)
        if not _storable(conversation_id):
            raise _unstorable("conversation id", conversation_id, "bad_conversation_id")
        with self._lock:
            conn = self._live()
            try:
                with conn.transaction():
                    # The conversation's row, locked: appends in flight finish first (OWN-3).
                    conn.execute(self._sql["touch"], (conversation_id,))
                    current, previous, leased = conn.execute(
                        self._sql["claim_check"], (owner_id, conversation_id)
                    ).fetchone() or (None, None, False)
                    if (current or 0) != seen_epoch:
                        raise stale_owner(conversation_id, seen_epoch or None, current)
                    if not leased:
                        raise no_lease(owner_id)
                    claimed = conn.execute(
                        self._sql["claim"],
                        (conversation_id, seen_epoch + 1, owner_id, previous, reason, at),
                    ).fetchone()
            except _REFUSED:
                # Another claimant first (the lock makes this rare): say which epoch won.
                try:
                    heads = conn.execute(self._sql["heads"], ([conversation_id],)).fetchall()
                    current = heads[0][2] if heads else None
                except psycopg.Error:
                    current = None
                raise stale_owner(conversation_id, seen_epoch or None, current) from None
            except psycopg.Error as exc:
                raise self._failed(
                    conn, exc, f"claiming conversation {conversation_id!r}", write=True
                ) from None
        assert claimed is not None
        return OwnerRecord(*claimed)

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner."""
        if not _storable(conversation_id):
            self._check_open()
            return None
        rows = self._query("owner", (conversation_id,))
        return OwnerRecord(*rows[0]) if rows else None

    def owners(self) -> list[OwnerRecord]:
        """The current owner of every owned conversation."""
        return [OwnerRecord(*row) for row in self._query("owners", ())]

    def ownership_history(self, conversation_id: str) -> list[OwnerRecord]:
        """Every owner the conversation had, by epoch."""
        if not _storable(conversation_id):
            self._check_open()
            return []
        return [OwnerRecord(*row) for row in self._query("history", (conversation_id,))]

    def submit(self, conversation_id: str, event: Event, at: float) -> int:
        """Queue a command for the conversation's owner; ids commit in order, with no gap."""
        check_target(conversation_id, 0)
        if not _storable(conversation_id):
            raise _unstorable("conversation id", conversation_id, "bad_conversation_id")
        check_events(conversation_id, [event])
        rows = self._query(
            "submit",
            (conversation_id, TYPE_NAMES[type(event)], dumps(event), at),
            "submitting a command",
        )
        command_id: int = rows[0][0]
        return command_id

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        """Unanswered commands with id > `after`, in order. One that does not decode (or names
        another conversation) is never acted on: it is answered with an `InvalidEventError`, so its
        sender learns it and it is no work for any worker (WRK-1); a read-only journal skips
        it with a warning."""
        if conversation_id is None:
            rows = self._query("pending", (after,))
        elif not _storable(conversation_id):
            self._check_open()
            return []
        else:
            rows = self._query("pending_of", (after, conversation_id))
        commands = []
        for command_id, cid, body, submitted_at in rows:
            try:
                event = loads_event(body)
            except DecodeError as exc:
                self._refuse_command(command_id, cid, f"does not decode: {exc}")
                continue
            if getattr(event, "conversation_id", None) != cid:
                self._refuse_command(command_id, cid, "names another conversation")
                continue
            commands.append(Command(command_id, cid, event, submitted_at))
        return commands

    def _refuse_command(self, command_id: int, cid: str, problem: str) -> None:
        """Answer a damaged command with an `InvalidEventError` (once: the answers' key)."""
        logger.warning("journal %s: command %d %s", self._where(), command_id, problem)
        if self.readonly:
            return
        error = InvalidEventError(
            f"command {command_id} for conversation {cid!r} {problem}; nothing was done. Send "
            "it again with this version of interruptible.",
            conversation_id=cid,
            reason="bad_command",
        )
        body = json.dumps(
            {
                "error": {
                    "type": "InvalidEventError",
                    "message": error.message,
                    "fields": error.fields(),
                }
            },
            separators=(",", ":"),
        )
        self._execute("answer_once", (command_id, body, time.time()), "answering a damaged command")

    def last_command_id(self) -> int:
        """The largest command id submitted so far (every smaller one is committed too)."""
        last: int = self._query("last_command", ())[0][0]
        return last

    def answer(self, command_id: int) -> CommandAnswer | None:
        """The owner's answer to a command, None while it is pending."""
        rows = self._query("answer", (command_id,))
        return CommandAnswer(*rows[0]) if rows else None

    def change_token(self) -> int:
        """The last command id: it moves exactly when a submitted command commits."""
        return self.last_command_id()

    # --- workers (spec/workers.md) --------------------------------------------------------

    # This journal shares conversations between worker processes: it keeps the activity
    # markers and claims work in one transaction (WRK-1, WRK-2).
    claims_work: Final = True

    def claim_work(
        self, owner_id: str, *, limit: int, at: float, max_claims: int | None = None
    ) -> list[Claim]:
        """Claim conversations with work whose owner is gone, for `owner_id`, so that it holds
        at most `limit` live ones (counted in the same transaction, WRK-1); at most
        `max_claims` now (default: as many as fit). Nothing when its lease is not live."""
        if limit < 0:
            raise ValueError(f"limit must be at least 0, got {limit!r}")
        if not _storable(owner_id):
            raise _unstorable("owner id", owner_id, "bad_owner")
        most = limit if max_claims is None else max(0, min(limit, max_claims))
        rows = self._query(
            "claim_work", (owner_id, limit, most, at), "claiming conversations with work"
        )
        return [Claim(*row) for row in rows]

    def mark(self, conversation_id: str, epoch: int, active: bool) -> None:
        """Set the conversation's activity marker, as its owner at `epoch` (WRK-2); refused
        with `StaleOwnerError` when another owner has claimed it since."""
        with self._lock:
            conn = self._live()
            try:
                with conn.transaction():
                    self._mark(conn, [(conversation_id, epoch, active)])
            except psycopg.Error as exc:
                raise self._failed(conn, exc, "marking a conversation", write=True) from None

    def find_run(self, run_id: str) -> str | None:
        """The conversation whose journal holds the request of run `run_id`, if any (a scan of
        the `run_requested` documents: for tools, not hot paths)."""
        if not _storable(run_id):
            self._check_open()
            return None
        rows = self._query("find_run", (run_id,))
        return str(rows[0][0]) if rows else None

    def active_conversations(self) -> list[str]:
        """The conversations marked as having a run to drive, sorted."""
        return [cid for (cid,) in self._query("active", ())]

    def owned_with_work(self, owner_id: str) -> list[tuple[str, int, bool]]:
        """(conversation, epoch, marker) of every conversation whose current owner is
        `owner_id` and that has work (marked active, or a command pending): what that owner
        must be driving (WRK-1)."""
        if not _storable(owner_id):
            self._check_open()
            return []
        return [(cid, epoch, active) for cid, epoch, active in self._query("owned", (owner_id,))]

    def owners_of(self, conversation_ids: Sequence[str], owner_id: str) -> list[OwnerRecord]:
        """The current owners of those conversations that are not `owner_id`."""
        cids = [cid for cid in conversation_ids if _storable(cid)]
        if not cids:
            self._check_open()
            return []
        return [OwnerRecord(*row) for row in self._query("owners_of", (cids, owner_id))]

    def listener(self) -> Listener:
        """A new `Listener` of this journal's notifications (its own connection, asyncio)."""
        self._check_open()
        return Listener(
            self.dsn,
            channel(self.schema),
            self.connect_timeout,
            application_name=f"{self.application_name} listener",
        )

    # --- plumbing --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; later calls raise `JournalError`. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
