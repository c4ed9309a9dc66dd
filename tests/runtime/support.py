"""Shared helpers for the runtime tests: running coroutines, pipelines, journal invariants."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from interruptible import (
    Coordinator,
    Disposition,
    EffectCompleted,
    EmitOutput,
    FailureCategory,
    HumanInputReceived,
    Mode,
    RunSnapshot,
    RunStatus,
    Sequence,
    StartEffect,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
    initial_state,
)
from interruptible._journal import Journal
from interruptible._runtime import current_effect

T = TypeVar("T")


def arun(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run a coroutine to its end on a fresh loop, failing after `timeout` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (in small sleeps: a test helper, not the runtime) until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def tool_step(
    step_id: str, name: str, policy: StepPolicy | None = None, **arguments: Any
) -> StepDefinition:
    """A `tool` step calling `name(**arguments)`."""
    return StepDefinition(
        step_id,
        StepClass.tool,
        {"name": name, "arguments": arguments},
        policy if policy is not None else StepPolicy(),
    )


def system_step(step_id: str, name: str, **arguments: Any) -> StepDefinition:
    """A `system` step calling `name(**arguments)`."""
    return StepDefinition(step_id, StepClass.system, {"name": name, "arguments": arguments})


class Ledger:
    """Counts executions by idempotency key, in memory and optionally in a side file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.keys: Counter[str] = Counter()

    def record(self) -> str:
        key = current_effect().idempotency_key
        self.keys[key] += 1
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(key + "\n")
        return key

    def steps(self) -> Counter[str]:
        """Executions per `run_id:step_id` (all attempts)."""
        counts: Counter[str] = Counter()
        for key, n in self.keys.items():
            counts[key.rsplit(":", 1)[0]] += n
        return counts


@dataclass
class JournalFacts:
    """What folding a whole journal shows, for the invariant checks."""

    conversations: int = 0
    events: int = 0
    runs: dict[tuple[str, str], RunStatus] = field(default_factory=dict)
    outputs: Counter[tuple[str, str]] = field(default_factory=Counter)
    kept: dict[tuple[str, str, str], int] = field(default_factory=dict)  # step -> kept attempt
    starts: list[tuple[str, str, str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def assert_ok(self, *, all_terminal: bool = True) -> None:
        assert not self.violations, self.violations[:10]
        for key, status in self.runs.items():
            if status in (RunStatus.completed, RunStatus.failed, RunStatus.canceled):
                assert self.outputs[key] == 1, (key, status, self.outputs[key])
            else:
                assert not all_terminal, (key, status)
                assert self.outputs[key] == 0, (key, status)


def check_journal(journal: Journal, coordinator: Coordinator) -> JournalFacts:
    """Fold every conversation of the journal and check RT-3 and RT-4 over it."""
    facts = JournalFacts()
    reduce = coordinator.reduce
    for cid in journal.conversations():
        facts.conversations += 1
        state = initial_state()
        ended: set[str] = set()
        for record in journal.read(cid):
            facts.events += 1
            event = record.event
            outcome = reduce(state, event)
            if outcome.disposition is Disposition.ignored:
                facts.ignored[str(outcome.reason)] += 1
            elif outcome.disposition is Disposition.rejected:
                facts.rejected[type(outcome.error).__name__] += 1
            for directive in outcome.directives:
                if isinstance(directive, EmitOutput):
                    facts.outputs[(cid, directive.run_id)] += 1
                    if directive.run_id in ended:
                        facts.violations.append(
                            f"RT-3: second terminal output for {directive.run_id}"
                        )
                    ended.add(directive.run_id)
                elif isinstance(directive, StartEffect):
                    key = (cid, directive.run_id, directive.step_id)
                    if directive.run_id in ended:
                        facts.violations.append(f"RT-3: start after the end of {directive.run_id}")
                    if key in facts.kept:
                        facts.violations.append(f"RT-4: {key} started again after its kept result")
                    facts.starts.append((*key, directive.attempt))
            state = outcome.state
            if outcome.applied and isinstance(event, EffectCompleted | HumanInputReceived):
                run = state.runs.get(event.run_id)
                step = run.step(event.step_id) if run is not None else None
                if step is not None and step.result is not None:
                    facts.kept.setdefault((cid, event.run_id, event.step_id), step.result.attempt)
        for run_id, run in state.runs.items():
            facts.runs[(cid, run_id)] = run.status
    return facts


def pipeline(name: str, steps: Iterable[StepDefinition]) -> Mode:
    """A `Sequence` mode."""
    return Sequence(name, tuple(steps))


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m interruptible ARGS` from the repository, as a person would run it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "interruptible", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def assert_upstream_down(snapshot: RunSnapshot) -> None:
    """The 3.4.1.2 scenario's end, on any journal: the run failed with the envelope of `flaky`'s
    second transient failure ("upstream is down", code 503), after `first` completed."""
    assert snapshot.status is RunStatus.failed
    error = snapshot.error
    assert error is not None
    assert (
        error.category,
        error.message,
        error.step_id,
        error.attempt,
        error.retryable,
    ) == (FailureCategory.transient, "upstream is down", "flaky", 2, True)
    assert error.details == {"code": 503}
    assert [s.status for s in snapshot.steps] == [StepStatus.completed, StepStatus.failed]
