"""TRACE-1: the golden traces are current, and the core reproduces each from its header alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from interruptible._views._traces import (
    SCENARIOS,
    iter_traces,
    load_trace,
    record,
    render,
    verify_trace,
    write_traces,
)

TRACES = Path(__file__).resolve().parents[2] / "spec" / "traces"


def test_trace_1_committed_traces_are_current() -> None:
    """TRACE-1: every scenario has a committed trace equal to a fresh recording."""
    stale = [
        name
        for name in SCENARIOS
        if not (TRACES / f"{name}.jsonl").exists()
        or (TRACES / f"{name}.jsonl").read_text() != render(record(name))
    ]
    assert not stale, f"stale golden traces {stale}: run ./dev spec and commit spec/traces/"
    assert sorted(p.stem for p in TRACES.glob("*.jsonl")) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_trace_1_core_reproduces_every_golden_trace(name: str) -> None:
    """TRACE-1: replaying a trace with modes rebuilt from its header gives every line exactly."""
    trace = load_trace(TRACES / f"{name}.jsonl")
    assert trace.lines, "a trace has at least one event"
    assert verify_trace(trace) == []


def test_trace_1_verify_reports_a_tampered_line(tmp_path: Path) -> None:
    """TRACE-1: a trace whose expected directives were altered is reported, with its line."""
    (path,) = [p for p in write_traces(tmp_path) if p.stem == "interrupt-resume"]
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace('"cancel_effects"', '"start_effect"', 1)
    path.write_text("\n".join(lines) + "\n")
    (trace,) = [t for t in iter_traces(tmp_path) if t.name == "interrupt-resume"]
    problems = verify_trace(trace)
    assert problems and problems[0].startswith("interrupt-resume.jsonl line 7")
