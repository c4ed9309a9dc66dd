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


def test_spec_6_the_step_diagram_draws_its_boxes_with_at_most_fifteen_edges() -> None:
    """SPEC-6: the step diagram, grouped into its boxes, draws at most 15 edges (the initial
    arrow included), and every compiled transition is one of them: from its status or from a
    box that holds it, to its target, with its guards and directives, its event named; where
    one event has several guarded transitions from a place, the label gives their order."""
    from interruptible._lifecycle import STEP_STATUS_GROUPS
    from interruptible._views._diagrams import grouped, labelled_graph

    compiled = compile_lifecycle(StepLifecycle, StepStatus)
    graph = grouped(labelled_graph(StepLifecycle, compiled), STEP_STATUS_GROUPS)
    dot_text = (GENERATED / "step-lifecycle.dot").read_text(encoding="utf-8")
    assert sum("->" in line for line in dot_text.splitlines()) <= 15
    boxes = {name: {s.value for s in members} for name, members in STEP_STATUS_GROUPS}
    for t in compiled.transitions:
        if t.internal:
            continue
        source = t.source.value  # type: ignore[attr-defined]
        places = {source} | {name for name, members in boxes.items() if source in members}
        drawn = [
            edge
            for edge in graph.transitions
            if edge.source in places
            and list(edge.targets) == [t.target.value]  # type: ignore[attr-defined]
            and t.event in edge.event.split(", ")
            and edge.guards == [str(guard) for guard in t.guards]
            and edge.actions == [kind.value for kind in t.directives]
        ]
        assert len(drawn) == 1, transition_label(t)
    assert "effect_started</b> (1st)" in dot_text and "effect_started</b> (3rd)" in dot_text
    interrupted = {t.source.value for t in compiled.transitions if t.event == "interrupt"}  # type: ignore[attr-defined]
    assert boxes["active"] == interrupted  # the box is the table's, not a set of its own
