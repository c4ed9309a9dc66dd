"""A process that follows a run as the demo does, whose one step ignores cancellation, for the
second Ctrl-C test (spec/cli.md, CLI-5).

Usage: stubborn_child.py DB. Runs `r1` of conversation `c` on DB and follows it with the demo's
`follow` and a plain display; the step's tool swallows every cancel, so after a first Ctrl-C
the step stays `cancelling` and `follow` waits for it: a second Ctrl-C arrives while it waits.
"""

from __future__ import annotations

import asyncio
import sys

from interruptible import Sequence, StepClass, StepDefinition
from interruptible._cli._demo import Display, follow
from interruptible._runtime import Runtime

STUBBORN = Sequence(
    "stubborn", (StepDefinition("s", StepClass.tool, {"name": "stubborn", "arguments": {}}),)
)


async def stubborn() -> str:
    """A tool that will not stop: it swallows every cancel for a minute."""
    print("stubborn step started", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        try:
            await asyncio.sleep(deadline - loop.time())
        except asyncio.CancelledError:
            continue
    return "done"


async def main(db: str) -> None:
    async with Runtime(db, modes=[STUBBORN], tools={"stubborn": stubborn}) as rt:
        handle = await rt.run("c", None, mode="stubborn", run_id="r1")
        with Display(sys.stdout, plain=True) as display:
            await follow(rt, handle, display, ask=False, db=db)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
