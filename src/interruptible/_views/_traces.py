"""Golden traces: events in, outcomes (directives and states) out, as JSONL conformance vectors.

Theory of operation
-------------------
A trace is a scenario driven through the real core once and written to `spec/traces/NAME.jsonl`:
the first line is a header naming the modes (as JSON a foreign runtime can rebuild: a `Sequence`
by its step definitions, an `AgentLoop` by its settings) and the operator principals; each
further line is one event and what `reduce` answered: the disposition, the ignored reason or the
error code, the directives, and a projection of the conversation state (run and step statuses,
attempts, effect ids, kept outputs). A runtime in another language replays the events through
its own reducer and compares line by line; our own tests do the same with `verify_trace`.

The scenario scripts live here, beside the code that writes and checks them, so that
`interruptible spec` regenerates the traces and a drift test catches a stale copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._codec import event_from_json, to_json, value_from_json, value_to_json
from .._core import (
    AgentLoop,
    ConversationState,
    Coordinator,
    Mode,
    Outcome,
    OwnerOrOperator,
    Sequence,
)
from .._lifecycle import StepClass
from .._verify._driver import CoreDriver
from .._vocabulary import (
    Backoff,
    FailureCategory,
    OnFailure,
    StepDefinition,
    StepPolicy,
)

TRACE_VERSION: Final = 1
OPERATORS: Final = ("ops",)

_RETRYING = StepPolicy(
    max_attempts=2,
    backoff=Backoff(initial=0.5, multiplier=2.0, max_delay=5.0),
    retry_on=(FailureCategory.transient,),
)
PIPELINE: Final = Sequence(
    "pipeline",
    (
        StepDefinition("plan", StepClass.llm, {"prompt": "plan"}, _RETRYING),
        StepDefinition("fetch", StepClass.tool, {"name": "fetch", "arguments": {}}, _RETRYING),
        StepDefinition("approve", StepClass.human_gate, {"question": "ship?"}),
        StepDefinition("wait", StepClass.timer, {"seconds": 1}),
        StepDefinition(
            "publish",
            StepClass.system,
            {"action": "publish"},
            StepPolicy(on_failure=OnFailure.continue_),
        ),
    ),
)
AGENT: Final = AgentLoop(name="agent", tools=("search",), max_turns=2)
TRACE_MODES: Final[tuple[Mode, ...]] = (PIPELINE, AGENT)


def trace_coordinator() -> Coordinator:
    """The coordinator the golden traces are written with."""
    return Coordinator(TRACE_MODES, OwnerOrOperator(frozenset(OPERATORS)))


# --- projections -------------------------------------------------------------------------------


def project_state(state: ConversationState) -> dict[str, Any]:
    """The part of a conversation state a foreign runtime must reproduce exactly."""
    return {
        "conversation_id": state.conversation_id,
        "active_run_id": state.active_run_id,
        "history": list(state.history),
        "runs": {
            run.run_id: {
                "status": run.status.value,
                "reason": run.reason,
                "error": None if run.error is None else value_to_json(run.error),
                "output": run.output,
                "steps": [
                    {
                        "step_id": step.step_id,
                        "status": step.status.value,
                        "attempt": step.attempt,
                        "failures": step.failures,
                        "effect_id": step.effect_id,
                        "output": None if step.result is None else step.result.output,
                    }
                    for step in run.steps
                ],
            }
            for run in sorted(state.runs.values(), key=lambda r: r.run_id)
        },
    }


def project_outcome(outcome: Outcome) -> dict[str, Any]:
    """An outcome as a trace line: disposition, reason or error code, directives, state."""
    return {
        "disposition": outcome.disposition.value,
        "ignored": None if outcome.reason is None else outcome.reason.value,
        "error": None if outcome.error is None else outcome.error.code,
        "directives": [to_json(d) for d in outcome.directives],
        "state": project_state(outcome.state),
    }


def _mode_json(mode: Mode) -> dict[str, Any]:
    if isinstance(mode, Sequence):
        return {
            "kind": "sequence",
            "name": mode.name,
            "steps": [value_to_json(step) for step in mode.steps],
        }
    if isinstance(mode, AgentLoop):
        return {
            "kind": "agent_loop",
            "name": mode.name,
            "tools": list(mode.tools),
            "max_turns": mode.max_turns,
            "llm_policy": value_to_json(mode.llm_policy),
            "tool_policy": value_to_json(mode.tool_policy),
        }
    raise TypeError(f"a golden trace cannot describe mode {mode!r}")  # pragma: no cover


def mode_from_json(document: dict[str, Any]) -> Mode:
    """Rebuild a built-in mode from a trace header's description."""
    if document["kind"] == "sequence":
        steps = tuple(value_from_json(StepDefinition, step) for step in document["steps"])
        return Sequence(document["name"], steps)
    return AgentLoop(
        name=document["name"],
        tools=tuple(document["tools"]),
        max_turns=document["max_turns"],
        llm_policy=value_from_json(StepPolicy, document["llm_policy"]),
        tool_policy=value_from_json(StepPolicy, document["tool_policy"]),
    )


