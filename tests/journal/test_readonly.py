"""A read-only SQLite journal: it reads what is there, reports what is wrong, changes nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from interruptible import JournalError, dumps
from interruptible._journal import RecoveryNote, SQLiteJournal
from interruptible._journal._sqlite import READONLY_BUSY_TIMEOUT

from ._workload import some_events
from .test_sqlite import insert_row, raw

SUFFIXES = ("", "-wal", "-shm", "-journal")


def files(path: Path) -> dict[str, bytes | None]:
    """The bytes of the journal file and of each of SQLite's side files (None: absent)."""
    found: dict[str, bytes | None] = {}
    for suffix in SUFFIXES:
        side = Path(f"{path}{suffix}")
        found[suffix] = side.read_bytes() if side.exists() else None
    return found


def torn_journal(path: Path) -> None:
    """A journal of two conversations whose first ends in a record with a bad crc."""
    with SQLiteJournal(path) as journal:
        journal.append("c1", 0, some_events("c1", 3))
        journal.append("c2", 0, some_events("c2", 2))
    insert_row(path, "c1", 4, "run_requested", dumps(some_events("c1", 4)[3]), 0)


def test_jrn_17_a_readonly_journal_reads_a_torn_file_and_changes_nothing(db_path: Path) -> None:
    """JRN-17: opened read-only, a journal with a torn last record is not recovered (nothing is
    quarantined, `recovered` is empty); `read` yields the whole records and then refuses the
    torn one (JRN-6), `verify` names it, and writes are refused with `JournalError`
    (`journal_readonly`); the file and its side files are byte for byte as they were."""
    torn_journal(db_path)
    before = files(db_path)
    with SQLiteJournal(db_path, readonly=True) as journal:
        assert journal.readonly and journal.recovered == []
        assert journal.conversations() == ["c1", "c2"]
        assert journal.last_sequence("c1") == 4
        seen = []
        with pytest.raises(JournalError) as info:
            for record in journal.read("c1"):
                seen.append(record.sequence)
        assert seen == [1, 2, 3] and info.value.reason == "torn_record"
        assert [r.sequence for r in journal.read("c2")] == [1, 2]
        assert journal.verify() == [RecoveryNote("c1", 3, 4, 0, "crc mismatch (stored 0)")]
        assert journal.quarantined() == []
        for write in (
            lambda: journal.append("c2", 2, some_events("c2", 1, start=2)),
            lambda: journal.append_many([]),
            lambda: journal.recover(tail=None),
        ):
            with pytest.raises(JournalError) as refused:
                write()
            assert refused.value.reason == "journal_readonly"
    assert files(db_path) == before


def test_jrn_17_a_missing_or_empty_file_is_refused_and_not_created(tmp_path: Path) -> None:
    """JRN-17: a path with no file is a one-line `JournalError` and no file appears; an empty
    file gets no schema (`not_a_journal`) and stays empty, with no side files."""
    missing = tmp_path / "missing.db"
    with pytest.raises(JournalError) as info:
        SQLiteJournal(missing, readonly=True)
    assert info.value.reason == "journal_not_found"
    assert "\n" not in info.value.message and str(missing) in info.value.message
    assert files(missing) == dict.fromkeys(SUFFIXES)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(JournalError) as info:
        SQLiteJournal(empty, readonly=True)
    assert info.value.reason == "not_a_journal"
    assert files(empty) == {"": b"", "-wal": None, "-shm": None, "-journal": None}


def test_jrn_17_a_rollback_journal_file_is_not_switched_to_wal(db_path: Path) -> None:
    """JRN-17: a journal file in SQLite's rollback mode is read as it is; opening it read-only
    does not switch it to WAL (the header says WAL with 2 at offsets 18 and 19)."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 2))
    conn = raw(db_path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    before = files(db_path)
    assert before[""] is not None and before[""][18:20] == b"\x01\x01"
    with SQLiteJournal(db_path, readonly=True) as journal:
        assert [r.sequence for r in journal.read("c1")] == [1, 2]
    assert files(db_path) == before


def test_jrn_17_a_crashed_writers_log_is_read_and_left_alone(db_path: Path) -> None:
    """JRN-17: events that a killed writer left in the WAL (not yet checkpointed) are read, and
    the file and its log stay as the writer left them (no checkpoint, no log removed): the
    next runtime to open the journal is the one that checkpoints and recovers."""
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 2))
    child = (
        "import os, sys\n"
        "from interruptible._journal import SQLiteJournal\n"
        "from tests.journal._workload import some_events\n"
        "journal = SQLiteJournal(sys.argv[1])\n"
        "journal.append('c1', 2, some_events('c1', 3)[2:])\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", child, str(db_path)], check=True, env=env)
    before = files(db_path)
    assert before["-wal"], "the killed writer left its log"
    with SQLiteJournal(db_path, readonly=True) as journal:
        assert [r.sequence for r in journal.read("c1")] == [1, 2, 3]
    after = files(db_path)
    assert (after[""], after["-wal"]) == (before[""], before["-wal"])
    assert {k for k, v in after.items() if v is None} == {k for k, v in before.items() if v is None}


def test_jrn_17_a_locked_file_is_reported_not_waited_on(db_path: Path) -> None:
    """JRN-17: while another connection holds the file exclusively, a read-only open gives up
    after its busy timeout (a few seconds by default, not the writers' 30 s) with a
    `JournalError` (`journal_locked`) that says so and what to do."""
    assert READONLY_BUSY_TIMEOUT <= 5
    with SQLiteJournal(db_path) as journal:
        journal.append("c1", 0, some_events("c1", 1))
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(JournalError) as info:
            SQLiteJournal(db_path, readonly=True, busy_timeout=0.05)
        assert info.value.reason == "journal_locked"
        assert "locked" in info.value.message and "\n" not in info.value.message
    finally:
        holder.close()
