"""`./dev` explains itself: its usage on request, and what the set-up installs as it installs
it (spec/cli.md, CLI-10)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A stand-in for `python3` and the virtual environment's interpreter: it logs how it was
# called, and `-m venv DIR` makes DIR/bin/python (itself).
STUB = """#!/usr/bin/env bash
echo "$0 $*" >> "$STUB_LOG"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
"""


def test_cli_10_dev_with_no_argument_or_help_prints_its_usage_and_runs_nothing() -> None:
    """CLI-10: `./dev --help` (also `-h`, `help`) prints the usage and exits 0; `./dev` alone
    prints it and exits 2; neither runs a job (CI calls `./dev test` explicitly)."""
    for argument in ("--help", "-h", "help"):
        shown = subprocess.run(
            [str(REPO / "dev"), argument], capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("usage: ./dev"), shown.stdout
        for job in ("demo", "test", "spec", "bench", "setup"):
            assert f"./dev {job}" in shown.stdout
    alone = subprocess.run([str(REPO / "dev")], capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2
    assert "usage: ./dev" in alone.stdout + alone.stderr
    assert "== pytest" not in alone.stdout + alone.stderr


def test_cli_10_the_first_set_up_says_what_it_installs(tmp_path: Path) -> None:
    """CLI-10: on a fresh checkout (no `.venv`), `./dev setup` prints one line per step as it
    makes the virtual environment and installs pip and the package, with pip kept quiet; a
    second set-up has nothing to install and says nothing."""
    shutil.copy(REPO / "dev", tmp_path / "dev")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "python3").write_text(STUB)
    (stubs / "python3").chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)}
    if not shutil.which("dot", path=env["PATH"]):
        (stubs / "dot").write_text("#!/bin/sh\n")
        (stubs / "dot").chmod(0o755)
    first = subprocess.run(
        [str(tmp_path / "dev"), "setup"], capture_output=True, text=True, env=env, timeout=60
    )
    assert first.returncode == 0, first.stderr
    said = [line for line in (first.stdout + first.stderr).splitlines() if line.strip()]
    assert len(said) == 3, said
    assert "virtual environment" in said[0] and ".venv" in said[0]
    assert "pip" in said[1]
    assert "interruptible" in said[2] and "development tools" in said[2]
    pip_calls = [line for line in log.read_text().splitlines() if " -m pip " in line]
    assert len(pip_calls) == 2 and all("--quiet" in line for line in pip_calls), pip_calls
    again = subprocess.run(
        [str(tmp_path / "dev"), "setup"], capture_output=True, text=True, env=env, timeout=60
    )
    assert again.returncode == 0 and again.stdout + again.stderr == ""
