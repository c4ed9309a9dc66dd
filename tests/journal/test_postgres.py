"""What only the PostgreSQL journal promises (spec/journal.md, "PostgreSQL"): its schema and
version, exact reading beside jsonb, the fences in the schema (against foreign writers and
across a claim), group commit as one transaction, reconnection, commands, damage, append-only.

Each test has a schema of its own (the `postgres_journal` fixture); a "foreign writer" is a
plain psycopg connection, as another tool would use.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from interruptible import (
    JournalError,
    RunRequested,
    StaleOwnerError,
    StaleWriterError,
    dumps,
)
from interruptible._journal import (
    AppendBatch,
    PostgresJournal,
    RecoveryNote,
    open_journal,
    restore,
)
from interruptible._journal._pg_schema import SCHEMA_VERSION, TABLES
from tests._postgres import POSTGRES

from ._workload import coordinator, drive_conversation, some_events


@pytest.fixture
def raw(postgres_journal: PostgresJournal) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection to the journal's database (autocommit), as a foreign tool would use."""
    with psycopg.connect(postgres_journal.dsn, autocommit=True) as conn:
        yield conn


def q(journal: PostgresJournal, table: str) -> str:
    """A table of the journal's schema, qualified."""
    return f'"{journal.schema}".{table}'


def insert_row(
    raw: psycopg.Connection[Any],
    journal: PostgresJournal,
    cid: str,
    sequence: int,
    type_: str,
    body: str,
    crc: int,
    epoch: int | None = None,
) -> None:
    """One row written straight into `events`, past the journal's code (not past its schema)."""
    raw.execute(
        f"INSERT INTO {q(journal, 'events')} (conversation_id, sequence, type, body_text, crc, "
        "epoch) VALUES (%s, %s, %s, %s, %s, %s)".encode(),
        (cid, sequence, type_, body, crc, epoch),
    )


def crc(body: str) -> int:
    return zlib.crc32(body.encode())


def backend_waits_on_a_lock(raw: psycopg.Connection[Any], journal: PostgresJournal) -> bool:
    """Whether the journal's connection is waiting for a lock (pg_stat_activity says so)."""
    conn = journal._conn
    assert conn is not None
    row = raw.execute(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (conn.info.backend_pid,)
    ).fetchone()
    return row is not None and row[0] == "Lock"


def until(predicate: Callable[[], bool]) -> None:
    """Poll `predicate` until it holds (a condition, not a timing assertion; 20 s at most)."""
    event = threading.Event()
    for _ in range(20_000):
        if predicate():
            return
        event.wait(0.001)
    raise AssertionError("condition not reached")


class Background:
    """A call run in a thread; `result()` joins it and returns or raises what it did."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.outcome: list[object] = []
        self.error: list[BaseException] = []

        def run() -> None:
            try:
                self.outcome.append(call())
            except BaseException as exc:
                self.error.append(exc)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def result(self) -> object:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error[0]
        return self.outcome[0]


# --- PGJ-1: the schema and its version --------------------------------------------------------


def test_pgj_1_a_new_schema_holds_the_tables_and_the_current_version(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """Opening creates every table in the journal's own namespace, with schema_version 2."""
    tables = {
        name
        for (name,) in raw.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (postgres_journal.schema,)
        )
    }
    assert tables == TABLES
    assert SCHEMA_VERSION == 2
    assert raw.execute(
        f"SELECT key, value FROM {q(postgres_journal, 'meta')}".encode()
    ).fetchall() == [("schema_version", "2")]
    # Opening it again (another process) finds it made and changes nothing.
    with POSTGRES.journal(postgres_journal.schema) as again:
        assert again.conversations() == []


def test_pgj_1_two_processes_creating_the_schema_at_once_both_open_it() -> None:
    """Eight journals opened at once on a new schema all succeed: one creates it (under the
    advisory lock), the others wait and find it made."""
    schema = POSTGRES.new_schema()
    POSTGRES.require()
    start = threading.Barrier(8)

    def open_one() -> PostgresJournal:
        start.wait()
        return POSTGRES.journal(schema)

    calls = [Background(open_one) for _ in range(8)]
    journals = [call.result() for call in calls]
    try:
        assert all(isinstance(journal, PostgresJournal) for journal in journals)
        first = journals[0]
        assert isinstance(first, PostgresJournal)
        first.append("c1", 0, some_events("c1", 1))
        assert [j.last_sequence("c1") for j in journals] == [1] * 8  # type: ignore[attr-defined]
    finally:
        for journal in journals:
            journal.close()  # type: ignore[attr-defined]
        POSTGRES.drop_schema(schema)


