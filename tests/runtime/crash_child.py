"""The child process of the crash test: drives pipelines on a SQLite journal until killed.

Usage: crash_child.py DB SIDE_FILE SEED CONVERSATIONS MODE, MODE being `work` (start runs
forever, with random interrupts and resumes) or `finish` (start nothing new; drive every
unfinished run to its end, then print `finished`). Prints `ready` once the runtime is open
(the journal is folded and recovery has been queued).

Tools append their idempotency key to SIDE_FILE when they start, so the parent can count how
many times each step attempt really ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import Callable
from typing import Any

from interruptible import (
    InterruptibleError,
    RunStatus,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._runtime import Runtime, current_effect

TOOL = StepPolicy(max_attempts=3, timeout=5.0)

MODE = Sequence(
    "crashy",
    (
        StepDefinition("fetch", StepClass.tool, {"name": "work", "arguments": {"ms": 8}}, TOOL),
        StepDefinition("parse", StepClass.system, {"name": "parse", "arguments": {}}),
        StepDefinition("approve", StepClass.human_gate, {"question": "ok?"}),
        StepDefinition("enrich", StepClass.tool, {"name": "work", "arguments": {"ms": 15}}, TOOL),
        StepDefinition("pause", StepClass.timer, {"seconds": 0.02}),
        StepDefinition("store", StepClass.tool, {"name": "work", "arguments": {"ms": 5}}, TOOL),
        StepDefinition("notify", StepClass.system, {"name": "parse", "arguments": {}}),
    ),
)


def make_work(side: str) -> Callable[..., Any]:
    fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def work(ms: int) -> dict[str, int]:
        os.write(fd, (current_effect().idempotency_key + "\n").encode())
        await asyncio.sleep(ms / 1000)
        return {"ms": ms}

    return work


async def drive(rt: Runtime, cid: str, rng: random.Random, finish: bool) -> None:
    while True:
        try:
            state = rt.state(cid)
        except InterruptibleError:
            state = None
        if state is not None and state.active_run_id is not None:
            run_id = state.active_run_id
        elif finish:
            return
        else:
            k = len(state.run_ids) if state is not None else 0
            run_id = f"{cid}-r{k}"
            await rt.run(cid, {"k": k}, mode="crashy", run_id=run_id)
        with contextlib.suppress(InterruptibleError):
            await rt.provide_input(cid, run_id, "approve", "yes")  # kept until the gate opens
        while True:
            snapshot = rt.snapshot(cid, run_id)
            if snapshot.is_terminal:
                break
            if snapshot.status is RunStatus.interrupted:
                with contextlib.suppress(InterruptibleError):
                    await rt.resume_run(cid, run_id)
            elif not finish and rng.random() < 0.3:
                await asyncio.sleep(rng.random() * 0.03)
                try:
                    snapshot = await rt.interrupt_run(cid, run_id=run_id)
                    if rng.random() < 0.5:
                        continue  # leave it interrupted for a while (maybe across a kill)
                    await asyncio.sleep(rng.random() * 0.01)
                    await rt.resume_run(cid, run_id)
                except InterruptibleError:
                    pass
            await rt.wait(cid, run_id)


async def main() -> None:
    db, side, seed, conversations, mode = sys.argv[1:6]
    rng = random.Random(int(seed))
    finish = mode == "finish"
    async with Runtime(
        db,
        modes=[MODE],
        tools={"work": make_work(side)},
        functions={"parse": lambda: {"parsed": True}},
    ) as rt:
        print("ready", flush=True)
        cids = [f"c{i}" for i in range(int(conversations))]
        await asyncio.gather(*(drive(rt, cid, random.Random(rng.random()), finish) for cid in cids))
    print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
