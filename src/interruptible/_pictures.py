"""Pictures of one run, from its journal: the step lifecycle with the statuses the run's steps
passed through lit (`interruptible inspect --run RUN_ID --diagram FILE`).

Theory of operation
-------------------
The run's conversation is folded event by event with the coordinator, as `inspect` folds it;
after each event, each step of the run whose status changed gets that status appended to its
path (every step starts `pending`). The diagram is the step lifecycle that `interruptible spec`
draws for spec/ (the same `_diagrams.dot`, the same layout and edge labels), with each status
some step reached filled, and a caption that gives each step's path in order. Graphviz renders
it; the file's suffix picks the format (`.svg`, `.png`, `.pdf`, `.dot` for the source).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from ._core import Coordinator, initial_state
from ._lifecycle import StepLifecycle, StepStatus
from ._vocabulary import Event

# The fill of a status some step of the run passed through; the others stay white.
LIT: Final = "#ffd966"
FORMATS: Final = frozenset({"svg", "png", "pdf", "dot"})
_NODE: Final = re.compile(r"^(?P<name>[a-z_]+) \[(?P<attrs>.*)\];$", re.M)


def step_paths(
    coordinator: Coordinator, events: Iterable[Event], run_id: str
) -> dict[str, list[StepStatus]]:
    """Each step of run `run_id`, with the statuses it passed through in order (from
    `pending`), folding the conversation's `events` from its beginning."""
    state = initial_state()
    paths: dict[str, list[StepStatus]] = {}
    for event in events:
        state = coordinator.reduce(state, event).state
        run = state.runs.get(run_id)
        if run is None:
            continue
        for step in run.steps:
            path = paths.setdefault(step.step_id, [StepStatus.pending])
            if path[-1] is not step.status:
                path.append(step.status)
    return paths


def lit_diagram_source(paths: dict[str, list[StepStatus]], run_id: str) -> str:
    """The step lifecycle's DOT, with the statuses in `paths` filled and each path captioned."""
    from . import _diagrams
    from ._interpreter import compile_lifecycle

    compiled = compile_lifecycle(StepLifecycle, StepStatus)
    source = _diagrams.dot(StepLifecycle, compiled, rankdir="TB")
    lit = {status.value for path in paths.values() for status in path}

    def fill(match: re.Match[str]) -> str:
        if match.group("name") not in lit:
            return match.group(0)
        attrs = match.group("attrs").replace("fillcolor=white", f'fillcolor="{LIT}"')
        return f"{match.group('name')} [{attrs}];"

    source = _NODE.sub(fill, source)
    caption = _caption(paths, run_id)
    return source.replace("label=StepLifecycle;", f"label={caption};\nlabelloc=t;", 1)


def _caption(paths: dict[str, list[StepStatus]], run_id: str) -> str:
    lines = [f"run {run_id}: the statuses its steps passed through are filled"]
    for step_id, path in paths.items():
        lines.append(f"{step_id}: " + " \u2192 ".join(status.value for status in path))
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\l".join(escaped) + '\\l"'


def write_lit_diagram(
    coordinator: Coordinator, events: Sequence[Event], run_id: str, out: Path
) -> Path:
    """Draw run `run_id`'s lit step lifecycle into `out` (format by suffix); `ValueError` for
    a suffix Graphviz is not asked to draw here."""
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(
            f"{out}: the diagram's format comes from its suffix, one of "
            f"{', '.join(sorted('.' + f for f in FORMATS))}"
        )
    source = lit_diagram_source(step_paths(coordinator, events, run_id), run_id)
    if fmt == "dot":
        out.write_text(source, encoding="utf-8")
        return out
    from statemachine.contrib.diagram.graphviz import run_graphviz

    data: Any = run_graphviz(source, fmt)
    out.write_bytes(data)
    return out
