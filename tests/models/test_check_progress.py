"""`interruptible check` says how far it got while it explores (spec/cli.md, CLI-9)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from interruptible._cli import _check as check_command
from interruptible._verify._checker import World, explore
from interruptible._verify._checker._models import load_model

MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "sequence_runs.py"


def test_cli_9_the_explorer_reports_its_progress_as_it_goes() -> None:
    """CLI-9: `explore` calls its progress callback as it goes (here at every chance), with
    figures that only grow and end at the report's."""
    model = load_model(MODEL_PATH)
    seen: list[tuple[int, int, int]] = []
    report = explore(
        World(model, dataclasses.replace(model.ci_bounds, runs=1, steps=2)),
        progress=lambda states, transitions, depth: seen.append((states, transitions, depth)),
        progress_every=0.0,
    )
    assert report.ok
    assert len(seen) >= 2
    assert seen == sorted(seen)
    assert seen[-1][0] == report.states and seen[-1][1] == report.transitions


def test_cli_9_check_prints_progress_on_stderr_and_figures_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CLI-9: the command prints progress lines (states so far) on stderr; the figures of the
    result stay on stdout."""
    monkeypatch.setattr(check_command, "PROGRESS_EVERY", 0.0)
    parser = argparse.ArgumentParser(prog="interruptible")
    check_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", "--model", str(MODEL_PATH), "--runs", "1", "--steps", "2"])
    assert args.run(args) == 0
    captured = capsys.readouterr()
    assert "result: no violation" in captured.out
    assert "explored" not in captured.out
    progress = [line for line in captured.err.splitlines() if "states" in line]
    assert progress and all("explored" in line for line in progress), captured.err
