"""`inspect` and `replay` read: they report what they find in a journal and change nothing."""

from __future__ import annotations

from pathlib import Path

from interruptible import dumps
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime
from tests.journal.test_readonly import files
from tests.journal.test_sqlite import insert_row
from tests.runtime.support import arun, pipeline, run_cli, system_step

# An application's modes, importable as `SPEC`.
READ_MODES = [pipeline("app", [system_step("only", "double", x=2)])]
SPEC = f"{__name__}:READ_MODES"


def _finished_run(db: Path) -> int:
    """A journal holding one completed run of conversation `c`; its last sequence."""

    async def scenario() -> None:
        async with Runtime(db, modes=READ_MODES, functions={"double": lambda x: 2 * x}) as rt:
            handle = await rt.run("c", None, mode="app", run_id="r1")
            await handle.wait()

    arun(scenario())
    with SQLiteJournal(db) as journal:
        return journal.last_sequence("c")


def test_rt_21_inspect_and_replay_report_a_torn_record_and_change_nothing(tmp_path: Path) -> None:
    """RT-21 (JRN-17): on a journal whose last record is torn, `inspect`, `inspect --run` and
    `replay` each show what they could read, report the torn record in one line (exit 1, no
    traceback) and leave the file and its side files byte for byte as they were; the torn
    record is quarantined only when a runtime opens the journal to write."""
    db = tmp_path / "journal.db"
    last = _finished_run(db)
    with SQLiteJournal(db) as journal:
        body = dumps(next(r.event for r in journal.read("c")))
    insert_row(db, "c", last + 1, "run_requested", body, 0)  # a crc that does not match
    before = files(db)
    for command, shown in (
        (["inspect"], "run r1  completed"),
        (["inspect", "--run", "r1"], "effect_completed"),
        (["replay"], f"{last} events"),
    ):
        result = run_cli(*command, "--db", str(db), "--modes", SPEC)
        said = result.stdout + result.stderr
        assert result.returncode == 1, said
        assert "Traceback" not in said
        torn = [line for line in said.splitlines() if "is torn" in line]
        assert len(torn) == 1, said
        assert f"record {last + 1}" in torn[0] and "crc mismatch" in torn[0], torn
        assert shown in said  # what could be read is shown
        assert files(db) == before, f"`{command[0]}` changed the journal"
    with SQLiteJournal(db) as journal:
        assert [note.first_bad for note in journal.recovered] == [last + 1]


def test_rt_21_a_whole_journal_is_read_without_side_files_left_behind(tmp_path: Path) -> None:
    """RT-21: `inspect` and `replay` of a whole, closed journal exit 0 and leave it as it was,
    without the log and index files SQLite makes while a file is open."""
    db = tmp_path / "whole.db"
    _finished_run(db)
    before = files(db)
    assert before["-wal"] is None and before["-shm"] is None
    for command in (["inspect"], ["replay"]):
        result = run_cli(*command, "--db", str(db), "--modes", SPEC)
        assert result.returncode == 0, result.stdout + result.stderr
        assert files(db) == before


def test_rt_21_a_file_that_is_no_journal_is_one_line_and_left_alone(tmp_path: Path) -> None:
    """RT-21: `inspect` or `replay` of a file that is not a journal (not SQLite, or empty) says
    so in one line naming the file, without a traceback, and writes nothing into it."""
    for name, content in (("text.db", b"hello, not a database\n" * 10), ("empty.db", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        for command in ("inspect", "replay"):
            result = run_cli(command, "--db", str(path))
            assert result.returncode != 0
            assert "Traceback" not in result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and name in lines[0], result.stderr
            assert files(path) == {"": content, "-wal": None, "-shm": None, "-journal": None}
