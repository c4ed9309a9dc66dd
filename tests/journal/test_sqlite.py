"""What only the SQLite journal promises: durability, its schema, and torn-record recovery."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from interruptible import JournalError, RunRequested, StaleWriterError, dumps
from interruptible._journal import (
    AppendBatch,
    Journal,
    JournalRecord,
    MemoryJournal,
    RecoveryNote,
    SQLiteJournal,
    open_journal,
    restore,
)
from interruptible._vocabulary import TYPE_NAMES

from ._workload import coordinator, drive_conversation, some_events


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to the journal file, as a foreign tool (or a bad disk) would."""
    return sqlite3.connect(path, isolation_level=None)


def insert_row(path: Path, cid: str, sequence: int, type_: str, body: str, crc: int) -> None:
    """Write one row straight into `events`, bypassing the journal's checks (a bad disk would)."""
    with raw(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS events_follow_last")  # back on the next open
        conn.execute("DROP TRIGGER IF EXISTS events_fenced_by_owner")  # this one too
        conn.execute(
            "INSERT INTO events (conversation_id, sequence, type, body, crc) "
            "VALUES (?, ?, ?, ?, ?)",
            (cid, sequence, type_, body, crc),
        )
    conn.close()


def crc(body: str) -> int:
    """The crc the journal stores for a body."""
    return zlib.crc32(body.encode())


# --- JRN-5: durability ---------------------------------------------------------------------------


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_jrn_5_reopening_the_file_restores_everything(db_path: Path, synchronous: str) -> None:
    """What was appended is there after close and reopen, and replays to the same states."""
    drivers = [drive_conversation(cid) for cid in ("alpha", "beta", "gamma")]
    with SQLiteJournal(db_path, synchronous=synchronous) as journal:  # type: ignore[arg-type]
        for driver in drivers:
            journal.append(driver.conversation_id, 0, driver.events[:5])
            journal.append(driver.conversation_id, 5, driver.events[5:])
    with SQLiteJournal(db_path) as reopened:
        assert reopened.recovered == []
        assert reopened.conversations() == ["alpha", "beta", "gamma"]
        for driver in drivers:
            assert [r.event for r in reopened.read(driver.conversation_id)] == driver.events
        assert restore(reopened, coordinator()) == {d.conversation_id: d.state for d in drivers}


def test_jrn_5_the_file_is_in_wal_mode(sqlite_journal: SQLiteJournal, db_path: Path) -> None:
    """The journal runs in WAL mode (readers never block the writer; one fsync per commit)."""
    sqlite_journal.append("c1", 0, some_events("c1", 1))
    conn = raw(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_jrn_5_synchronous_is_full_or_normal(db_path: Path) -> None:
    """Any other synchronous setting is a mistake, refused before the file is touched."""
    with pytest.raises(ValueError, match="FULL"):
        SQLiteJournal(db_path, synchronous="OFF")  # type: ignore[arg-type]
    assert not db_path.exists()


# --- JRN-3: the fence is the schema's ------------------------------------------------------------


def test_jrn_3_the_schema_refuses_a_foreign_row_out_of_sequence(db_path: Path) -> None:
    """A tool that bypasses the journal still cannot write a gap or a second row of a sequence."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 2))
    body = dumps(some_events("c1", 3)[2])
    conn = raw(db_path)
    for sequence in (4, 2, 1):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO events (conversation_id, sequence, type, body, crc) "
                "VALUES (?, ?, ?, ?, ?)",
                ("c1", sequence, "run_requested", body, crc(body)),
            )
    conn.close()
    with SQLiteJournal(db_path) as journal:
        assert journal.last_sequence("c1") == 2


def test_jrn_3_a_file_without_the_trigger_gets_it_when_opened(db_path: Path) -> None:
    """A journal written before the trigger existed is brought up to date on open."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 2))
    conn = raw(db_path)
    conn.execute("DROP TRIGGER events_follow_last")
    # The trigger's first form (it only checked that the predecessor exists) is replaced.
    conn.execute(
        "CREATE TRIGGER events_follow_predecessor BEFORE INSERT ON events WHEN 0 "
        "BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    conn.close()
    with SQLiteJournal(db_path) as journal:
        with pytest.raises(StaleWriterError):
            journal.append("c1", 5, some_events("c1", 1, start=5))
        assert journal.last_sequence("c1") == 2
    conn = raw(db_path)
    names = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
    }
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert "events_follow_last" in names and "events_follow_predecessor" not in names
    assert version == ("2",)


def open_a_gap(db_path: Path, first: int, last: int) -> None:
    """Delete records first..last as a bad disk would (below every trigger)."""
    conn = raw(db_path)
    for trigger in ("events_delete_only_quarantined", "events_follow_last"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DELETE FROM events WHERE sequence BETWEEN ? AND ?", (first, last))
    conn.close()


@pytest.mark.parametrize(("first", "last", "stale_at"), [(6, 6, 5), (1, 2, 0)])
def test_jrn_3_a_stale_writer_cannot_fill_a_gap_deep_in_a_damaged_history(
    db_path: Path, first: int, last: int, stale_at: int
) -> None:
    """A gap deeper than opening checks: an append after the gap's start is still stale."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 20))
    open_a_gap(db_path, first, last)
    with SQLiteJournal(db_path) as journal:  # the last 8 records are whole: nothing recovered
        assert journal.recovered == []
        with pytest.raises(StaleWriterError):
            journal.append("c1", stale_at, some_events("c1", 1, start=50))
        assert journal.last_sequence("c1") == 20
        assert [(n.first_bad, n.last_good) for n in journal.verify()] == [(last + 1, first - 1)]
        assert journal.append("c1", 20, some_events("c1", 1, start=20)) == 21


@pytest.mark.parametrize("rows", [1, 8])
def test_jrn_4_an_empty_stale_batch_refuses_a_small_append_many(db_path: Path, rows: int) -> None:
    """An empty batch is a fence probe: stale, it refuses the call even when the rest is small."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c2", 0, some_events("c2", 1))
        for probe in (AppendBatch("c2", 5, []), AppendBatch("c1", 7, [])):
            with pytest.raises(StaleWriterError):
                journal.append_many([AppendBatch("c1", 0, some_events("c1", rows)), probe])
            assert journal.last_sequence("c1") == 0 and journal.last_sequence("c2") == 1
        assert journal.append_many(
            [AppendBatch("c1", 0, some_events("c1", rows)), AppendBatch("c2", 1, [])]
        ) == [rows, 1]


@pytest.mark.parametrize("rows", [1, 15, 16, 40])
def test_jrn_3_a_stale_batch_writes_nothing_whatever_the_write_size(
    db_path: Path, rows: int
) -> None:
    """Small writes are one statement, large ones a transaction: a stale batch fails both whole."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c2", 0, some_events("c2", 1))
        batches = [
            AppendBatch("c1", 0, some_events("c1", rows)),
            AppendBatch("c2", 0, some_events("c2", 1, start=7)),  # c2 is at 1: stale
        ]
        with pytest.raises(StaleWriterError) as caught:
            journal.append_many(batches)
        assert caught.value.conversation_id == "c2"
        assert journal.last_sequence("c1") == 0 and journal.last_sequence("c2") == 1
        assert journal.append_many(batches[:1]) == [rows]
        assert [r.event for r in journal.read("c1")] == some_events("c1", rows)


# --- JRN-6: reading checks every record ----------------------------------------------------------


def test_jrn_6_read_raises_at_a_torn_record_in_the_middle(db_path: Path) -> None:
    """A damaged record deep in history: `read` yields the whole prefix, then raises."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 60))
    # Damage record 10, far beyond the tail that opening checks.
    body = dumps(some_events("c1", 60)[9])
    conn = raw(db_path)
    conn.execute("DROP TRIGGER events_append_only_update")  # a bad disk ignores triggers
    conn.execute("UPDATE events SET crc = ? WHERE sequence = 10", (crc(body) ^ 1,))
    conn.close()
    with SQLiteJournal(db_path) as journal:
        assert journal.recovered == []
        seen: list[JournalRecord] = []
        with pytest.raises(JournalError) as caught:
            seen.extend(journal.read("c1"))
        assert [r.sequence for r in seen] == list(range(1, 10))
        assert caught.value.reason == "torn_record" and "record 10" in caught.value.message
        assert [(n.first_bad, n.last_good) for n in journal.verify()] == [(10, 9)]
        # A full recovery quarantines the torn record and everything after it.
        notes = journal.recover(tail=None)
        assert [(n.conversation_id, n.last_good, n.quarantined) for n in notes] == [("c1", 9, 51)]
        assert [r.sequence for r in journal.read("c1")] == list(range(1, 10))


# --- JRN-7: schema version -----------------------------------------------------------------------


def test_jrn_7_a_new_file_records_its_schema_version(db_path: Path) -> None:
    """Creating a journal writes schema version 2 into `meta`."""
    SQLiteJournal(db_path).close()
    conn = raw(db_path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
    conn.close()


def test_jrn_7_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    """A file of a future schema version raises `JournalError` and is not changed."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 3))
    conn = raw(db_path)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(JournalError) as caught:
        SQLiteJournal(db_path)
    assert caught.value.reason == "schema_too_new"
    assert "upgrade interruptible" in caught.value.message
    conn = raw(db_path)
    assert conn.execute("SELECT value FROM meta").fetchall() == [("3",)]
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (3,)
    conn.close()


def test_jrn_7_a_foreign_database_is_refused(db_path: Path) -> None:
    """A SQLite file that interruptible did not create is refused, not adopted."""
    conn = raw(db_path)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(JournalError) as caught:
        SQLiteJournal(db_path)
    assert caught.value.reason == "not_a_journal"


def test_jrn_7_a_file_that_is_not_sqlite_is_refused(db_path: Path) -> None:
    """A file that is not a database at all is refused with `JournalError`."""
    db_path.write_text("not a database, just text " * 100)
    with pytest.raises(JournalError) as caught:
        SQLiteJournal(db_path)
    assert caught.value.reason == "not_a_journal"


# --- JRN-9: torn record recovery -----------------------------------------------------------------

TORN_TAILS: dict[str, Callable[[str], tuple[str, int]]] = {
    "truncated body": lambda body: (body[: len(body) // 2], crc(body[: len(body) // 2])),
    "bad crc": lambda body: (body, crc(body) ^ 0xFFFF),
    "empty body": lambda body: ("", 0),
}


@pytest.mark.parametrize("whole", [3, 40])  # 40: the checked tail starts mid-history
@pytest.mark.parametrize("damage", sorted(TORN_TAILS))
def test_jrn_9_a_torn_last_record_is_quarantined_and_appends_continue(
    db_path: Path, damage: str, whole: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening moves a torn last record to quarantine, says so, and appends go on from it."""
    events = some_events("c1", whole + 1)
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, events[:whole])
        journal.append("c2", 0, some_events("c2", 2))
    body, stored_crc = TORN_TAILS[damage](dumps(events[whole]))
    insert_row(db_path, "c1", whole + 1, "run_requested", body, stored_crc)

    with caplog.at_level(logging.WARNING, logger="interruptible.journal"):
        journal = SQLiteJournal(db_path)
    with journal:
        [note] = journal.recovered
        assert note == RecoveryNote("c1", whole, whole + 1, 1, note.problem) and note.problem
        assert f"torn at sequence {whole + 1}" in caplog.text
        assert journal.quarantined() == [("c1", whole + 1, note.problem)]
        assert journal.last_sequence("c1") == whole
        assert [r.event for r in journal.read("c1")] == events[:whole]
        assert journal.last_sequence("c2") == 2  # the other conversation is untouched
        assert journal.append("c1", whole, [events[whole]]) == whole + 1
        assert [r.event for r in journal.read("c1")] == events
    with SQLiteJournal(db_path) as reopened:
        assert reopened.recovered == []  # nothing torn any more


@pytest.mark.parametrize(
    ("cid", "sequence", "type_", "make_body", "problem"),
    [
        ("c1", 5, "resume_requested", lambda: dumps(some_events("c1", 3)[2]), "sequence gap"),
        ("c1", 4, "run_requested", lambda: dumps(some_events("c2", 1)[0]), "names conversation"),
        ("c1", 4, "interrupt_requested", lambda: dumps(some_events("c1", 1)[0]), "type column"),
        ("c1", 4, "run_requested", lambda: '{"type":"run_requested"}', "does not decode"),
        ("c1", 4, "run_requested", lambda: "[1, 2", "does not decode"),
    ],
)
def test_jrn_9_every_kind_of_tear_is_named(
    db_path: Path, cid: str, sequence: int, type_: str, make_body: object, problem: str
) -> None:
    """A gap, another conversation's event, a wrong type or an undecodable body is torn."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 3))
    body = make_body()  # type: ignore[operator]
    insert_row(db_path, cid, sequence, type_, body, crc(body))
    with SQLiteJournal(db_path) as journal:
        [note] = journal.recovered
        assert problem in note.problem
        assert (note.last_good, note.first_bad) == (3, sequence)
        assert journal.append("c1", 3, some_events("c1", 1, start=3)) == 4


def test_jrn_9_everything_after_a_torn_record_is_quarantined_too(db_path: Path) -> None:
    """Records after a torn one are not whole history; they go to quarantine with it."""
    events = some_events("c1", 6)
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, events[:2])
    insert_row(db_path, "c1", 3, "resume_requested", "{", crc("{"))
    for n in (4, 5):
        body = dumps(events[n - 1])
        insert_row(db_path, "c1", n, json.loads(body)["type"], body, crc(body))
    with SQLiteJournal(db_path) as journal:
        assert [(n.first_bad, n.last_good, n.quarantined) for n in journal.recovered] == [(3, 2, 3)]
        reasons = [reason for _, _, reason in journal.quarantined()]
        assert reasons[1:] == ["follows the torn record 3"] * 2
        assert journal.last_sequence("c1") == 2


def test_jrn_9_a_whole_journal_reports_nothing(db_path: Path) -> None:
    """Opening, verifying and recovering a whole journal changes nothing and says nothing."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 40))
    with SQLiteJournal(db_path) as journal:
        assert journal.recovered == []
        assert journal.verify() == []
        assert journal.recover(tail=None) == []
        assert journal.quarantined() == []
        assert journal.last_sequence("c1") == 40


def test_jrn_9_verify_reports_without_changing(db_path: Path) -> None:
    """`verify` names torn records but moves nothing; opening without a tail check keeps them."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 2))
    insert_row(db_path, "c1", 3, "run_requested", "{}", 0)
    with SQLiteJournal(db_path, check_tail=0) as journal:
        assert journal.recovered == []
        assert journal.verify() == [RecoveryNote("c1", 2, 3, 0, "crc mismatch (stored 0)")]
        assert journal.last_sequence("c1") == 3
        assert journal.quarantined() == []


# --- JRN-10: only encodable events ---------------------------------------------------------------


def test_jrn_10_an_unencodable_payload_is_refused(sqlite_journal: SQLiteJournal) -> None:
    """A payload that is not JSON (NaN, an object) is refused before anything is written."""
    for payload in (math.nan, object()):
        event = RunRequested("e1", "c1", "r1", "pipeline", {"x": payload})
        with pytest.raises(JournalError) as caught:
            sqlite_journal.append("c1", 0, [event])
        assert caught.value.reason == "unencodable_event"
    assert sqlite_journal.conversations() == []


# --- JRN-11: append-only -------------------------------------------------------------------------


def test_jrn_11_records_cannot_be_updated_or_deleted(
    sqlite_journal: SQLiteJournal, db_path: Path
) -> None:
    """The database itself refuses UPDATE and DELETE of records, and of quarantined ones."""
    sqlite_journal.append("c1", 0, some_events("c1", 2))
    conn = raw(db_path)
    for statement in (
        "UPDATE events SET body = '{}'",
        "DELETE FROM events",
        "UPDATE quarantine SET reason = ''",
        "DELETE FROM quarantine",
    ):
        conn.execute("INSERT INTO quarantine VALUES ('c9', 1, 't', 'b', 0, 'r', 0)")
        with pytest.raises(sqlite3.IntegrityError, match="interruptible journal"):
            conn.execute(statement)
    conn.close()
    assert [r.sequence for r in sqlite_journal.read("c1")] == [1, 2]


# --- open_journal --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["memory", ":memory:"])
def test_open_journal_maps_memory_specs(spec: str) -> None:
    """'memory' and ':memory:' open a `MemoryJournal`."""
    journal = open_journal(spec)
    assert isinstance(journal, MemoryJournal)


def test_open_journal_maps_paths_and_passes_journals(db_path: Path) -> None:
    """A path (str or Path) opens a `SQLiteJournal`; a journal is returned as it is."""
    for spec in (str(db_path), db_path):
        journal = open_journal(spec)
        assert isinstance(journal, SQLiteJournal) and journal.path == str(db_path)
        journal.close()
    given: Journal = MemoryJournal()
    assert open_journal(given) is given
    with pytest.raises(TypeError):
        open_journal(42)  # type: ignore[arg-type]


# --- OWN-3: version 1 files ---------------------------------------------------------------------


def test_own_3_a_version_1_file_is_migrated_and_its_rows_stay_unowned(db_path: Path) -> None:
    """A version 1 journal (no ownership) opens: it gains the ownership tables and version 2,
    its events read back unchanged, and the first claim fences its conversations."""
    conn = raw(db_path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE events (conversation_id TEXT NOT NULL, sequence INTEGER NOT NULL, "
        "type TEXT NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL, "
        "PRIMARY KEY (conversation_id, sequence)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE quarantine (conversation_id TEXT NOT NULL, sequence INTEGER NOT NULL, "
        "type TEXT, body, crc INTEGER, reason TEXT NOT NULL, quarantined_at REAL NOT NULL)"
    )
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    events = some_events("c1", 2)
    for sequence, event in enumerate(events, 1):
        body = dumps(event)
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            ("c1", sequence, TYPE_NAMES[type(event)], body, crc(body)),
        )
    conn.close()
    with SQLiteJournal(db_path) as journal:
        assert [r.event for r in journal.read("c1")] == events
        journal.register("h:1:a", "h", 1, 1e12)
        journal.claim("c1", "h:1:a", 0, reason="new", at=1.0)
        with pytest.raises(StaleWriterError):
            journal.append("c1", 2, some_events("c1", 1, start=2))
        assert journal.append("c1", 2, some_events("c1", 1, start=2), epoch=1) == 3
    conn = raw(db_path)
    assert conn.execute("SELECT value FROM meta").fetchall() == [("2",)]
    assert conn.execute("SELECT epoch FROM events ORDER BY sequence").fetchall() == [
        (None,),
        (None,),
        (1,),
    ]
    conn.close()