def test_pgj_1_a_newer_schema_is_refused_and_left_alone(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """A schema of a later version raises `schema_too_new` and is not touched."""
    postgres_journal.append("c1", 0, some_events("c1", 2))
    newer = str(SCHEMA_VERSION + 1)
    raw.execute(f"UPDATE {q(postgres_journal, 'meta')} SET value = %s".encode(), (newer,))
    with pytest.raises(JournalError) as caught:
        POSTGRES.journal(postgres_journal.schema)
    assert caught.value.reason == "schema_too_new"
    assert "upgrade interruptible" in caught.value.message
    assert raw.execute(f"SELECT value FROM {q(postgres_journal, 'meta')}".encode()).fetchone() == (
        newer,
    )
    assert postgres_journal.last_sequence("c1") == 2


def test_pgj_1_a_namespace_of_other_tables_is_not_a_journal(raw: psycopg.Connection[Any]) -> None:
    """A schema that holds an application's tables and no `meta` is refused, and not changed."""
    schema = POSTGRES.new_schema()
    try:
        raw.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".orders (id int)'.encode())
        with pytest.raises(JournalError) as caught:
            POSTGRES.journal(schema)
        assert caught.value.reason == "not_a_journal"
        tables = raw.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        assert tables == [("orders",)]
    finally:
        POSTGRES.drop_schema(schema)


def test_pgj_1_importing_interruptible_does_not_import_psycopg() -> None:
    """psycopg is optional: the package, its journal package and its runtime import without it."""
    code = (
        "import sys, interruptible, interruptible._journal, interruptible._runtime; "
        "assert 'psycopg' not in sys.modules, 'psycopg imported'; "
        "from interruptible._journal import PostgresJournal; "
        "assert 'psycopg' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pgj_1_open_journal_takes_a_postgresql_uri() -> None:
    """`open_journal("postgresql://...")` is a `PostgresJournal` in the schema `interruptible`."""
    params = conninfo_to_dict(POSTGRES.require())
    uri = f"postgresql://{params['user']}@{params['host']}:{params.get('port', 5432)}/"
    uri += str(params["dbname"])
    journal = open_journal(uri)
    try:
        assert isinstance(journal, PostgresJournal) and journal.schema == "interruptible"
        assert journal.append("c1", 0, some_events("c1", 1)) == 1
    finally:
        journal.close()
        POSTGRES.drop_schema("interruptible")


def test_pgj_1_the_session_runs_read_committed_with_the_asked_synchronous_commit() -> None:
    """The connection runs READ COMMITTED and the `synchronous_commit` it was given, whatever
    the server's defaults; an unknown setting is refused."""
    dsn = make_conninfo(POSTGRES.require(), options="-c default_transaction_isolation=serializable")
    schema = POSTGRES.new_schema()
    try:
        with PostgresJournal(dsn, schema=schema, synchronous_commit="off") as journal:
            conn = journal._conn
            assert conn is not None
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            assert conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)
        with pytest.raises(ValueError):
            PostgresJournal(dsn, schema=schema, synchronous_commit="maybe")  # type: ignore[arg-type]
    finally:
        POSTGRES.drop_schema(schema)


def test_pgj_1_no_server_is_a_journal_error_naming_it() -> None:
    """A server that does not answer is a `JournalError` (reason `connection_failed`)."""
    with pytest.raises(JournalError) as caught:
        PostgresJournal("host=127.0.0.1 port=1 user=nobody dbname=none", connect_timeout=1)
    assert caught.value.reason == "connection_failed"
    assert "check the DSN" in caught.value.message


# --- PGJ-2: exact reading beside jsonb -----------------------------------------------------


# Values jsonb would change or refuse, and the codec writes faithfully.
AWKWARD = {
    "negative zero": -0.0,
    "large float": 1e16,
    "tiny float": 5e-324,
    "big int": 2**70,
    "nul": "a\x00b",
    "nul key": {"\x00": 1},
    "emoji": "\U0001f600",
    "order": {"b": 1, "a": [1.0, 1, True, None]},
}


@pytest.mark.parametrize("name", sorted(AWKWARD))
def test_pgj_2_events_read_back_exactly_whatever_jsonb_makes_of_them(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any], name: str
) -> None:
    """An event holding a value jsonb would normalize (or refuse: a NUL character) reads back
    equal, field types included; `body` is the document where jsonb can hold it, NULL where it
    cannot."""
    value = AWKWARD[name]
    event = RunRequested("e1", "c1", "r1", "m", {"v": value}, at=2)
    postgres_journal.append("c1", 0, [event])
    [record] = postgres_journal.read("c1")
    assert record.event == event
    assert repr(record.event.input) == repr({"v": value})  # -0.0, 1e16 and 1 vs 1.0 too
    assert type(record.event.at) is float
    body, text = raw.execute(
        f"SELECT body, body_text FROM {q(postgres_journal, 'events')}".encode()
    ).fetchone() or (None, None)
    assert text == dumps(event)
    if name.startswith("nul"):
        assert body is None
    else:
        assert body == json.loads(text)


