"""The event rules are one declaration read from the lifecycle tables (SPEC-7)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from interruptible._core._rules import RULES
from interruptible._core._txn import RUN, STEP
from interruptible._lifecycle import RunStatus, StepStatus
from interruptible._vocabulary import EVENT_TYPES

SRC = Path(__file__).resolve().parents[2] / "src"
MODEL = SRC.parent / "models" / "sequence_runs.py"


def test_spec_7_every_vocabulary_event_has_one_rule_firing_declared_events() -> None:
    """SPEC-7: one rule per vocabulary event, and every lifecycle event it fires is declared."""
    assert set(RULES) == set(EVENT_TYPES.values())
    for rule in RULES.values():
        assert set(rule.run_fires) <= set(RUN.events)
        assert set(rule.step_fires) <= set(STEP.events)


def test_spec_7_status_sets_are_read_from_the_tables() -> None:
    """SPEC-7: the statuses a rule answers in follow the compiled tables, not literals."""
    resume = next(rule for name, rule in _by_name().items() if name == "resume_requested")
    resumable = {t.source for t in RUN.transitions if t.event == "resume"}
    assert set(RunStatus) - set(resume.run_answers) == resumable
    started = _by_name()["effect_started"]
    startable = {t.source for t in STEP.transitions if t.event == "effect_started"}
    assert set(StepStatus) - set(started.step_answers) == startable


def test_spec_7_one_edit_to_a_lifecycle_moves_the_rules_spec_and_checker(tmp_path: Path) -> None:
    """SPEC-7: on a throw-away copy, one added run transition (resume from `pending`) reaches the
    generated event rules and diagram after `interruptible spec`, and the model checker runs."""
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    lifecycle = src / "interruptible" / "_lifecycle.py"
    text = lifecycle.read_text(encoding="utf-8")
    old = 'resume = interrupted.to(running, on="emit_lifecycle")'
    assert old in text
    lifecycle.write_text(
        text.replace(old, old + ' | pending.to(running, on="emit_lifecycle")'), encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = tmp_path / "generated"
    subprocess.run(
        [sys.executable, "-m", "interruptible", "spec", "--out", str(out)],
        check=True,
        env=env,
        cwd=tmp_path,
        capture_output=True,
    )
    protocol = (out / "protocol.md").read_text(encoding="utf-8")
    row = next(line for line in protocol.splitlines() if line.startswith("| `resume_requested`"))
    assert "`pending`" not in row  # a pending run may now be resumed: no longer refused
    assert "pending --> running : resume" in (out / "run-lifecycle.mmd").read_text(encoding="utf-8")
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "interruptible",
            "check",
            "--model",
            str(MODEL),
            "--runs",
            "1",
            "--steps",
            "1",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode in (0, 1), checked.stderr  # it ran, against the edited tables


def _by_name() -> dict[str, object]:
    names = {cls: name for name, cls in EVENT_TYPES.items()}
    return {names[rule.event]: rule for rule in RULES.values()}
