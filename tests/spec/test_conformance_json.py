"""The JSON tables are complete conformance data: a JSON-only interpreter agrees with `fire`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from interruptible import IllegalTransition, MissingGuardError, RunStatus, StepStatus
from interruptible._interpreter import CompiledLifecycle, compile_lifecycle
from interruptible._lifecycle import RunLifecycle, StepLifecycle

GENERATED = Path(__file__).resolve().parents[2] / "spec" / "generated"
LIFECYCLES = [
    pytest.param("run-lifecycle", compile_lifecycle(RunLifecycle, RunStatus), id="run"),
    pytest.param("step-lifecycle", compile_lifecycle(StepLifecycle, StepStatus), id="step"),
]


def json_fire(table: dict[str, Any], status: str, event: str, guards: dict[str, bool]) -> Any:
    """What a runtime in another language does with the JSON alone: (target, directives) or None."""
    candidates = sorted(
        (t for t in table["transitions"] if t["source"] == status and t["event"] == event),
        key=lambda t: t["priority"],
    )
    for t in candidates:
        if all(guards[g["name"]] is g["expected"] for g in t["guards"]):
            return t["target"], tuple(t["directives"]), t["internal"]
    return None


@pytest.mark.parametrize(("slug", "compiled"), LIFECYCLES)
def test_spec_4_json_table_agrees_with_fire_everywhere(
    slug: str, compiled: CompiledLifecycle[Any]
) -> None:
    """For every status, event and guard valuation the JSON table answers as fire does."""
    table = json.loads((GENERATED / f"{slug}.json").read_text(encoding="utf-8"))
    guard_names = sorted(table["guards"])
    assert set(guard_names) == compiled.guard_names()
    assert table["statuses"] == [s.value for s in compiled.statuses]
    assert table["initial"] == compiled.initial.value
    assert set(table["finals"]) == {s.value for s in compiled.finals}
    for status in compiled.statuses:
        assert set(table["allowed_events"][status.value]) == set(compiled.allowed[status])
        for event in [*table["events"], "no_such_event"]:
            for values in itertools.product([True, False], repeat=len(guard_names)):
                guards = dict(zip(guard_names, values, strict=True))
                expected = json_fire(table, status.value, event, guards)
                try:
                    t = compiled.fire(status, event, guards)
                except IllegalTransition:
                    assert expected is None, (status, event, guards)
                    continue
                except MissingGuardError:  # pragma: no cover - every guard is given
                    raise
                actual = (t.target.value, tuple(k.value for k in t.directives), t.internal)
                assert expected == actual, (status, event, guards)
