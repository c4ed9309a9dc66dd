"""`interrupt`, `cancel` and `answer` from a second terminal while the demo runs in the first
(spec/ownership.md, "The command line"); a second `demo` leaves the first alone."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from interruptible._journal import SQLiteJournal

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "interruptible", *args],
        cwd=cwd,
        stdin=subprocess.PIPE,  # `demo --ask` waits here for an answer nobody types
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def command(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interruptible", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


_SEEN: dict[int, str] = {}


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 30) -> str:
    """The output so far, once a line matches `pattern` (read from the pipe's descriptor: a
    buffered reader would hold lines that `select` no longer reports)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = _SEEN.get(process.pid, "")
        if any(re.search(pattern, line) for line in seen.splitlines()):
            return seen
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            _SEEN[process.pid] = seen + chunk.decode()
    raise AssertionError(f"{pattern!r} not seen in:\n{_SEEN.get(process.pid, '')}")


def rest(process: subprocess.Popen[str]) -> tuple[str, str]:
    """What the process printed from the start, and its stderr, once it has exited."""
    out, err = process.communicate(timeout=30)
    return _SEEN.pop(process.pid, "") + out, err


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout + result.stderr).strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    return text


def test_own_7_a_second_demo_names_the_live_process_and_leaves_it_alone(tmp_path: Path) -> None:
    """A second `demo` in the same directory says in one line that the run is live in process
    N and how to interrupt it, exits 1, and the first goes on; `interrupt` from the second
    terminal then reaches the first, which stops its run and says how to resume it."""
    first = start(tmp_path, "demo", "--plain", "--ask")
    try:
        seen = read_until(first, r"run: (run-\w+)")
        run_id = re.search(r"run: (run-\w+)", seen).group(1)  # type: ignore[union-attr]
        second = command(tmp_path, "demo", "--plain")
        text = one_line(second)
        assert second.returncode == 1
        assert f"run {run_id} is running in process {first.pid}" in text
        assert f"interruptible interrupt {run_id}" in text
        read_until(first, r"approve\s+waiting_input")  # the first went on
        stopped = command(tmp_path, "interrupt", run_id)
        assert stopped.returncode == 0
        assert one_line(stopped) == f"run {run_id}: interrupted (in process {first.pid} on " + (
            os.uname().nodename + ")"
        )
        out, err = rest(first)
        assert re.search(rf"resume with: .*interruptible resume {run_id}$", out, re.M), out
        assert "Traceback" not in err
        assert first.returncode == 130
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()


def test_own_6_answer_and_cancel_reach_the_running_demo(tmp_path: Path) -> None:
    """`answer` opens the demo's gate from the second terminal and the first process goes on
    with it; `cancel` then ends the run there; both print one line and journal no takeover."""
    first = start(tmp_path, "demo", "--plain", "--ask")
    try:
        seen = read_until(first, r"run: (run-\w+)")
        run_id = re.search(r"run: (run-\w+)", seen).group(1)  # type: ignore[union-attr]
        read_until(first, r"approve\s+waiting_input")
        answered = command(tmp_path, "answer", run_id, "approve", "true")
        assert answered.returncode == 0
        assert "step approve answered" in one_line(answered)
        read_until(first, r"embargo\s+running")
        canceled = command(tmp_path, "cancel", run_id)
        assert canceled.returncode == 0
        assert one_line(canceled).startswith(f"run {run_id}: canceled")
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    with SQLiteJournal(tmp_path / "interruptible-demo.db") as journal:
        assert len(journal.ownership_history("demo")) == 1


def test_own_8_commands_on_unknown_runs_and_missing_journals_say_so_in_one_line(
    tmp_path: Path,
) -> None:
    """No journal, or no such run: one line naming the file or id, exit 2, nothing written."""
    missing = command(tmp_path, "interrupt", "run-nope")
    assert missing.returncode == 2 and "no journal at interruptible-demo.db" in one_line(missing)
    assert not (tmp_path / "interruptible-demo.db").exists()
    with SQLiteJournal(tmp_path / "interruptible-demo.db"):
        pass
    unknown = command(tmp_path, "cancel", "run-nope")
    assert unknown.returncode == 2 and "no run 'run-nope'" in one_line(unknown)


def test_cli_1_resume_of_an_applications_run_says_it_drives_demo_runs_only(tmp_path: Path) -> None:
    """CLI-1: `interruptible resume` of a run of another mode (an application's journal) says in
    one line that it resumes demo runs only, exits 1, and writes nothing."""
    import asyncio

    from interruptible import Runtime, Sequence, StepClass, StepDefinition

    db = tmp_path / "app.db"

    async def interrupted() -> None:
        async def slow() -> None:
            await asyncio.sleep(30)

        step = StepDefinition("s", StepClass.tool, {"name": "slow", "arguments": {}})
        async with Runtime(db, modes=[Sequence("p", (step,))], tools={"slow": slow}) as rt:
            await rt.run("c", None, mode="p", run_id="r-app")
            await rt.interrupt_run("c", "stop")

    asyncio.run(interrupted())
    before = db.read_bytes()
    result = command(tmp_path, "resume", "r-app", "--db", str(db), "--plain")
    assert result.returncode == 1
    assert "run r-app is a run of mode 'p'" in one_line(result)
    assert db.read_bytes() == before
