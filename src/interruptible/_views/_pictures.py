"""Pictures of one run, from its journal: the step lifecycle with the statuses the run's steps
passed through lit (`interruptible inspect --run RUN_ID --diagram FILE`), and the run's timeline
(`--timeline FILE`).

Theory of operation
-------------------
The run's conversation is folded event by event with the coordinator, as `inspect` folds it;
after each event, each step of the run whose status changed gets that status appended to its
path (every step starts `pending`). The diagram is the step lifecycle that `interruptible spec`
draws for spec/ (the same `_diagrams.dot`, the same layout and edge labels), with each status
some step reached filled, and a caption that gives each step's path in order. Graphviz renders
it; the file's suffix picks the format (`.svg`, `.png`, `.pdf`, `.dot` for the source).

The timeline is one row per step and a bar per attempt over wall-clock time (from the run's
request), from its journaled start to the event that ended it (the facts are read by
`_history.py`, which the traces share); a bar takes the colour that the spec's step diagram
gives its ending event (`effect_completed`, `effect_failed`, `effect_canceled`, `effect_lost`),
and an attempt still live at the journal's end is grey and hatched, as is the wait of a human
gate for its answer. Interrupts, resumes, cancels and gate
answers are marked at their times, in their events' colours, with their reason and principal.
matplotlib draws it (the `timeline` extra), through its object API: no global state (pyplot,
backends) of an application is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._core import Coordinator, initial_state
from .._history import run_history
from .._lifecycle import STEP_STATUS_GROUPS, StepLifecycle, StepStatus
from .._vocabulary import Event

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
    from .._interpreter import compile_lifecycle
    from . import _diagrams

    compiled = compile_lifecycle(StepLifecycle, StepStatus)
    source = _diagrams.dot(StepLifecycle, compiled, rankdir="LR", groups=STEP_STATUS_GROUPS)
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


# --- the timeline ---------------------------------------------------------------------------------

_LIVE: Final = "#9e9e9e"
TIMELINE_FORMATS: Final = frozenset({"svg", "png", "pdf"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a step: when it started and ended (seconds from the run's request), and
    the lifecycle event that ended it (None: still live at the journal's end)."""

    step_id: str
    attempt: int
    start: float
    end: float
    ended_by: str | None
    gate: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """A request at a time: `interrupt`, `resume`, `cancel` or `answer` (of step `step_id`)."""

    kind: str
    at: float
    step_id: str | None = None
    note: str = ""


@dataclass(slots=True)
class Timeline:
    """What a run's timeline shows, read from its conversation's events."""

    run_id: str
    steps: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


def timeline(coordinator: Coordinator, events: Sequence[Event], run_id: str) -> Timeline:
    """The attempts and requests of run `run_id`, from its conversation's `events`."""
    history = run_history(events, run_id)
    result = Timeline(run_id, list(history.steps))
    run_events = [event for event in events if getattr(event, "run_id", None) == run_id]
    if not run_events:
        return result
    origin = run_events[0].at  # its request: a run's first event
    last = max(0.0, max(event.at - origin for event in run_events))
    gates = {
        step.step_id
        for mode in coordinator.modes.values()
        for step in getattr(mode, "steps", ())
        if getattr(step, "step_class", None) is not None and step.step_class.value == "human_gate"
    }
    for fact in history.attempts:
        start = fact.start - origin
        end = max(last, start) if fact.end is None else fact.end - origin
        gate = fact.step_id in gates
        result.attempts.append(Attempt(fact.step_id, fact.attempt, start, end, fact.ended_by, gate))
    for request in history.requests:
        result.marks.append(
            Mark(
                request.kind,
                request.at - origin,
                request.step_id,
                _who(request.reason, request.principal),
            )
        )
    return result


def _who(reason: str | None, principal: str | None) -> str:
    parts = [part for part in (reason, f"by {principal}" if principal else "") if part]
    return ", ".join(parts)


# A request's mark takes the colour of the step lifecycle event it fires.
_MARK_EVENTS: Final = {
    "interrupt": "interrupt",
    "resume": "schedule",
    "cancel": "abandon",
    "answer": "human_input_received",
}


def write_timeline(
    coordinator: Coordinator, events: Sequence[Event], run_id: str, out: Path
) -> Path:
    """Draw run `run_id`'s timeline into `out` (`.svg`, `.png` or `.pdf`); `ValueError` for
    another suffix, `ImportError` without matplotlib."""
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in TIMELINE_FORMATS:
        raise ValueError(
            f"{out}: the timeline's format comes from its suffix, one of "
            f"{', '.join(sorted('.' + f for f in TIMELINE_FORMATS))}"
        )
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from .._interpreter import compile_lifecycle
    from ._diagrams import event_colors

    colors = event_colors(compile_lifecycle(StepLifecycle, StepStatus))
    data = timeline(coordinator, events, run_id)
    rows = {step_id: row for row, step_id in enumerate(data.steps)}
    figure = Figure(figsize=(11, 2.0 + 0.45 * max(1, len(rows))), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for attempt in data.attempts:
        row = rows[attempt.step_id]
        width = max(attempt.end - attempt.start, 0.002)
        live = attempt.ended_by is None
        color = _LIVE if live else colors.get(str(attempt.ended_by), _LIVE)
        axes.broken_barh(
            [(attempt.start, width)],
            (row - 0.3, 0.6),
            facecolors=color,
            alpha=0.85,
            hatch="//" if (live or attempt.gate) else None,
            edgecolor="black",
            linewidth=0.5,
        )
        axes.text(attempt.start, row - 0.34, f"#{attempt.attempt}", fontsize=7, va="bottom")
    top = -0.7
    for mark in data.marks:
        color = colors.get(_MARK_EVENTS.get(mark.kind, ""), "black")  # an upgrade: black
        if mark.step_id is not None and mark.step_id in rows:
            axes.plot([mark.at], [rows[mark.step_id]], marker="D", color=color, markersize=7)
        else:
            axes.axvline(mark.at, color=color, linestyle="--", linewidth=1)
        label = mark.kind + (f" ({mark.note})" if mark.note else "")
        axes.text(mark.at, top, label, color=color, fontsize=8, rotation=20, va="bottom")
    axes.set_yticks(range(len(data.steps)), labels=data.steps)
    axes.set_ylim(len(data.steps) - 0.4, -1.2)
    axes.set_xlabel("seconds since the run was requested")
    axes.set_title(f"run {run_id}", loc="left", fontsize=11, pad=28)
    legend = [
        Patch(facecolor=colors[name], label=name)
        for name in ("effect_completed", "effect_failed", "effect_canceled", "effect_lost")
    ] + [Patch(facecolor=_LIVE, hatch="//", label="live / waiting for input")]
    # Beside the axes, never over a bar.
    axes.legend(handles=legend, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="x", alpha=0.3)
    # A fixed salt for the SVG's ids, for this call only: the same run draws the same bytes.
    with rc_context({"svg.hashsalt": "interruptible"}):
        figure.savefig(out, format=fmt, metadata=_metadata(fmt))
    return out


def _metadata(fmt: str) -> dict[str, Any]:
    # No creation date or tool version in the file: the same run draws the same bytes.
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    if fmt == "pdf":
        return {"CreationDate": None, "Creator": None, "Producer": None}
    return {"Software": None}
