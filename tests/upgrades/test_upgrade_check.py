"""`interruptible upgrade-check` and `upgrade_check`: the README's deploy check runs as written
(spec/upgrades.md, UPG-7)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interruptible import upgrade_check

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SECTION = README.split("## Deploying a new version", 1)[1].split("\n## ", 1)[0]
CONSOLE = re.search(r"```console\n(.*?)```", SECTION, re.S)
RUN_ID = "run-1a1164c6d769"


# The demo's pipeline at its own speed (its embargo's length is part of its definition, so of
# the fingerprints the README shows).
ENV = {**os.environ, "INTERRUPTIBLE_DEMO_SPEED": "1"}
INTERRUPT_AT_THE_GATE = f"""
import asyncio
from interruptible import StepStatus
from interruptible._runtime._demo import DEMO_MODE, demo_runtime

async def main():
    async with demo_runtime("interruptible-demo.db") as rt:
        await rt.run("demo", None, mode=DEMO_MODE.name, run_id="{RUN_ID}")
        while rt.snapshot("demo").steps[-1].status is not StepStatus.waiting_input:
            await asyncio.sleep(0.02)
        await rt.interrupt_run("demo")

asyncio.run(main())
"""


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """A directory with the README's demo journal (a run interrupted at the editor's gate) and
    its changed pipelines, as a person following the README has them."""
    made = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_THE_GATE],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "demo_v2.py", tmp_path / "docs" / "demo_v2.py")
    return tmp_path


def _interruptible(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m interruptible ARGS` in `cwd`, as the README's reader runs it."""
    return subprocess.run(
        [sys.executable, "-m", "interruptible", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _commands() -> list[tuple[list[str], list[str]]]:
    assert CONSOLE is not None, "the README's deploy section has its console block"
    found: list[tuple[list[str], list[str]]] = []
    for line in CONSOLE.group(1).splitlines():
        if line.startswith("$ "):
            found.append((line[2:].split(), []))
        else:
            found[-1][1].append(line)
    return found


def test_upg_7_the_readme_deploy_check_prints_what_it_shows(demo_dir: Path) -> None:
    """UPG-7: each command of the README's deploy section prints exactly the lines shown, and
    exits 1 exactly when a run would be blocked; the journal is not written."""
    commands = _commands()
    assert len(commands) == 4
    journal = demo_dir / "interruptible-demo.db"
    before = journal.read_bytes()
    for argv, expected in commands:
        assert argv[0] == ".venv/bin/interruptible"
        done = _interruptible(demo_dir, *argv[1:])
        assert done.stdout.splitlines() == expected, done.stderr
        blocked = any(" blocked at step " in line for line in expected)
        assert done.returncode == (1 if blocked else 0), done.stderr
    assert journal.read_bytes() == before


def test_upg_7_upgrade_check_as_a_function(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """UPG-7: `upgrade_check` gives the same verdicts from Python, with fields."""
    monkeypatch.syspath_prepend(str(demo_dir))
    from docs import demo_v2  # type: ignore[import-not-found]

    db = str(demo_dir / "interruptible-demo.db")
    report = upgrade_check(db, [demo_v2.RENAMED])
    (run,) = report.runs
    assert (run.run_id, run.status, run.verdict, run.step_id) == (
        RUN_ID,
        "interrupted",
        "blocked",
        "summarize",
    )
    assert not report.ok and report.blocked == (run,)
    migrated = upgrade_check(db, [demo_v2.RENAMED], demo_v2.MIGRATIONS)
    assert migrated.ok and migrated.runs[0].migration == "demo-brief:1->3"


def test_upg_7_bad_options_are_one_line(demo_dir: Path) -> None:
    """UPG-7, CLI-1: a `--migrations` that names no migration is a usage error in one line."""
    done = _interruptible(demo_dir, "upgrade-check", "--migrations", "docs.demo_v2:plan")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "neither a Migration" in done.stderr


def test_upg_1_inspect_shows_the_definition_a_run_follows(demo_dir: Path) -> None:
    """UPG-1: `inspect --run` names the fingerprint and version of the run's definition, the
    same fingerprint `upgrade-check` reports."""
    done = _interruptible(demo_dir, "inspect", "--run", RUN_ID)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("  definition "))
    fingerprint = line.split()[1]
    assert line.endswith("(version 1)")
    assert f"({fingerprint} -> " in SECTION  # the README's blocked line names it
