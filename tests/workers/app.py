"""An application for worker processes under test (spec/workers.md): run it with
`interruptible worker --modes tests.workers.app:MODES --tools tests.workers.app:TOOLS`.

`ten` is ten `tool` steps. Each execution of a step appends `run_id step_id attempt pid time`
to the file named by `INTERRUPTIBLE_TEST_LEDGER` (when set), so a test can tell what ran, where
and when; it then sleeps `INTERRUPTIBLE_TEST_STEP_SECONDS` (default 0.01). `timed` is a step, a
timer of 2 s, and a step: the timer's deadline is journaled with its first start, so a worker
that takes the run over fires it then, not 2 s after it took over.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from interruptible import StepClass, StepDefinition, StepPolicy
from interruptible._core import Sequence
from interruptible._runtime import current_effect

TIMER_SECONDS = 2.0


async def work() -> str:
    """One step's work: note it in the ledger, wait the configured time, return (a coroutine:
    a worker runs hundreds at once without a thread each, and an interrupt cancels it)."""
    effect = current_effect()
    path = os.environ.get("INTERRUPTIBLE_TEST_LEDGER")
    if path:
        line = (
            f"{effect.run_id} {effect.step_id} {effect.attempt} {os.getpid()} {time.time():.6f}\n"
        )
        with open(path, "a", encoding="utf-8") as file:
            file.write(line)
    await asyncio.sleep(float(os.environ.get("INTERRUPTIBLE_TEST_STEP_SECONDS", "0.01")))
    return f"{effect.step_id} by {os.getpid()}"


def _tool(step_id: str) -> StepDefinition:
    return StepDefinition(step_id, StepClass.tool, {"name": "work"}, StepPolicy())


TEN = Sequence("ten", tuple(_tool(f"s{n}") for n in range(1, 11)))
TIMED = Sequence(
    "timed",
    (
        _tool("before"),
        StepDefinition("wait", StepClass.timer, {"seconds": TIMER_SECONDS}),
        _tool("after"),
    ),
)
MODES = [TEN, TIMED]
TOOLS: dict[str, Any] = {"work": work}
