"""The command line as a person meets it (spec/cli.md): one line per error and never a
traceback, documented exit statuses, nothing written where a read was asked or into a file that
is not a journal, printed commands that run as printed, Ctrl-C twice and a closed output, the
editor's "no", and old runs in `inspect --run`."""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from interruptible import Coordinator, initial_state
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime
from tests.journal.test_readonly import files
from tests.runtime.support import arun, pipeline, system_step
from tests.runtime.test_control import read_until, rest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "interruptible"  # the console script pip installed


def _path_without_this_program() -> str:
    """PATH with every directory that holds an `interruptible` removed: the program is then
    reachable only by its path, as `.venv/bin/interruptible` is before the venv is activated."""
    keep = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "interruptible").exists()
    ]
    return os.pathsep.join(keep)


ENV = {
    **os.environ,
    "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",
    "PATH": _path_without_this_program(),
    "INTERRUPTIBLE_DEMO_SPEED": "8",
}


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interruptible", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**ENV, **env},
        timeout=60,
    )


def start(cwd: Path, *argv: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **env},
    )


def one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """The one line a failing command printed on stderr (besides `check`'s progress lines); it
    names each of `names`."""
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    lines = [line for line in result.stderr.splitlines() if not line.startswith("explored ")]
    assert len(lines) == 1, said
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# An application's modes, importable as `SPEC`.
APP_MODES = [pipeline("app", [system_step("only", "double", x=2)])]
SPEC = f"{__name__}:APP_MODES"


def _journal_with_runs(db: Path, runs: int) -> None:
    """A journal whose conversation `c` holds `runs` completed runs r0, r1, ..."""

    async def scenario() -> None:
        async with Runtime(db, modes=APP_MODES, functions={"double": lambda x: 2 * x}) as rt:
            for number in range(runs):
                handle = await rt.run("c", None, mode="app", run_id=f"r{number}")
                await handle.wait()

    arun(scenario())


