"""Benchmarks of ownership across processes (spec/ownership.md); one command, one run.

    .venv/bin/python bench/bench_ownership.py [--quick]

1. Cross-process interrupt on SQLite: an owner process drives a run whose step waits; this
   process interrupts and resumes it 100 times through its own runtime (200 commands). Each
   command's latency is measured from the call here to the owner's answer being committed in the
   journal with the interruption (the answer's commit time, OWN-6), and to the answer reaching
   the caller. Goal: p99 under 100 ms.
2. What ownership costs a step: a 1,000-step run with `synchronous=NORMAL`, with the heartbeat
   and command watcher running (the default lease, and a 1 s lease that beats four times a
   second) against the same runtime with both stopped, alternated in rounds in this run.
   Goal: under 2% of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interruptible import Sequence, StepClass, StepDefinition
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime
from interruptible._runtime._owner import Owner

WAITING = Sequence(
    "waiting",
    (StepDefinition("wait", StepClass.tool, {"name": "wait", "arguments": {}}),),
)


def steps_mode(steps: int) -> Sequence:
    return Sequence(
        "steps",
        tuple(
            StepDefinition(f"s{i}", StepClass.system, {"name": "noop", "arguments": {}})
            for i in range(steps)
        ),
    )


async def forever() -> str:
    await asyncio.Event().wait()
    return "never"


async def child(db: str) -> None:
    """The owner: a run whose one step waits until cancelled; serves commands until killed."""
    async with Runtime(db, modes=[WAITING], tools={"wait": forever}) as rt:
        await rt.run("c", None, mode="waiting", run_id="r")
        print("ready", flush=True)
        await asyncio.Event().wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def cross_process(db: Path, cycles: int) -> tuple[list[float], list[float]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        journaled: list[float] = []
        answered: list[float] = []
        with SQLiteJournal(db, check_tail=0) as reader:
            async with Runtime(db, modes=[WAITING], tools={"wait": forever}) as rt:
                for _ in range(cycles):
                    for call in (rt.interrupt_run("c", "bench"), rt.resume_run("c", "r")):
                        start = time.time()
                        await call
                        answered.append(time.time() - start)
                        answer = reader.answer(_last_command(reader))
                        assert answer is not None
                        journaled.append(answer.answered_at - start)
        return journaled, answered
    finally:
        proc.kill()
        proc.wait()


def _last_command(journal: SQLiteJournal) -> int:
    return int(journal._query("SELECT max(command_id) FROM commands", ())[0][0])


async def one_run(db: Path, steps: int, lease: float, owned: bool) -> float:
    mode = steps_mode(steps)
    rt = Runtime(
        SQLiteJournal(db, synchronous="NORMAL"),
        modes=[mode],
        functions={"noop": lambda: None},
        lease=lease,
    )
    if not owned:  # the same runtime with its heartbeat and command watcher never started
        rt_start = Owner.start
        Owner.start = lambda self: None  # type: ignore[method-assign]
    try:
        async with rt:
            gc.collect()
            start = time.perf_counter()
            handle = await rt.run("c", None, mode="steps")
            await handle.wait()
            elapsed = time.perf_counter() - start
    finally:
        if not owned:
            Owner.start = rt_start  # type: ignore[method-assign]
        rt.journal.close()
    return steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(child(args.child))
        return 0
    cycles = 20 if args.quick else 100
    steps = 300 if args.quick else 1000
    rounds = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="bench-ownership-") as tmp:
        directory = Path(tmp)
        journaled, answered = asyncio.run(cross_process(directory / "x.db", cycles))
        p99 = percentile(journaled, 0.99) * 1e3
        print(
            f"{'cross-process command, call -> journaled by the owner':<56} "
            f"median {statistics.median(journaled) * 1e3:.1f} ms, p99 {p99:.1f} ms "
            f"({len(journaled)} commands)   goal p99 < 100 ms   {'PASS' if p99 < 100 else 'MISS'}"
        )
        print(
            f"{'cross-process command, call -> answer in the caller':<56} "
            f"median {statistics.median(answered) * 1e3:.1f} ms, "
            f"p99 {percentile(answered, 0.99) * 1e3:.1f} ms"
        )
        results: dict[str, list[float]] = {"none": [], "default": [], "1s": []}
        for n in range(rounds):
            for name, lease, owned in (
                ("none", 10.0, False),
                ("default", 10.0, True),
                ("1s", 1.0, True),
            ):
                db = directory / f"r{n}-{name}.db"
                results[name].append(asyncio.run(one_run(db, steps, lease, owned)))
        base = statistics.median(results["none"])
        for name, label in (("default", "default lease (10 s)"), ("1s", "1 s lease, 4 beats/s")):
            rate = statistics.median(results[name])
            cost = (base - rate) / base * 100
            print(
                f"{'ownership cost, NORMAL, ' + label:<56} {rate:,.0f} vs {base:,.0f} steps/s "
                f"without: {cost:+.1f}%   goal < 2%   {'PASS' if cost < 2 else 'MISS'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
