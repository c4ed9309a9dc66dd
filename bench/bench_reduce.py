"""Throughput of the pure core's `reduce` against a bare dictionary-table reducer, same run.

The workload is a realistic event mix: a 10-step run of tool steps where every third step is
interrupted mid-flight, its effect answers the cancel, and the run is resumed; every step
reports progress once. The events are recorded once by driving the real core, then replayed
`ROUNDS` times through `reduce` (timed). The baseline folds the same event sequence through a
bare reducer: a dict of `(status, event) -> status` lookups over plain dicts, emitting one tuple
per directive, which is the least any table-driven reducer can do.

Goals (issue "The pure coordinator"): at least 100,000 events/s, and within 5x of the baseline.
Run: `python bench/bench_reduce.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from interruptible import (
    Coordinator,
    EffectCanceled,
    EffectCompleted,
    EffectProgress,
    EffectStarted,
    Event,
    InterruptRequested,
    ResumeRequested,
    Sequence,
    StepClass,
    StepDefinition,
    initial_state,
)
from interruptible._verify._driver import CoreDriver

STEPS = 10
ROUNDS = 300


def record_events() -> tuple[Coordinator, list[Event]]:
    """Drive one 10-step run with interrupts; return the coordinator and the events it took."""
    mode = Sequence(
        "bench", tuple(StepDefinition(f"s{i}", StepClass.tool, {"i": i}) for i in range(STEPS))
    )
    coordinator = Coordinator([mode])
    driver = CoreDriver(coordinator)
    driver.run("r1", "bench")
    for i in range(STEPS):
        step = f"s{i}"
        driver.started("r1", step)
        driver.progress("r1", step, 1, {"pct": 50})
        if i % 3 == 0:
            driver.interrupt("r1")
            driver.canceled("r1", step)
            driver.resume("r1")
            driver.started("r1", step)
        driver.complete("r1", step, i)
    assert all(o.applied for o in driver.outcomes), "the bench workload must be all applied"
    return coordinator, driver.events


# The bare baseline: the same lifecycle facts as a flat table over plain dicts.
_STEP_TABLE = {
    ("pending", "schedule"): "scheduled",
    ("scheduled", "effect_started"): "running",
    ("running", "effect_progress"): "running",
    ("running", "effect_completed"): "completed",
    ("running", "interrupt"): "cancelling",
    ("cancelling", "effect_canceled"): "pending",
}
_RUN_TABLE = {
    ("running", "interrupt"): "interrupted",
    ("interrupted", "resume"): "running",
    ("running", "complete"): "completed",
}
_KIND = {
    EffectStarted: "effect_started",
    EffectProgress: "effect_progress",
    EffectCompleted: "effect_completed",
    EffectCanceled: "effect_canceled",
    InterruptRequested: "interrupt",
    ResumeRequested: "resume",
}


def bare_reduce(state: dict[str, object], event: Event) -> tuple[dict[str, object], list[tuple]]:
    """A minimal dict-table reducer over the same events (no validation, no modes)."""
    kind = _KIND.get(type(event), "run_requested")
    steps: dict[str, str] = dict(state["steps"])  # type: ignore[call-overload]
    out: list[tuple] = []
    run = state["run"]
    if kind == "run_requested":
        run = "running"
        steps = {f"s{i}": "pending" for i in range(STEPS)}
        steps["s0"] = _STEP_TABLE[("pending", "schedule")]
        out.append(("start_effect", "s0"))
    elif kind in ("interrupt", "resume"):
        run = _RUN_TABLE[(run, kind)]  # type: ignore[index]
        for step_id, status in steps.items():
            if kind == "interrupt" and status == "running":
                steps[step_id] = _STEP_TABLE[(status, "interrupt")]
                out.append(("cancel_effects", step_id))
            elif kind == "resume" and status == "pending" and step_id == state["current"]:
                steps[step_id] = "scheduled"
                out.append(("start_effect", step_id))
        out.append(("emit_lifecycle", run))
    else:
        step_id = event.step_id  # type: ignore[union-attr]
        steps[step_id] = _STEP_TABLE[(steps[step_id], kind)]
        out.append(("emit_lifecycle", step_id, steps[step_id]))
        if kind == "effect_completed":
            index = int(step_id[1:]) + 1
            if index < STEPS:
                steps[f"s{index}"] = "scheduled"
                out.append(("start_effect", f"s{index}"))
            else:
                run = _RUN_TABLE[(run, "complete")]  # type: ignore[index]
                out.append(("emit_output", run))
    current = next((s for s, v in steps.items() if v not in ("completed",)), None)
    return {"run": run, "steps": steps, "current": current}, out


def time_folds(fold: Callable[[], object], rounds: int) -> float:
    """Seconds per fold, best of three batches (the machines are shared and noisy)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            fold()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def main() -> None:
    coordinator, events = record_events()
    reduce = coordinator.reduce

    def fold_core() -> object:
        state = initial_state()
        for event in events:
            state = reduce(state, event).state
        return state

    def fold_bare() -> object:
        state: dict[str, object] = {"run": None, "steps": {}, "current": "s0"}
        for event in events:
            state, _ = bare_reduce(state, event)
        return state

    core = time_folds(fold_core, ROUNDS)
    bare = time_folds(fold_bare, ROUNDS)
    n = len(events)
    core_rate, bare_rate = n / core, n / bare
    ratio = core / bare
    print(f"workload: {n} events per run (10 steps, interrupts every third step)")
    print(f"reduce          {core_rate:>12,.0f} events/s  {core / n * 1e6:7.2f} us/event")
    print(f"bare dict table {bare_rate:>12,.0f} events/s  {bare / n * 1e6:7.2f} us/event")
    print(f"ratio reduce/bare: {ratio:.2f}x")
    print(f"goal >= 100,000 events/s: {'PASS' if core_rate >= 100_000 else 'MISS'}")
    print(f"goal within 5x of bare:   {'PASS' if ratio <= 5 else 'MISS'}")


if __name__ == "__main__":
    main()
