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

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from .._errors import JournalError, StaleWriterError
from .._vocabulary import Event
from ._check import check_target, stale, stale_batches, stale_owner
from ._pg_connection import _REFUSED, _storable, _unstorable, psycopg
from ._pg_owners import PgOwners
from ._protocol import AppendBatch, JournalRecord
from ._records import RecoveryNote, Row, TornRecord, decode_page, encode_rows, find_tear

logger = logging.getLogger("interruptible.journal")

# Rows fetched per query by `read` (as in the SQLite journal): the query's cost vanishes against
# decoding, the lock is never held for long, memory stays flat.
_PAGE: Final = 1024

# (conversation_id, expected_last, events in the batch, the writer's owner epoch)
_Target = tuple[str, int, int, int | None]


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


class PostgresJournal(PgOwners):
    """A durable journal in a PostgreSQL database, shared by processes on any machine."""

    # (the connection, ownership and claims: `_pg_connection.py`, `_pg_owners.py`)

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
                    error = self._first_stale(conn, targets) or stale_batches()
                except psycopg.Error:
                    error = stale_batches()
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