def test_pgj_2_the_document_is_queryable_and_derived_from_the_text(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """`body` answers jsonb queries, and a foreign writer cannot make it disagree with the text:
    the trigger derives it."""
    postgres_journal.append("c1", 0, some_events("c1", 3))
    kinds = raw.execute(
        f"SELECT body->>'type' FROM {q(postgres_journal, 'events')} ORDER BY sequence".encode()
    ).fetchall()
    assert [kind for (kind,) in kinds] == [
        json.loads(dumps(event))["type"] for event in some_events("c1", 3)
    ]
    body = dumps(some_events("c1", 4)[3])
    raw.execute(
        f"INSERT INTO {q(postgres_journal, 'events')} (conversation_id, sequence, type, body, "
        "body_text, crc) VALUES ('c1', 4, 'x', '{\"forged\": true}', %s, %s)".encode(),
        (body, crc(body)),
    )
    assert raw.execute(
        f"SELECT body = body_text::jsonb FROM {q(postgres_journal, 'events')} "
        "WHERE sequence = 4".encode()
    ).fetchone() == (True,)


# --- PGJ-3: the fences are the schema's --------------------------------------------------------


def test_pgj_3_a_foreign_row_out_of_sequence_or_of_a_stale_epoch_is_refused(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """A writer that bypasses the journal cannot leave a gap, repeat a sequence, or write under
    an epoch that is not the conversation's current one."""
    postgres_journal.append("c1", 0, some_events("c1", 2))
    body = dumps(some_events("c1", 3)[2])
    for sequence in (1, 2, 4, 9):
        with pytest.raises(pg_errors.IntegrityError):
            insert_row(raw, postgres_journal, "c1", sequence, "run_requested", body, crc(body))
    with pytest.raises(pg_errors.IntegrityError):  # never owned: only epoch NULL writes
        insert_row(raw, postgres_journal, "c1", 3, "run_requested", body, crc(body), epoch=1)
    postgres_journal.register("h:1:a", "h", 1, 1e12)
    postgres_journal.claim("c1", "h:1:a", 0, reason="new", at=1.0)
    with pytest.raises(pg_errors.IntegrityError):  # owned: NULL is stale now
        insert_row(raw, postgres_journal, "c1", 3, "run_requested", body, crc(body))
    insert_row(raw, postgres_journal, "c1", 3, "run_requested", body, crc(body), epoch=1)
    assert postgres_journal.last_sequence("c1") == 3


def test_pgj_3_an_append_waiting_on_a_claim_is_refused_when_the_claim_commits(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """OWN-3 across connections: an append that meets a claim in flight on its conversation
    waits for it, then reads the epoch the claim committed and is refused; nothing written."""
    journal = postgres_journal
    journal.register("h:1:a", "h", 1, 1e12)
    journal.register("h:2:b", "h", 2, 1e12)
    epoch = journal.claim("c1", "h:1:a", 0, reason="new", at=1.0).epoch
    journal.append("c1", 0, some_events("c1", 1), epoch=epoch)
    with raw.transaction():
        raw.execute(
            f"INSERT INTO {q(journal, 'owners')} (conversation_id, epoch, owner_id, "
            "previous_owner, reason, taken_at) VALUES ('c1', 2, 'h:2:b', 'h:1:a', 'x', 2)".encode()
        )
        late = Background(lambda: journal.append("c1", 1, some_events("c1", 1, 1), epoch=epoch))
        until(lambda: backend_waits_on_a_lock(raw, journal))
    with pytest.raises(StaleOwnerError):
        late.result()
    assert journal.last_sequence("c1") == 1
    assert journal.owner("c1").epoch == 2  # type: ignore[union-attr]


def test_pgj_3_a_claim_waits_for_the_append_in_flight(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """OWN-2 and OWN-3 the other way round: a claim that meets an append in flight waits until
    it commits, so the append lands under the old epoch, before the claim."""
    journal = postgres_journal
    journal.register("h:1:a", "h", 1, 1e12)
    journal.register("h:2:b", "h", 2, 1e12)
    journal.claim("c1", "h:1:a", 0, reason="new", at=1.0)
    body = dumps(some_events("c1", 1)[0])
    with raw.transaction():
        insert_row(raw, journal, "c1", 1, "run_requested", body, crc(body), epoch=1)
        taking = Background(lambda: journal.claim("c1", "h:2:b", 1, reason="lease_expired", at=2.0))
        until(lambda: backend_waits_on_a_lock(raw, journal))
    assert taking.result().epoch == 2  # type: ignore[attr-defined]
    rows = raw.execute(
        f"SELECT sequence, epoch FROM {q(journal, 'events')} WHERE conversation_id = 'c1'".encode()
    ).fetchall()
    assert rows == [(1, 1)]
    with pytest.raises(StaleOwnerError):
        journal.append("c1", 1, some_events("c1", 1, 1), epoch=1)


def test_pgj_3_a_repeatable_read_writer_that_missed_a_claim_fails_to_serialize(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """Under REPEATABLE READ, a foreign writer whose snapshot predates a claim cannot append
    under the old epoch: it fails to serialize (it never sees the claim, so it cannot check)."""
    journal = postgres_journal
    journal.register("h:1:a", "h", 1, 1e12)
    journal.register("h:2:b", "h", 2, 1e12)
    journal.claim("c1", "h:1:a", 0, reason="new", at=1.0)
    body = dumps(some_events("c1", 1)[0])
    raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    raw.execute(f"SELECT count(*) FROM {q(journal, 'conversations')}".encode())  # the snapshot
    journal.claim("c1", "h:2:b", 1, reason="lease_expired", at=2.0)
    with pytest.raises(pg_errors.SerializationFailure):
        insert_row(raw, journal, "c1", 1, "run_requested", body, crc(body), epoch=1)
    raw.execute("ROLLBACK")
    assert journal.last_sequence("c1") == 0


# --- PGJ-4: group commit is one transaction ----------------------------------------------------


def test_pgj_4_append_many_is_one_transaction_with_its_answers(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """Every row of an `append_many` (500 conversations) and every answer it carries are written
    by one transaction (one xmin), so they commit together or not at all."""
    journal = postgres_journal
    command = journal.submit("c000", some_events("c000", 1)[0], 1.0)
    batches = [AppendBatch(f"c{i:03d}", 0, some_events(f"c{i:03d}", 2)) for i in range(500)]
    batches[0] = AppendBatch("c000", 0, some_events("c000", 2), answers=[(command, "{}")])
    assert journal.append_many(batches) == [2] * 500
    xmins = raw.execute(
        f"SELECT DISTINCT xmin::text FROM {q(journal, 'events')} UNION "
        f"SELECT DISTINCT xmin::text FROM {q(journal, 'command_answers')}".encode()
    ).fetchall()
    assert len(xmins) == 1


# --- PGJ-5: a lost connection ---------------------------------------------------------------


TERMINATE = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.mark.parametrize("call", ["read", "append", "append_many", "claim", "submit"])
def test_pgj_5_a_cut_connection_fails_one_call_and_the_next_reconnects(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any], call: str
) -> None:
    """After the server ends the journal's connection, the next call raises `JournalError`
    (reason `connection_lost`) and writes nothing; the call after it connects again and works."""
    journal = postgres_journal
    journal.register("h:1:a", "h", 1, 1e12)
    journal.append("c1", 0, some_events("c1", 1))
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: [r.sequence for r in journal.read("c1")],
        "append": lambda: journal.append("c1", 1, some_events("c1", 1, 1)),
        "append_many": lambda: journal.append_many(
            [AppendBatch("c1", 1, some_events("c1", 1, 1)), AppendBatch("c2", 0, [])]
        ),
        "claim": lambda: journal.claim("c2", "h:1:a", 0, reason="new", at=1.0).epoch,
        "submit": lambda: journal.submit("c1", some_events("c1", 1)[0], 1.0),
    }
    assert raw.execute(TERMINATE).fetchall() == [(True,)]
    with pytest.raises(JournalError) as caught:
        calls[call]()
    assert caught.value.reason == "connection_lost"
    assert journal.last_sequence("c1") == 1 and journal.pending_commands() == []
    assert calls[call]() in ([1], 2, [2, 0], 1)
    raw.execute(TERMINATE)
    journal.close()  # closing a journal whose connection was cut is quiet


# --- PGJ-6: commands ---------------------------------------------------------------------------


def test_pgj_6_command_ids_commit_in_order_and_move_the_change_token(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any]
) -> None:
    """Command ids are 1, 2, 3, ... in commit order; a rolled back submission leaves no gap and
    does not move the token; another connection's submission does."""
    journal = postgres_journal
    with POSTGRES.journal(journal.schema) as sender:
        token = journal.change_token()
        assert token == journal.last_command_id() == 0
        assert sender.submit("c1", some_events("c1", 1)[0], 1.0) == 1
        assert journal.change_token() != token
        raw.execute("BEGIN")
        raw.execute(f"UPDATE {q(journal, 'command_counter')} SET last = last + 1".encode())
        # A submission in flight holds the counter: the next one waits, and gets its id after.
        waiting = Background(lambda: sender.submit("c1", some_events("c1", 2)[1], 2.0))
        until(lambda: backend_waits_on_a_lock(raw, sender))
        assert journal.change_token() == 1
        raw.execute("ROLLBACK")
        assert waiting.result() == 2
        assert [c.command_id for c in journal.pending_commands()] == [1, 2]
        assert journal.change_token() == journal.last_command_id() == 2


# --- PGJ-7: damage found by reading -------------------------------------------------------------


def test_pgj_7_a_damaged_row_is_refused_by_read_and_quarantined_by_recover(
    postgres_journal: PostgresJournal,
    raw: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A row that passes the fences but is not whole (a bad crc, a body that is not an event):
    `read` yields what precedes it and raises `torn_record`; opening checks nothing; `verify`
    names it; `recover` moves it (and what follows) to quarantine and appends go on."""
    journal = postgres_journal
    events = some_events("c1", 4)
    journal.append("c1", 0, events[:2])
    body = dumps(events[2])
    insert_row(raw, journal, "c1", 3, "run_requested", body, crc(body) ^ 1)
    other = '{"type":"run_requested"}'
    insert_row(raw, journal, "c1", 4, "run_requested", other, crc(other))
    with pytest.raises(JournalError) as caught:
        list(journal.read("c1"))
    assert caught.value.reason == "torn_record"
    seen: list[int] = []
    with pytest.raises(JournalError):
        for record in journal.read("c1"):
            seen.append(record.sequence)
    assert seen == [1, 2]
    with POSTGRES.journal(journal.schema) as reopened:
        assert reopened.recovered == []  # no torn tail to mend on open
    [note] = journal.verify()
    assert (note.last_good, note.first_bad, note.quarantined) == (2, 3, 0)
    with caplog.at_level(logging.WARNING, logger="interruptible.journal"):
        [moved] = journal.recover(tail=None)
    assert moved == RecoveryNote("c1", 2, 3, 2, note.problem)
    assert "torn at sequence 3" in caplog.text
    assert journal.quarantined() == [
        ("c1", 3, note.problem),
        ("c1", 4, "follows the torn record 3"),
    ]
    assert journal.append("c1", 2, events[2:]) == 4
    assert [r.event for r in journal.read("c1")] == events
    assert journal.verify(tail=None) == []


@pytest.mark.parametrize("depth", [256, 985, 5_000])
def test_pgj_7_jrn_15_a_foreign_record_too_deep_stops_read_and_is_quarantined_alone(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any], depth: int
) -> None:
    """A row a foreign tool wrote with a body nested deeper than the codec decodes is torn:
    `read` stops at it with `JournalError` (never a `RecursionError`), `recover` quarantines it,
    and the other conversations read and restore as before. (jsonb may refuse the document
    first: then the foreign INSERT fails, and nothing is written.)"""
    journal = postgres_journal
    journal.append("c1", 0, some_events("c1", 2))
    journal.append("c2", 0, some_events("c2", 2))
    template = dumps(RunRequested("e9", "c1", "r9", "pipeline", "HOLE", "alice"))
    body = template.replace('"HOLE"', "[" * depth + "]" * depth)
    try:
        insert_row(raw, journal, "c1", 3, "run_requested", body, crc(body))
    except psycopg.Error:
        assert journal.last_sequence("c1") == 2  # refused at the door: nothing written
        return
    with pytest.raises(JournalError) as caught:
        list(journal.read("c1"))
    assert caught.value.reason == "torn_record"
    [note] = journal.recover(tail=None)
    assert (note.conversation_id, note.first_bad, note.quarantined) == ("c1", 3, 1)
    assert set(restore(journal, coordinator())) == {"c1", "c2"}
    assert journal.append("c1", 2, some_events("c1", 1, 2)) == 3


# --- PGJ-8: append-only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {s}.events SET type = 'x'",
        "DELETE FROM {s}.events",
        "TRUNCATE {s}.events",
        "UPDATE {s}.owners SET reason = 'x'",
        "DELETE FROM {s}.owners",
        "TRUNCATE {s}.owners CASCADE",
        "UPDATE {s}.conversations SET epoch = 7",
        "DELETE FROM {s}.conversations",
        "UPDATE {s}.quarantine SET reason = 'x'",
        "DELETE FROM {s}.quarantine",
    ],
)
def test_pgj_8_records_and_owners_cannot_be_changed_or_removed(
    postgres_journal: PostgresJournal, raw: psycopg.Connection[Any], statement: str
) -> None:
    """JRN-11 in PostgreSQL: triggers refuse every change to the log, the owner history, the
    quarantine and a conversation's epoch, whoever sends it; the one delete is recovery's."""
    journal = postgres_journal
    journal.register("h:1:a", "h", 1, 1e12)
    epoch = journal.claim("c1", "h:1:a", 0, reason="new", at=1.0).epoch
    journal.append("c1", 0, some_events("c1", 2), epoch=epoch)
    body = "{}"
    insert_row(raw, journal, "c1", 3, "run_requested", body, crc(body), epoch=epoch)
    journal.recover(tail=None)  # one row in quarantine
    with pytest.raises(pg_errors.IntegrityError):
        raw.execute(statement.replace("{s}", f'"{journal.schema}"').encode())
    assert journal.last_sequence("c1") == 2
    assert journal.owner("c1").epoch == 1  # type: ignore[union-attr]
    assert len(journal.quarantined()) == 1


# --- PGJ-9: text PostgreSQL cannot hold ---------------------------------------------------------


@pytest.mark.parametrize("cid", ["a\x00b", "\ud800"])
def test_pgj_9_a_conversation_id_postgresql_cannot_store_is_refused(
    postgres_journal: PostgresJournal, cid: str
) -> None:
    """JRN-10: an id with a NUL or an unpaired surrogate is refused (`bad_conversation_id`), not
    mistaken for a stale write; reading it finds nothing."""
    journal = postgres_journal
    event = RunRequested("e1", cid, "r1", "m")
    for call in (
        lambda: journal.append(cid, 0, [event]),
        lambda: journal.append_many([AppendBatch(cid, 0, [event])]),
        lambda: journal.submit(cid, event, 1.0),
        lambda: journal.claim(cid, "h:1:a", 0, reason="new", at=1.0),
    ):
        with pytest.raises(JournalError) as caught:
            call()
        assert not isinstance(caught.value, StaleWriterError)
        assert caught.value.reason == "bad_conversation_id"
    assert list(journal.read(cid)) == [] and journal.last_sequence(cid) == 0
    assert journal.owner(cid) is None and journal.ownership_history(cid) == []
    assert journal.conversations() == []


# --- replay on PostgreSQL ----------------------------------------------------------------------


def test_jrn_12_a_reopened_postgres_journal_restores_every_conversation(
    postgres_journal: PostgresJournal,
) -> None:
    """What was appended through one connection replays to the live states through another."""
    drivers = [drive_conversation(cid) for cid in ("alpha", "beta", "gamma")]
    postgres_journal.append_many([AppendBatch(d.conversation_id, 0, d.events) for d in drivers])
    with POSTGRES.journal(postgres_journal.schema) as reopened:
        assert restore(reopened, coordinator()) == {d.conversation_id: d.state for d in drivers}
