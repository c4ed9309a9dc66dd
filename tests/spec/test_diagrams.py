"""The generated diagrams name everything their lifecycle declares."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from interruptible import DirectiveKind, RunStatus, StepStatus
from interruptible._interpreter import CompiledLifecycle, compile_lifecycle
from interruptible._lifecycle import RunLifecycle, StepLifecycle
from interruptible._views._diagrams import transition_label

GENERATED = Path(__file__).resolve().parents[2] / "spec" / "generated"
LIFECYCLES = [
    pytest.param("run-lifecycle", compile_lifecycle(RunLifecycle, RunStatus), id="run"),
    pytest.param("step-lifecycle", compile_lifecycle(StepLifecycle, StepStatus), id="step"),
]


def _names(compiled: CompiledLifecycle[object]) -> set[str]:
    directives = {kind.value for t in compiled.transitions for kind in t.directives}
    statuses = {status.value for status in compiled.statuses}  # type: ignore[attr-defined]
    return statuses | set(compiled.events) | compiled.guard_names() | directives


@pytest.mark.parametrize(("slug", "compiled"), LIFECYCLES)
@pytest.mark.parametrize("suffix", [".mmd", ".svg"])
def test_spec_2_diagrams_name_every_status_event_guard_and_directive(
    slug: str, compiled: CompiledLifecycle[object], suffix: str
) -> None:
    """Each Mermaid and SVG diagram contains every name its lifecycle uses."""
    text = html.unescape((GENERATED / f"{slug}{suffix}").read_text(encoding="utf-8"))
    missing = sorted(name for name in _names(compiled) if name not in text)
    assert not missing, f"{slug}{suffix} lacks {missing}"


@pytest.mark.parametrize(("slug", "compiled"), LIFECYCLES)
def test_spec_2_mermaid_draws_every_transition(
    slug: str, compiled: CompiledLifecycle[object]
) -> None:
    """Every compiled transition is a Mermaid edge, or for an internal one a state line."""
    text = (GENERATED / f"{slug}.mmd").read_text(encoding="utf-8")
    for t in compiled.transitions:
        source, target = t.source.value, t.target.value  # type: ignore[attr-defined]
        if t.internal:
            line = f"    {source} : {transition_label(t)}"
        else:
            line = f"    {source} --> {target} : {transition_label(t)}"
        assert line in text.splitlines(), line


def test_spec_2_labels_read_event_guards_directives() -> None:
    """An edge label reads `event [guard, !guard] / directive, directive`."""
    (transition,) = [
        t for t in compile_lifecycle(RunLifecycle, RunStatus).transitions if t.event == "complete"
    ]
    assert transition_label(transition) == "complete [no_step_left] / emit_output, emit_lifecycle"
    assert DirectiveKind.emit_output in transition.directives
