"""A process that owns one conversation on a SQLite journal, for the two-process tests.

Usage: owner_child.py DB SIDE_FILE CONVERSATION LEASE. Opens a runtime on DB with lease LEASE
seconds, starts a run `CONVERSATION-r` of the `owned` pipeline (unless the conversation already
has one) and prints `ready OWNER_ID PID`; then it serves until killed. Its tools append
`start|end|cancel PID KEY TIME` lines to SIDE_FILE (the tool's own record of what ran when).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from interruptible import Sequence, StepClass, StepDefinition, StepPolicy
from interruptible._runtime import Runtime, current_effect

OWNED = Sequence(
    "owned",
    (
        StepDefinition(
            "slow", StepClass.tool, {"name": "work", "arguments": {"seconds": 0.6}}, StepPolicy()
        ),
        StepDefinition("ask", StepClass.human_gate, {"question": "go on?"}),
        StepDefinition(
            "last", StepClass.tool, {"name": "work", "arguments": {"seconds": 0.6}}, StepPolicy()
        ),
    ),
)


def side_tool(side: str) -> Any:
    """The `work` tool: sleeps, and writes what it does to the side file as it does it."""
    fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(what: str) -> None:
        key = current_effect().idempotency_key
        os.write(fd, f"{what} {os.getpid()} {key} {time.time():.6f}\n".encode())

    async def work(seconds: float) -> str:
        note("start")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            note("cancel")
            raise
        note("end")
        return f"slept {seconds}"

    return work


def runtime(db: str, side: str, lease: float, **options: Any) -> Runtime:
    """A runtime of the `owned` pipeline with the side-file tool."""
    return Runtime(db, modes=[OWNED], tools={"work": side_tool(side)}, lease=lease, **options)


async def main(db: str, side: str, conversation: str, lease: float) -> None:
    async with runtime(db, side, lease) as rt:
        if conversation not in rt.conversations():
            await rt.run(conversation, None, mode="owned", run_id=f"{conversation}-r")
        print(f"ready {rt.owner_id} {os.getpid()}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
