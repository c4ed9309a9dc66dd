"""What the definition check (spec/upgrades.md) costs; one command, ratios from the same run.

    .venv/bin/python bench/bench_upgrades.py [--quick]

Every resume, gate answer and effect answer passes the writer's meeting check (UPG-3); for a run
that follows a registered definition it is one membership test. The goals, as ratios to floors
measured in this run on this machine:

- the check's own cost, timed alone, under 2% of a resume (journaled on synced SQLite, measured
  in this run) and under 1% of a step (each step's answer passes it once);
- end to end, a resume and a step with the check against without it, printed beside how far two
  identical arms differ (a 2% difference is below that noise on a shared machine, which is why
  the goals are on the check's own cost);
- the slow path, a run that moves (a six-step definition followed), printed in microseconds: it
  is paid once per run, at its first meeting.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from interruptible import (
    Coordinator,
    ResumeRequested,
    Runtime,
    Sequence,
    StepClass,
    StepDefinition,
)
from interruptible._core._definitions import judge
from interruptible._runtime._upgrades import Meeting


def pipeline(steps: int, version: str = "1") -> Sequence:
    return Sequence(
        "p",
        tuple(
            StepDefinition(f"s{i}", StepClass.system, {"name": "noop", "arguments": {}})
            for i in range(steps)
        ),
        version,
    )


def gate_pipeline(version: str = "1") -> Sequence:
    gate = StepDefinition("g", StepClass.human_gate, {"question": "?"})
    return Sequence("p", (*pipeline(5, version).steps, gate), version)


def report(name: str, measured: str, goal: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    print(f"{name:<44} {measured:<46} {goal:<14} {verdict}", flush=True)


async def resumes(db: Path, n: int, checked: bool) -> float:
    """Median microseconds of interrupt+resume pairs' resume halves on one run at its gate."""
    mode = gate_pipeline()
    times: list[float] = []
    async with Runtime(db, modes=[mode], functions={"noop": lambda: None}) as rt:
        if not checked:
            rt._writer.meeting = None  # type: ignore[union-attr]
        await rt.run("c", None, mode="p", run_id="r")
        while rt.snapshot("c").steps[-1].status.value != "waiting_input":
            await asyncio.sleep(0.001)
        for _ in range(n):
            await rt.interrupt_run("c", run_id="r")
            started = time.perf_counter()
            await rt.resume_run("c", "r")
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def steps_per_run(db: Path, steps: int, checked: bool) -> float:
    """Microseconds per step of one run of `steps` system steps."""
    mode = pipeline(steps)
    async with Runtime(db, modes=[mode], functions={"noop": lambda: None}) as rt:
        if not checked:
            rt._writer.meeting = None  # type: ignore[union-attr]
        started = time.perf_counter()
        handle = await rt.run("c", None, mode="p", run_id="r")
        await handle.wait()
        return (time.perf_counter() - started) / steps * 1e6


def fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def alternate(measure: Any, trials: int) -> tuple[float, float, float]:
    """Medians of `measure(checked)` with the check on and off, trials interleaved so both
    see the same machine, and the noise: how far two arms without it differ."""
    on: list[float] = []
    off: list[float] = []
    again: list[float] = []
    for _ in range(trials):
        on.append(measure(True))
        off.append(measure(False))
        again.append(measure(False))
    a, b = statistics.median(off), statistics.median(again)
    return statistics.median(on), a, max(a, b) / min(a, b)


def check_ns(n: int) -> float:
    """Nanoseconds of the meeting check alone, for a run that follows a registered definition."""
    mode = pipeline(6)
    coordinator = Coordinator([mode])
    state = _state_at_step(coordinator, mode)
    meeting = Meeting(lambda: coordinator, (), lambda: "e", lambda: 0.0)
    event = ResumeRequested("e", "c", "r")
    started = time.perf_counter()
    for _ in range(n):
        meeting(state, event)
    return (time.perf_counter() - started) / n * 1e9


def slow_path_us(n: int) -> float:
    """Microseconds to judge a run of a six-step definition against a compatible newer one."""
    old, new = pipeline(6), pipeline(7, "2")
    state = _state_at_step(Coordinator([old]), old)
    run = state.run("r")
    assert run is not None
    registered = Coordinator([new])
    started = time.perf_counter()
    for _ in range(n):
        verdict = judge(run, registered.versions, registered.current)
    assert verdict.kind == "compatible"
    return (time.perf_counter() - started) / n * 1e6


def _state_at_step(coordinator: Coordinator, mode: Sequence) -> Any:
    """A run of `mode` with its first three steps kept and the fourth in flight."""
    from interruptible import EffectCompleted, EffectStarted, RunRequested, initial_state

    fingerprint, definition = coordinator.current["p"]
    state = coordinator.reduce(
        initial_state(),
        RunRequested("e0", "c", "r", "p", None, None, False, 0.0, None, fingerprint, definition),
    ).state
    for i in range(3):
        args = ("c", "r", f"s{i}", f"r/s{i}/1", 1)
        state = coordinator.reduce(state, EffectStarted(f"a{i}", *args)).state
        state = coordinator.reduce(state, EffectCompleted(f"b{i}", *args, output=i)).state
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    quick = parser.parse_args().quick
    trials, n, steps = (3, 30, 200) if quick else (9, 150, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        counter = iter(range(10**6))

        def resume(checked: bool) -> float:
            db = fresh(directory, f"resume-{next(counter)}.db")
            return asyncio.run(resumes(db, n, checked))

        def step(checked: bool) -> float:
            db = fresh(directory, f"steps-{next(counter)}.db")
            return asyncio.run(steps_per_run(db, steps, checked))

        # The goals are the check's own share, timed alone: end to end, a 2% difference is
        # below what two identical arms differ by on a shared machine (the noise is printed).
        on, off, noise = alternate(resume, trials)
        alone = check_ns(200_000)
        report(
            "the check per resume (timed alone)",
            f"{alone:.0f} ns = {alone / 1000 / off * 100:.3f}% of a resume ({off:.0f} us)",
            "< 2%",
            alone / 1000 / off < 0.02,
        )
        report(
            "  end to end: resume with / without it",
            f"{on / off:.3f}x (identical arms differ {noise:.3f}x)",
            "",
            None,
        )
        on, off, noise = alternate(step, trials)
        report(
            "the check per step (one answer, alone)",
            f"{alone:.0f} ns = {alone / 1000 / off * 100:.3f}% of a step ({off:.0f} us)",
            "< 1%",
            alone / 1000 / off < 0.01,
        )
        report(
            "  end to end: a step with / without it",
            f"{on / off:.3f}x (identical arms differ {noise:.3f}x)",
            "",
            None,
        )
        slow = slow_path_us(2000)
        report(
            "a run that moves: judging it (6 steps)",
            f"{slow:.1f} us, once, at its first meeting",
            "",
            None,
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
