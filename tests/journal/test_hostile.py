"""One bad record never locks a journal: deep and undecodable records (JRN-15, JRN-16)."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interruptible import JournalError, RunRequested, dumps
from interruptible._journal import Journal, MemoryJournal, SQLiteJournal, restore
from interruptible._limits import MAX_DOCUMENT_DEPTH

from ._workload import coordinator, some_events


def nested(depth: int, leaf: Any = None) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_body(conversation_id: str, depth: int) -> str:
    """The body of a run request whose input is `depth` lists deep (written as text: the
    encoder would refuse it), as a foreign tool would write it."""
    template = dumps(RunRequested("e9", conversation_id, "r9", "pipeline", "HOLE", "alice"))
    return template.replace('"HOLE"', "[" * depth + "]" * depth)


def insert_raw(path: Path, cid: str, sequence: int, type_: object, body: object, crc: int) -> None:
    """One row written straight into `events` by a foreign tool: `body` and `type_` are given as
    SQL text, their bytes as they are (SQLite does not check that TEXT is UTF-8)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS events_follow_last")  # back on the next open
    conn.execute("DROP TRIGGER IF EXISTS events_fenced_by_owner")  # this one too
    conn.execute(
        "INSERT INTO events (conversation_id, sequence, type, body, crc) "
        "VALUES (?, ?, CAST(? AS TEXT), CAST(? AS TEXT), ?)",
        (cid, sequence, type_, body, crc),
    )
    conn.close()


def typeof_body(path: Path, cid: str, sequence: int) -> str:
    conn = sqlite3.connect(path)
    (kind,) = conn.execute(
        "SELECT typeof(body) FROM quarantine WHERE conversation_id = ? AND sequence = ?",
        (cid, sequence),
    ).fetchone()
    conn.close()
    return str(kind)


def two_conversations(path: Path, whole: int) -> None:
    with SQLiteJournal(path) as journal:
        journal.append("c1", 0, some_events("c1", whole))
        journal.append("c2", 0, some_events("c2", 2))


# --- JRN-15: depth --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH, 985, 5_000])
def test_jrn_15_a_foreign_record_too_deep_is_quarantined_alone(db_path: Path, depth: int) -> None:
    """A crc-valid record nested deeper than the codec decodes, written by another tool, is
    torn like a bad crc: opening quarantines it (and nothing of another conversation), and
    the conversation goes on from its last whole event; never a RecursionError."""
    two_conversations(db_path, 3)
    body = deep_body("c1", depth)
    insert_raw(db_path, "c1", 4, "run_requested", body, zlib.crc32(body.encode()))
    with SQLiteJournal(db_path) as journal:
        [note] = journal.recovered
        assert (note.conversation_id, note.last_good, note.first_bad) == ("c1", 3, 4)
        assert "deep" in note.problem and len(note.problem) < 400
        assert [r.event for r in journal.read("c1")] == some_events("c1", 3)
        assert [r.event for r in journal.read("c2")] == some_events("c2", 2)
        assert set(restore(journal, coordinator())) == {"c1", "c2"}
        assert journal.append("c1", 3, some_events("c1", 1, start=3)) == 4


def test_jrn_15_a_deep_record_beyond_the_checked_tail_stops_read_with_journal_error(
    db_path: Path,
) -> None:
    """Deep in history, beyond what opening checks, `read` yields the whole prefix and raises
    `JournalError` (torn_record) at the deep record; `recover(tail=None)` quarantines it."""
    two_conversations(db_path, 3)
    body = deep_body("c1", 5_000)
    insert_raw(db_path, "c1", 4, "run_requested", body, zlib.crc32(body.encode()))
    with SQLiteJournal(db_path, check_tail=0) as journal:
        journal.append("c1", 4, some_events("c1", 20, start=4))
    with SQLiteJournal(db_path) as journal:
        assert journal.recovered == []
        seen = []
        with pytest.raises(JournalError) as caught:
            seen.extend(journal.read("c1"))
        assert caught.value.reason == "torn_record" and [r.sequence for r in seen] == [1, 2, 3]
        [note] = journal.recover(tail=None)
        assert (note.first_bad, note.quarantined) == (4, 21)
        assert journal.last_sequence("c1") == 3


# --- JRN-16: text that is not UTF-8 ---------------------------------------------------------------


BAD_TEXT: dict[str, Callable[[bytes], tuple[object, object, int]]] = {
    # (type, body, crc) of the row, from the body's bytes.
    "body not UTF-8, crc of its bytes": lambda good: (
        "run_requested",
        good[:-2] + b"\xff\xfe}",
        zlib.crc32(good[:-2] + b"\xff\xfe}"),
    ),
    "body not UTF-8, bad crc": lambda good: ("run_requested", good[:5] + b"\xc3\x28" + good[5:], 7),
    "type not UTF-8": lambda good: (b"run_\xffrequested", good, zlib.crc32(good)),
}


