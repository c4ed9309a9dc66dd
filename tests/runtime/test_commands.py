"""The runtime's subcommands: demo (Ctrl-C), resume in a new process, inspect, replay."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interruptible import Sequence
from interruptible._cli._commands import main
from interruptible._runtime import Runtime
from tests.runtime.support import arun, pipeline, system_step

REPO = Path(__file__).resolve().parents[2]


def _command(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",
        "INTERRUPTIBLE_DEMO_SPEED": "8",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "interruptible._cli._commands", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 20) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            seen += line
            if re.search(pattern, line):
                return seen
    raise AssertionError(f"{pattern!r} not seen in:\n{seen}")


def test_rt_7_demo_ctrl_c_interrupts_the_run_and_resume_finishes_it_in_a_new_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`interruptible demo` on ./interruptible-demo.db: SIGINT (Ctrl-C) interrupts the run, not
    the process abruptly: it waits until the run is interrupted and prints the resume command
    (exit 130); a second `demo` refuses to start over an interrupted run; `interruptible resume
    RUN_ID` in a new process finishes it; `inspect` shows the run and its events; `replay`
    reports parity."""
    demo = _command(tmp_path, "demo", "--plain")
    _read_until(demo, r"lookup\s+running")
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=20)
    assert demo.returncode == 130, err
    match = re.search(r"resume with: .*interruptible resume (\S+)", out)
    assert match, out
    run_id = match.group(1)
    assert (tmp_path / "interruptible-demo.db").exists()

    again = _command(tmp_path, "demo", "--plain")
    out, _ = again.communicate(timeout=20)
    assert again.returncode == 2 and f"interruptible resume {run_id}" in out

    resumed = _command(tmp_path, "resume", run_id, "--plain")
    out, err = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, err
    assert f"run {run_id} completed: the brief was published." in out
    assert "lookup" in out and "publish" in out

    db = str(tmp_path / "interruptible-demo.db")
    assert main(["inspect", "--db", db]) == 0
    assert main(["inspect", "--db", db, "--run", run_id]) == 0
    assert main(["replay", "--db", db]) == 0
    printed = capsys.readouterr().out
    assert f"run {run_id}  completed" in printed
    assert "interrupt_requested" in printed and "ctrl-c" in printed
    assert "resume_requested" in printed
    assert "replay parity: PASS" in printed


def test_rt_16_commands_explain_missing_journals_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`resume` of an unknown run or journal, and `inspect --run` of an unknown run, say what is
    missing and exit 2."""
    db = str(tmp_path / "none.db")
    assert main(["resume", "run-x", "--db", db]) == 2
    assert "no journal" in capsys.readouterr().err
    assert main(["inspect", "--db", db]) == 2
    assert "no journal" in capsys.readouterr().err
    from interruptible._journal import SQLiteJournal

    SQLiteJournal(db).close()
    assert main(["resume", "run-x", "--db", db]) == 2
    assert "no run 'run-x'" in capsys.readouterr().err
    assert main(["inspect", "--db", db, "--run", "run-x"]) == 2


class AppSequence(Sequence):
    """An application's own mode class: its runs fold only where it is registered (UPG-2)."""


# An application's modes, importable as `tests.runtime.test_commands:APP_MODES`.
APP_MODES = [AppSequence("app", (system_step("only", "double", x=2),))]


def test_rt_16_inspect_and_replay_fold_an_applications_modes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`inspect` and `replay` know the demo's mode; `--modes MODULE:NAME` adds an application's,
    so its runs are shown and folded instead of being reported as of an unknown mode."""
    db = str(tmp_path / "app.db")

    async def scenario() -> None:
        async with Runtime(db, modes=APP_MODES, functions={"double": lambda x: 2 * x}) as rt:
            handle = await rt.run("c", None, mode="app", run_id="r1")
            assert (await handle.wait()).status.value == "completed"

    arun(scenario())
    spec = "tests.runtime.test_commands:APP_MODES"
    assert main(["inspect", "--db", db]) == 0
    assert "run r1  mode 'app' unknown to this command (pass --modes" in capsys.readouterr().out
    assert main(["inspect", "--db", db, "--modes", spec]) == 0
    assert "run r1  completed  [only=completed]" in capsys.readouterr().out
    assert main(["replay", "--db", db]) == 1
    assert "replay parity: FAIL" in capsys.readouterr().out
    assert main(["replay", "--db", db, "--modes", spec]) == 0
    assert "replay parity: PASS" in capsys.readouterr().out


def test_upg_2_inspect_and_replay_fold_a_built_in_mode_from_its_journaled_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """UPG-2: a run of a plain `Sequence` journals its definition, so `inspect` and `replay`
    fold it without `--modes`."""
    db = str(tmp_path / "app.db")
    mode = pipeline("plain", [system_step("only", "double", x=2)])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], functions={"double": lambda x: 2 * x}) as rt:
            handle = await rt.run("c", None, mode="plain", run_id="r1")
            assert (await handle.wait()).status.value == "completed"

    arun(scenario())
    assert main(["inspect", "--db", db]) == 0
    assert "run r1  completed  [only=completed]" in capsys.readouterr().out
    assert main(["replay", "--db", db]) == 0
    assert "replay parity: PASS" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("tests.runtime.test_commands", "expects MODULE:NAME"),
        ("no_such_module_anywhere:MODES", "importing 'no_such_module_anywhere' failed"),
        ("tests.runtime.test_commands:NOPE", "has no 'NOPE'"),
        ("json:dumps", "it is a function, neither a Mode nor an iterable (or mapping) of Modes"),
        ("tests.runtime.test_commands:REPO", "it is a PosixPath, neither a Mode nor an iterable"),
    ],
)
def test_rt_16_a_modes_option_that_names_no_mode_is_refused(
    tmp_path: Path, spec: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `--modes` that cannot be imported or names no Mode stops the command with the reason
    in one line, a usage error (exit 2, CLI-2), before the journal is opened."""
    assert main(["inspect", "--db", str(tmp_path / "never-opened.db"), "--modes", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "never-opened.db").exists()


def test_rt_16_modes_come_from_the_current_directory_and_a_module_that_exits_names_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--modes` imports from the directory the command runs in (a mapping of modes will do),
    and a module that exits while it is imported stops the command with the reason."""
    from interruptible._journal import SQLiteJournal

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app_modes.py").write_text(
        "from interruptible import Sequence, StepClass, StepDefinition\n"
        "MODES = {'m': Sequence('m', (StepDefinition('s', StepClass.system, {'name': 'n'}),))}\n"
    )
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(0)\n")
    db = str(tmp_path / "app.db")
    SQLiteJournal(db).close()
    assert main(["replay", "--db", db, "--modes", "app_modes:MODES"]) == 0
    assert "replay parity: PASS" in capsys.readouterr().out
    assert main(["inspect", "--db", db, "--modes", "exits_at_import:MODES"]) == 2
    assert "importing 'exits_at_import' failed: SystemExit: 0" in capsys.readouterr().err