# --- the scenarios -------------------------------------------------------------------------------


def _gate_and_rest(d: CoreDriver, run_id: str) -> None:
    d.started(run_id, "approve")
    d.answer(run_id, "approve", "yes")
    d.started(run_id, "wait")
    d.complete(run_id, "wait")
    d.started(run_id, "publish")
    d.complete(run_id, "publish", {"url": "u"})


def _completes(d: CoreDriver) -> None:
    d.run("r1", "pipeline", {"topic": "t"})
    d.started("r1", "plan")
    d.progress("r1", "plan", 1, {"pct": 50})
    d.complete("r1", "plan", {"plan": ["fetch"]})
    d.started("r1", "fetch")
    d.complete("r1", "fetch", "page")
    _gate_and_rest(d, "r1")
    d.complete("r1", "publish", "late")  # late: the run has ended


def _fails(d: CoreDriver) -> None:
    d.run("r1", "pipeline")
    d.started("r1", "plan")
    d.fail("r1", "plan", FailureCategory.transient, "503", retryable=True)
    d.started("r1", "plan")
    d.fail("r1", "plan", FailureCategory.transient, "503 again", retryable=True)
    d.fail("r1", "plan", FailureCategory.transient, "stale", retryable=True, attempt=1)


def _interrupt_resume(d: CoreDriver) -> None:
    d.run("r1", "pipeline")
    d.started("r1", "plan")
    d.complete("r1", "plan", "p")
    d.started("r1", "fetch")
    d.interrupt("r1", principal="mallory")  # refused, audited
    d.interrupt("r1", reason="user_stop")
    d.interrupt("r1", reason="user_stop")  # duplicate
    d.resume("r1")  # before the cancel answer: waits
    d.resume("r1")  # duplicate
    d.canceled("r1", "fetch")
    d.started("r1", "fetch")
    d.complete("r1", "fetch", "page")
    _gate_and_rest(d, "r1")


def _crossed_completion(d: CoreDriver) -> None:
    d.run("r1", "pipeline")
    d.started("r1", "plan")
    d.interrupt("r1")
    d.complete("r1", "plan", "crossed")
    d.answer("r1", "approve", "early")  # kept until the gate opens
    d.resume("r1")
    d.started("r1", "fetch")
    d.complete("r1", "fetch", "page")
    d.started("r1", "approve")  # opens with the early answer
    d.cancel("r1", reason="enough")
    d.cancel("r1")  # duplicate of an ended run


def _supersede_and_conflicts(d: CoreDriver) -> None:
    d.run("r1", "pipeline", {"v": 1})
    d.run("r1", "pipeline", {"v": 1})  # duplicate request
    d.run("r1", "pipeline", {"v": 2})  # conflict
    d.run("r2", "pipeline")  # in progress
    d.started("r1", "plan")
    d.run("r2", "pipeline", supersede=True)
    d.complete("r1", "plan", "late")
    d.resume("r1")  # not interrupted: refused