@pytest.mark.parametrize("damage", sorted(BAD_TEXT))
def test_jrn_16_a_text_column_that_is_not_utf8_is_quarantined_alone(
    db_path: Path, damage: str
) -> None:
    """A row whose TEXT body (or type) holds bytes that are not UTF-8, written by another tool,
    is a torn record: opening quarantines that row with its bytes (as it would the same bytes
    as a BLOB) and every other conversation opens, reads and restores as before."""
    two_conversations(db_path, 3)
    good = dumps(some_events("c1", 4)[3]).encode()
    type_, body, crc = BAD_TEXT[damage](good)
    insert_raw(db_path, "c1", 4, type_, body, crc)
    with SQLiteJournal(db_path) as journal:
        [note] = journal.recovered
        assert (note.conversation_id, note.last_good, note.first_bad) == ("c1", 3, 4)
        assert len(note.problem) < 400
        assert [r.event for r in journal.read("c1")] == some_events("c1", 3)
        assert [r.event for r in journal.read("c2")] == some_events("c2", 2)
        assert set(restore(journal, coordinator())) == {"c1", "c2"}
        assert journal.quarantined()[0][:2] == ("c1", 4)
    assert typeof_body(db_path, "c1", 4) == "text"  # kept as it was found


def test_jrn_16_a_body_not_utf8_deep_in_history_stops_read_with_journal_error(
    db_path: Path,
) -> None:
    """Beyond the checked tail, `read` and `verify` report the row as torn (not an SQLite error
    for the whole file), and `recover(tail=None)` quarantines it."""
    two_conversations(db_path, 3)
    body = b'{"type":"run_requested",\xff}'
    insert_raw(db_path, "c1", 4, "run_requested", body, zlib.crc32(body))
    with SQLiteJournal(db_path, check_tail=0) as journal:
        journal.append("c1", 4, some_events("c1", 20, start=4))
    with SQLiteJournal(db_path) as journal:
        seen = []
        with pytest.raises(JournalError) as caught:
            seen.extend(journal.read("c1"))
        assert caught.value.reason == "torn_record" and [r.sequence for r in seen] == [1, 2, 3]
        assert [(n.first_bad, n.last_good) for n in journal.verify(tail=None)] == [(4, 3)]
        assert journal.recover(tail=None)[0].quarantined == 21
        assert [r.sequence for r in journal.read("c1")] == [1, 2, 3]


# --- JRN-15 for every journal: refused at append ------------------------------------------------


def _journals(tmp_path: Path) -> dict[str, Journal]:
    return {"memory": MemoryJournal(), "sqlite": SQLiteJournal(tmp_path / "j.db")}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("depth", [MAX_DOCUMENT_DEPTH, 600, 985, 5_000])
def test_jrn_15_an_event_too_deep_is_refused_at_append(
    tmp_path: Path, kind: str, depth: int
) -> None:
    """Every journal refuses an event whose document would be deeper than the codec decodes
    (its payload `MAX_DOCUMENT_DEPTH` deep or more) with `JournalError` (reason `too_deep`) and
    writes nothing of the call; the fence is where it was."""
    journal = _journals(tmp_path)[kind]
    with journal:  # type: ignore[attr-defined]
        journal.append("c1", 0, some_events("c1", 1))
        deep = RunRequested("e9", "c1", "r9", "pipeline", nested(depth), "alice")
        with pytest.raises(JournalError) as caught:
            journal.append("c1", 1, [*some_events("c1", 1, start=1), deep])
        assert caught.value.reason == "too_deep"
        assert journal.last_sequence("c1") == 1
        assert journal.append("c1", 1, some_events("c1", 1, start=1)) == 2


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_jrn_15_an_event_at_the_depth_limit_is_held_and_read_back(
    tmp_path: Path, kind: str
) -> None:
    """An event whose document is exactly as deep as the codec decodes is held and read back
    equal (JRN-2), also through a reopened SQLite file."""
    journal = _journals(tmp_path)[kind]
    event = RunRequested("e9", "c1", "r9", "pipeline", nested(MAX_DOCUMENT_DEPTH - 1), "alice")
    assert json.loads(dumps(event))["input"] == event.input
    with journal:  # type: ignore[attr-defined]
        journal.append("c1", 0, [event])
        assert [r.event for r in journal.read("c1")] == [event]
    if kind == "sqlite":
        with SQLiteJournal(tmp_path / "j.db") as reopened:
            assert reopened.recovered == []
            assert [r.event for r in reopened.read("c1")] == [event]