def _foreign(path: Path) -> None:
    """Another application's SQLite file."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ana')")
    conn.commit()
    conn.close()


EVERY_JOURNAL_COMMAND = (
    ("demo", "--plain"),
    ("resume", "run-x", "--plain"),
    ("interrupt", "run-x"),
    ("cancel", "run-x"),
    ("answer", "run-x", "approve", "true"),
    ("inspect",),
    ("inspect", "--run", "run-x"),
    ("replay",),
)


@pytest.mark.parametrize("kind", ["text", "foreign"])
def test_cli_1_to_3_a_file_that_is_no_journal_is_one_line_and_left_as_it_was(
    tmp_path: Path, kind: str
) -> None:
    """CLI-1, CLI-2, CLI-3: every command given a file that is not a journal (plain text, or
    another application's SQLite file) prints one line naming the file, exits 1, and leaves the
    file and its side files byte for byte as they were, the commands that write included."""
    db = tmp_path / f"{kind}.db"
    if kind == "text":
        db.write_bytes(b"hello, not a database\n" * 10)
    else:
        _foreign(db)
    before = files(db)
    for command in EVERY_JOURNAL_COMMAND:
        result = cli(tmp_path, *command, "--db", db.name)
        one_line_error(result, db.name)
        assert result.returncode == 1, (command, result.stderr)
        assert files(db) == before, f"`{command[0]}` changed {db.name}"


def test_cli_1_2_missing_journals_directories_and_bad_options_are_usage_errors(
    tmp_path: Path,
) -> None:
    """CLI-1, CLI-2: no journal at the path, a directory given as `--db`, or a `--modes` that
    names no mode: one line naming what is wrong, exit 2, and no file created."""
    (tmp_path / "adir").mkdir()
    for command in EVERY_JOURNAL_COMMAND:
        if command[0] != "demo":  # the demo creates its journal
            result = cli(tmp_path, *command, "--db", "none.db")
            one_line_error(result, "none.db")
            assert result.returncode == 2, (command, result.stderr)
        result = cli(tmp_path, *command, "--db", "adir")
        one_line_error(result, "adir")
        assert result.returncode == 2, (command, result.stderr)
    assert not (tmp_path / "none.db").exists()
    for command in (("inspect",), ("replay",), ("interrupt", "run-x")):
        result = cli(tmp_path, *command, "--modes", "no_such_module_anywhere:MODES")
        one_line_error(result, "no_such_module_anywhere")
        assert result.returncode == 2, result.stderr
    assert not (tmp_path / "interruptible-demo.db").exists()


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory holding a journal, which this process may read but not write (as root,
    where permissions do not bind, the directory is made immutable)."""
    directory = tmp_path / "readonly"
    directory.mkdir()
    _journal_with_runs(directory / "interruptible-demo.db", 1)
    if os.geteuid() != 0:
        directory.chmod(0o555)
        undo = ["chmod", "755", str(directory)]
    elif (
        shutil.which("chattr") and subprocess.run(["chattr", "+i", str(directory)]).returncode == 0
    ):
        undo = ["chattr", "-i", str(directory)]
    else:
        pytest.skip("no way to make a directory read-only for this user")
    try:
        yield directory
    finally:
        subprocess.run(undo, check=True)


def test_cli_1_3_a_read_only_directory_is_read_and_refused_for_writing_in_one_line(
    readonly_dir: Path,
) -> None:
    """CLI-1, CLI-3: a journal in a directory the command may not write is read by `inspect`
    and `replay` (exit 0); the commands that write say in one line that the journal can be read
    but not written (exit 1); a new journal there is refused in one line too."""
    before = files(readonly_dir / "interruptible-demo.db")
    for command in (("inspect", "--modes", SPEC), ("replay", "--modes", SPEC)):
        result = cli(readonly_dir, *command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    result = cli(readonly_dir, "demo", "--plain", "--new")
    line = one_line_error(result, "interruptible-demo.db")
    assert "write" in line, line
    assert result.returncode == 1
    # r0 is a run of the application's mode: `resume` refuses it for that first, reading only.
    result = cli(readonly_dir, "resume", "r0", "--plain")
    line = one_line_error(result, "interruptible-demo.db")
    assert "drives the demo's runs only" in line, line
    assert result.returncode == 1
    for command in (("cancel", "r0", "--modes", SPEC),):
        result = cli(readonly_dir, *command)
        line = one_line_error(result, "interruptible-demo.db")
        assert "write" in line, line
        assert result.returncode == 1
    result = cli(readonly_dir, "demo", "--plain", "--db", "new.db")
    one_line_error(result, "new.db")
    assert result.returncode == 1
    assert files(readonly_dir / "interruptible-demo.db") == before


def test_cli_1_a_locked_journal_is_one_line_within_seconds_for_every_command(
    tmp_path: Path,
) -> None:
    """CLI-1: while another connection holds the journal exclusively, every command says in one
    line that the file is locked (after the read-only busy timeout, not the writers' 30 s)."""
    db = tmp_path / "interruptible-demo.db"
    _journal_with_runs(db, 1)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        for command in (
            ("inspect", "--modes", SPEC),
            ("replay", "--modes", SPEC),
            ("interrupt", "r0", "--modes", SPEC),
            ("resume", "r0"),
            ("demo", "--plain"),
        ):
            result = cli(tmp_path, *command)
            assert "locked" in one_line_error(result, db.name)
            assert result.returncode == 1
    finally:
        holder.close()


def test_cli_1_os_errors_are_one_line(tmp_path: Path) -> None:
    """CLI-1: an `OSError` (a file that cannot be written where it is asked for) is one line
    naming the file, exit 1."""
    trace = tmp_path / "no-such-directory" / "trace.json"
    result = cli(
        tmp_path,
        "check",
        *("--runs", "1", "--steps", "2", "--defect", "lost_cancel", "--trace-out", str(trace)),
    )
    one_line_error(result, str(trace))
    assert result.returncode == 1


def test_cli_2_exit_statuses_are_documented_in_help_and_readme() -> None:
    """CLI-2: `interruptible --help` and the README list every exit status of spec/cli.md."""
    shown = cli(REPO, "--help")
    assert shown.returncode == 0
    readme = (REPO / "README.md").read_text()
    for status in ("0", "1", "2", "130", "141"):
        assert re.search(rf"^\s+{status}\s+\w", shown.stdout, re.M), shown.stdout
        assert re.search(rf"^\| {status} \| \w", readme, re.M), f"README lacks status {status}"
    assert "exit status" in shown.stdout.lower()


def test_cli_4_printed_commands_run_as_printed(tmp_path: Path) -> None:
    """CLI-4: run by its path (not on PATH) on a journal that is not the default, the demo's
    Ctrl-C prints a resume command that works as printed; so does a second demo's "interrupt
    it with" and the "resume with" of a demo over an interrupted run."""
    if not SCRIPT.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    first = start(tmp_path, str(SCRIPT), "demo", "--plain", "--ask", "--db", "my runs.db")
    try:
        seen = read_until(first, r"run: (run-\w+)")
        run_id = re.search(r"run: (run-\w+)", seen).group(1)  # type: ignore[union-attr]
        second = start(tmp_path, str(SCRIPT), "demo", "--plain", "--db", "my runs.db")
        _, err = second.communicate(timeout=60)
        match = re.search(r"interrupt it with: (.+)$", err, re.M)
        assert match, err
        printed = shlex.split(match.group(1))
        assert printed[0] == str(SCRIPT) and "--db" in printed, printed
        stopped = subprocess.run(
            printed, cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=60
        )
        assert stopped.returncode == 0, stopped.stderr
        out, err = rest(first)
        assert first.returncode == 130, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    match = re.search(r"resume with: (.+)$", out, re.M)
    assert match, out
    again = start(tmp_path, str(SCRIPT), "demo", "--plain", "--db", "my runs.db")
    again_out, _ = again.communicate(timeout=60)
    assert again.returncode == 2 and match.group(1) in again_out
    resumed = subprocess.run(
        [*shlex.split(match.group(1)), "--plain"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id} completed" in resumed.stdout


def test_cli_4_a_module_run_prints_module_commands(tmp_path: Path) -> None:
    """CLI-4: run as `python -m interruptible`, the printed command names the interpreter and
    the module, and runs as printed."""
    first = start(tmp_path, sys.executable, "-m", "interruptible", "demo", "--plain")
    read_until(first, r"lookup\s+running")
    first.send_signal(signal.SIGINT)
    out, err = rest(first)
    assert first.returncode == 130, err
    match = re.search(r"resume with: (.+)$", out, re.M)
    assert match, out
    printed = shlex.split(match.group(1))
    assert printed[1:3] == ["-m", "interruptible"], printed
    resumed = subprocess.run(
        [*printed, "--plain"], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=60
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


# The demo at its own pace, so that its thread step (summarize) is still running while
# the test sends the second Ctrl-C.
SLOW = {"INTERRUPTIBLE_DEMO_SPEED": "1"}


def test_cli_5_a_second_ctrl_c_leaves_at_once_in_one_line(tmp_path: Path) -> None:
    """CLI-5: a second Ctrl-C while the first is interrupting the run (its step runs in a thread
    that cannot be stopped) leaves at once with one line on stderr saying how to continue, exit
    130, and no traceback; the journal is consistent: `resume` finishes the run."""
    demo = start(tmp_path, sys.executable, "-m", "interruptible", "demo", "--plain", **SLOW)
    try:
        seen = read_until(demo, r"run: (run-\w+)")
        run_id = re.search(r"run: (run-\w+)", seen).group(1)  # type: ignore[union-attr]
        read_until(demo, r"summarize\s+running")
        demo.send_signal(signal.SIGINT)
        read_until(demo, "interrupting the run")
        demo.send_signal(signal.SIGINT)
        out, err = rest(demo)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 130, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and run_id in lines[0] and "resume" in lines[0], err
    resumed = cli(tmp_path, "resume", run_id, "--plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id} completed" in resumed.stdout


def test_cli_5_a_second_ctrl_c_while_a_step_will_not_stop_leaves_at_once(tmp_path: Path) -> None:
    """CLI-5: while the first Ctrl-C waits for a step that ignores its cancel, a second one
    leaves at once: one line on stderr with the resume command, exit 130, no traceback; the
    journal it leaves opens, its run not ended (the next process takes it over)."""
    db = tmp_path / "stubborn.db"
    child = start(tmp_path, sys.executable, str(REPO / "tests/runtime/stubborn_child.py"), str(db))
    try:
        read_until(child, "stubborn step started")
        read_until(child, "run r1: running")  # follow shows the run once its handler is in
        child.send_signal(signal.SIGINT)
        read_until(child, "interrupting the run")
        child.send_signal(signal.SIGINT)
        out, err = rest(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "second Ctrl-C" in lines[0], err
    assert f"resume r1 --db {db}" in lines[0]
    with SQLiteJournal(db, readonly=True) as journal:
        events = [record.event for record in journal.read("c")]
    assert events and not any(type(event).__name__ == "EffectCompleted" for event in events)


def test_cli_5_ctrl_c_in_any_command_is_one_line(tmp_path: Path) -> None:
    """CLI-5: Ctrl-C in a command that is not the demo (the model checker, here, once it says
    how far it got) is one line and exit 130."""
    check = start(tmp_path, sys.executable, "-m", "interruptible", "check", "--runs", "3")
    try:
        assert check.stderr is not None
        ready, _, _ = select.select([check.stderr], [], [], 60)
        assert ready, "no progress line on stderr"
        line = check.stderr.readline()  # the first progress line
        assert "states" in line, line
        check.send_signal(signal.SIGINT)
        _, err = check.communicate(timeout=60)
    finally:
        if check.poll() is None:
            check.kill()
            check.communicate()
    assert check.returncode == 130, err
    assert "Traceback" not in err
    assert (
        len([line for line in err.replace("\r", "\n").splitlines() if "interrupted" in line]) == 1
    )


def test_cli_5_a_closed_output_stops_quietly(tmp_path: Path) -> None:
    """CLI-5: `inspect` and `replay` whose stdout is a pipe nobody reads any more (`| head`)
    stop with status 141 and print nothing on stderr: no traceback, no "Exception ignored"."""
    db = tmp_path / "journal.db"
    _journal_with_runs(db, 3)
    for command in (("inspect",), ("inspect", "--run", "r1"), ("replay",)):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before anything is written
        try:
            result = subprocess.run(
                [sys.executable, "-m", "interruptible", *command, "--db", str(db)],
                cwd=tmp_path,
                stdout=write,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
                timeout=60,
            )
        finally:
            os.close(write)
        assert result.returncode == 141, (command, result.stderr)
        assert result.stderr == "", (command, result.stderr)


def test_cli_5_a_demo_whose_output_is_closed_interrupts_its_run(tmp_path: Path) -> None:
    """CLI-5: `demo --plain | head -1`: once nobody reads its output the demo interrupts its
    run (it would wait at the gate for ever), says in one line on stderr how to resume it, and
    exits 141; `resume` then finishes the run."""
    demo = start(tmp_path, sys.executable, "-m", "interruptible", "demo", "--plain")
    try:
        assert demo.stdout is not None and demo.stderr is not None
        first = demo.stdout.readline()
        run_id = re.search(r"run: (run-\w+)", first).group(1)  # type: ignore[union-attr]
        demo.stdout.close()  # as head does once it has its line
        demo.wait(timeout=60)  # (stderr holds one line: no pipe fills while it is not read)
        err = demo.stderr.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 141, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"resume {run_id}" in lines[0], err
    resumed = cli(tmp_path, "resume", run_id, "--plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_cli_6_the_editor_saying_no_publishes_nothing(tmp_path: Path) -> None:
    """CLI-6: `demo --ask` answered "n": the run completes without planning the embargo or the
    publish step, its output says `"published": false`, and the demo says the brief was not
    published."""
    from interruptible._runtime._demo import DEMO_MODE

    demo = start(tmp_path, sys.executable, "-m", "interruptible", "demo", "--plain", "--ask")
    try:
        seen = read_until(demo, r"run: (run-\w+)")
        run_id = re.search(r"run: (run-\w+)", seen).group(1)  # type: ignore[union-attr]
        read_until(demo, r"Publish the brief\?")
        assert demo.stdin is not None
        demo.stdin.write("n\n")
        demo.stdin.flush()
        out, err = rest(demo)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert "not published" in out, out
    with SQLiteJournal(tmp_path / "interruptible-demo.db", readonly=True) as journal:
        events = [record.event for record in journal.read("demo")]
    coordinator = Coordinator([DEMO_MODE])
    state = initial_state()
    for event in events:
        state = coordinator.reduce(state, event).state
    run = state.run(run_id)
    assert run is not None and run.status.value == "completed"
    assert [step.step_id for step in run.steps] == ["plan", "lookup", "summarize", "approve"]
    assert run.output["published"] is False  # type: ignore[index]
    assert run.output["outputs"]["approve"] == {"approved": False}  # type: ignore[index]


def test_cli_6_the_editor_saying_yes_publishes(tmp_path: Path) -> None:
    """CLI-6: answered yes (here by the demo's own editor), the brief is published and the
    run's output says so."""
    demo = cli(tmp_path, "demo", "--plain")
    assert demo.returncode == 0, demo.stderr
    assert "published" in demo.stdout and "not published" not in demo.stdout


def test_cli_7_inspect_run_shows_a_run_older_than_the_retained_history(
    tmp_path: Path,
) -> None:
    """CLI-7: `inspect --run` of the first of ten runs (the core keeps eight ended runs) still
    shows its status and its steps, besides its events."""
    db = tmp_path / "journal.db"
    _journal_with_runs(db, 10)
    result = cli(tmp_path, "inspect", "--db", str(db), "--modes", SPEC, "--run", "r0")
    assert result.returncode == 0, result.stderr
    assert "status completed" in result.stdout, result.stdout
    assert re.search(r"step only\s+system\s+completed", result.stdout), result.stdout
    assert "run_requested" in result.stdout