def _agent_turns(d: CoreDriver) -> None:
    d.run("a1", "agent", {"prompt": "weather in Paris?"})
    d.started("a1", "turn-1.llm")
    call = {"id": "c1", "name": "search", "arguments": {"q": "Paris weather"}}
    d.complete("a1", "turn-1.llm", {"content": "", "tool_calls": [call]})
    d.started("a1", "turn-1.tool-c1")
    d.interrupt("a1")
    d.complete("a1", "turn-1.tool-c1", "sunny")  # crossed: kept, never called again
    d.resume("a1")
    d.started("a1", "turn-2.llm")
    d.complete("a1", "turn-2.llm", {"content": "Sunny.", "tool_calls": []})


SCENARIOS: Final[dict[str, tuple[str, Callable[[CoreDriver], None]]]] = {
    "completes": (
        "a five-step run of every step class completes; a late answer is ignored",
        _completes,
    ),
    "fails": ("a retried step spends its attempts and fails the run; a stale answer", _fails),
    "interrupt-resume": (
        "interrupt, duplicates, resume before the cancel answer",
        _interrupt_resume,
    ),
    "crossed-completion": (
        "a result crosses the cancel; an early gate answer; cancel",
        _crossed_completion,
    ),
    "supersede": (
        "duplicate and conflicting requests, one active run, supersede",
        _supersede_and_conflicts,
    ),
    "agent-loop": ("an agent turn interrupted inside its tool call", _agent_turns),
}


# --- writing and checking -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trace:
    """One golden trace: its header and its lines (event plus expected outcome)."""

    name: str
    header: dict[str, Any]
    lines: tuple[dict[str, Any], ...]


def record(name: str) -> Trace:
    """Drive scenario `name` through the core and record its trace."""
    description, script = SCENARIOS[name]
    driver = CoreDriver(trace_coordinator())
    script(driver)
    header = {
        "trace": name,
        "version": TRACE_VERSION,
        "description": description,
        "conversation_id": driver.conversation_id,
        "operators": list(OPERATORS),
        "modes": [_mode_json(mode) for mode in TRACE_MODES],
    }
    lines = tuple(
        {"event": to_json(event), **project_outcome(outcome)}
        for event, outcome in zip(driver.events, driver.outcomes, strict=True)
    )
    return Trace(name, header, lines)


def render(trace: Trace) -> str:
    """The JSONL text of a trace (sorted keys, one JSON document per line)."""
    documents = [trace.header, *trace.lines]
    return "".join(
        json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n" for doc in documents
    )


def write_traces(directory: Path) -> list[Path]:
    """Write every scenario's trace into `directory`; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCENARIOS:
        path = directory / f"{name}.jsonl"
        path.write_text(render(record(name)))
        written.append(path)
    return written


def load_trace(path: Path) -> Trace:
    """Read a trace file."""
    header, *lines = (json.loads(line) for line in path.read_text().splitlines() if line)
    return Trace(header["trace"], header, tuple(lines))


def iter_traces(directory: Path) -> Iterator[Trace]:
    """Every trace under `directory`, by name."""
    for path in sorted(directory.glob("*.jsonl")):
        yield load_trace(path)


def verify_trace(trace: Trace, coordinator: Coordinator | None = None) -> list[str]:
    """Replay a trace through a coordinator; return the lines that differ (empty: all equal).

    Without a coordinator, one is rebuilt from the trace header alone, as a foreign runtime would.
    """
    if coordinator is None:
        modes = [mode_from_json(doc) for doc in trace.header["modes"]]
        coordinator = Coordinator(modes, OwnerOrOperator(frozenset(trace.header["operators"])))
    state = ConversationState()
    problems = []
    for number, line in enumerate(trace.lines, start=2):
        event = event_from_json(line["event"])
        outcome = coordinator.reduce(state, event)
        state = outcome.state
        expected = {key: value for key, value in line.items() if key != "event"}
        actual = json.loads(json.dumps(project_outcome(outcome), sort_keys=True))
        if actual != expected:
            differing = sorted(key for key in expected if expected[key] != actual.get(key))
            problems.append(f"{trace.name}.jsonl line {number}: {', '.join(differing)} differ")
    return problems