def test_jrn_10_sqlite_refuses_a_payload_key_that_would_read_back_as_text(tmp_path: Path) -> None:
    """An object key that is not a string would come back as a string (JRN-2 broken): SQLite
    refuses the event (`unencodable_event`), writing nothing; the memory journal, which keeps
    the object, holds it and reads it back equal."""
    event = RunRequested("e9", "c1", "r9", "pipeline", {"n": {1: "one"}}, "alice")
    journals = _journals(tmp_path)
    with journals["sqlite"] as sqlite_journal:  # type: ignore[attr-defined]
        with pytest.raises(JournalError) as caught:
            sqlite_journal.append("c1", 0, [event])
        assert caught.value.reason == "unencodable_event" and "not a string" in caught.value.message
        assert sqlite_journal.conversations() == []
    with journals["memory"] as memory_journal:  # type: ignore[attr-defined]
        memory_journal.append("c1", 0, [event])
        assert [r.event for r in memory_journal.read("c1")] == [event]


@pytest.mark.parametrize("text", ["\ud800\udc00", "\udcff"])
def test_jrn_16_sqlite_refuses_a_string_that_is_not_unicode_text(tmp_path: Path, text: str) -> None:
    """A string holding a surrogate code point would not read back equal (a reader joins a
    high and a low one): SQLite refuses the event (`unencodable_event`), in a payload and in
    an id, writing nothing; the memory journal keeps the object and reads it back equal."""
    events = [
        RunRequested("e9", "c1", "r9", "pipeline", {"name": text}, "alice"),
        RunRequested("e9", "c1", f"r{text}", "pipeline", None, "alice"),
    ]
    journals = _journals(tmp_path)
    with journals["sqlite"] as sqlite_journal:  # type: ignore[attr-defined]
        for event in events:
            with pytest.raises(JournalError) as caught:
                sqlite_journal.append("c1", 0, [event])
            assert caught.value.reason == "unencodable_event"
        assert sqlite_journal.conversations() == []
    with journals["memory"] as memory_journal:  # type: ignore[attr-defined]
        memory_journal.append("c1", 0, events)
        assert [r.event for r in memory_journal.read("c1")] == events


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_jrn_16_a_conversation_id_that_is_not_unicode_text_is_refused(
    tmp_path: Path, kind: str
) -> None:
    """Every journal refuses a conversation id with a lone surrogate (`bad_conversation_id`);
    reading one finds nothing."""
    journal = _journals(tmp_path)[kind]
    with journal:  # type: ignore[attr-defined]
        event = RunRequested("e9", "c\ud800", "r9", "pipeline", None, "alice")
        with pytest.raises(JournalError) as caught:
            journal.append("c\ud800", 0, [event])
        assert caught.value.reason == "bad_conversation_id"
        assert list(journal.read("c\ud800")) == [] and journal.last_sequence("c\ud800") == 0
        assert journal.conversations() == []


def test_jrn_15_commands_and_the_runtime_meet_a_deep_record_with_journal_error(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A foreign deep record beyond the checked tail: `inspect` and `replay` say so in one line
    (exit 1, no traceback), a runtime opened on the file raises `JournalError` (never a
    `RecursionError`); after `recover(tail=None)` all three work again."""
    from interruptible._cli import main
    from interruptible._runtime import Runtime
    from tests.runtime.support import arun

    two_conversations(db_path, 3)
    body = deep_body("c1", 5_000)
    insert_raw(db_path, "c1", 4, "run_requested", body, zlib.crc32(body.encode()))
    with SQLiteJournal(db_path, check_tail=0) as journal:
        journal.append("c1", 4, some_events("c1", 20, start=4))

    async def open_runtime() -> list[str]:
        async with Runtime(db_path, modes=[]) as rt:
            return rt.conversations()

    for command in ("inspect", "replay"):
        assert main([command, "--db", str(db_path)]) == 1
        captured = capsys.readouterr()
        said = (captured.out + captured.err).splitlines()
        lines = [line for line in said if "record 4 is torn" in line]
        assert "Traceback" not in captured.out + captured.err
        assert len(lines) == 1 and "conversation 'c1': record 4 is torn" in lines[0], captured
    with pytest.raises(JournalError) as caught:
        arun(open_runtime())
    assert caught.value.reason == "torn_record"
    with SQLiteJournal(db_path) as journal:
        journal.recover(tail=None)
    assert main(["inspect", "--db", str(db_path)]) == 0
    assert sorted(arun(open_runtime())) == ["c1", "c2"]
