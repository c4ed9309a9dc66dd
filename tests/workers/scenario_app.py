"""The application of the 3.4 scenarios on worker processes (tests/workers/test_scenarios_pg.py):
run it with `interruptible worker --modes tests.workers.scenario_app:MODES
--tools tests.workers.scenario_app:TOOLS --functions tests.workers.scenario_app:FUNCTIONS`.

The workers are other processes, so the test and the tools talk through files in the directory
named by `INTERRUPTIBLE_SCENARIO_DIR`. Every tool execution appends `run_id step_id attempt pid
what` to its `ledger` (`what`: `start` when the tool begins; `cancelled` when a holding tool
saw its cancel token set; `returned` when the stubborn tool returned). A holding tool waits,
polling every 10 ms, until the file `release-RUN_ID-STEP_ID` exists there (or, if it takes a
`CancelToken`, until the token is set).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from interruptible import (
    Backoff,
    CancelToken,
    EffectError,
    FailureCategory,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._core import Sequence
from interruptible._runtime import current_effect
from tests.runtime.support import system_step, tool_step

DIR_ENV = "INTERRUPTIBLE_SCENARIO_DIR"
POLL = 0.01

# Two attempts, 10 ms apart, for transient failures (3.4.1.2).
FAST_RETRY = StepPolicy(
    max_attempts=2,
    backoff=Backoff(initial=0.01, multiplier=1.0, max_delay=0.01),
    retry_on=(FailureCategory.transient,),
)


def _dir() -> Path:
    return Path(os.environ[DIR_ENV])


def note(what: str) -> None:
    """Append `run_id step_id attempt pid what` for the running effect to the ledger."""
    effect = current_effect()
    line = f"{effect.run_id} {effect.step_id} {effect.attempt} {os.getpid()} {what}\n"
    with open(_dir() / "ledger", "a", encoding="utf-8") as file:
        file.write(line)


def released() -> bool:
    """Whether the test released the running step (`release-RUN_ID-STEP_ID` exists)."""
    effect = current_effect()
    return (_dir() / f"release-{effect.run_id}-{effect.step_id}").exists()


# --- tools ----------------------------------------------------------------------------------------


def search(query: str) -> list[str]:
    """A synchronous tool (it runs in a worker thread)."""
    note("start")
    return [f"{query}-1", f"{query}-2"]


async def summarize(items: list[str]) -> str:
    """An async tool (it runs on the worker's loop)."""
    note("start")
    await asyncio.sleep(0.01)
    return " + ".join(items)


def flaky() -> None:
    """Fails every time, as a transient failure with details."""
    note("start")
    raise EffectError(FailureCategory.transient, "upstream is down", details={"code": 503})


def hold(token: CancelToken) -> str:
    """Holds until released or cancelled (it stops when its token is set, RT-25)."""
    note("start")
    while not released():
        if token.wait(POLL):
            note("cancelled")
            return "stopped"
    return "released"


def stubborn() -> dict[str, bool]:
    """Holds until released, whatever happens: it takes no token, so a cancel cannot stop it and
    its result arrives after the cancel (a late event)."""
    note("start")
    while not released():
        time.sleep(POLL)
    note("returned")
    return {"late": True}


def work(n: int, token: CancelToken) -> int:
    """Step `n` of five; step 3's first attempt holds until released or cancelled."""
    note("start")
    if n == 3 and current_effect().attempt == 1:
        while not released():
            if token.wait(POLL):
                note("cancelled")
                return -1
    return n * 10


# --- system functions -----------------------------------------------------------------------------


def publish(channel: str) -> dict[str, str]:
    return {"published_to": channel}


def ok() -> int:
    return 1


# --- modes ----------------------------------------------------------------------------------------


RESEARCH = Sequence(
    "research",
    (
        tool_step("search", "search", query="cats"),
        tool_step("summarize", "summarize", items=["a", "b"]),
        StepDefinition("approve", StepClass.human_gate, {"question": "publish?"}),
        StepDefinition("cool_down", StepClass.timer, {"seconds": 0.05}),
        system_step("publish", "publish", channel="blog"),
    ),
)
FAILING = Sequence(
    "failing",
    (
        system_step("first", "ok"),
        tool_step("flaky", "flaky", FAST_RETRY),
        system_step("never", "ok"),
    ),
)
LATE = Sequence("late", (tool_step("slow", "stubborn"), tool_step("after", "stubborn")))
LONG = Sequence("long", (tool_step("long", "hold"), tool_step("next", "hold")))
FIVE = Sequence("five", tuple(tool_step(f"s{n}", "work", n=n) for n in range(1, 6)))

MODES = [RESEARCH, FAILING, LATE, LONG, FIVE]
TOOLS: dict[str, Any] = {
    "search": search,
    "summarize": summarize,
    "flaky": flaky,
    "hold": hold,
    "stubborn": stubborn,
    "work": work,
}
FUNCTIONS: dict[str, Any] = {"publish": publish, "ok": ok}
