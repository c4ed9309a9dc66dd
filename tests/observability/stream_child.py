"""A process that drives runs whose items another process follows, for the stream tests.

Usage: stream_child.py DB CONVERSATIONS STEPS PAUSE. DB is a SQLite file or
`postgres:SCHEMA:DSN`. Starts one run of `streamed` (STEPS tool steps, each reporting progress
three times, PAUSE seconds apart) in each of
CONVERSATIONS conversations `c0`, `c1`, ..., prints `ready`, waits until every run has ended,
prints `done` and exits.
"""

from __future__ import annotations

import asyncio
import sys

from interruptible._runtime import Runtime
from tests.observability.stream_app import TOOLS, streamed
from tests.runtime.owner_child import journal_spec


async def main(db: str, conversations: int, steps: int, pause: float) -> None:
    mode = streamed(steps, pause)
    async with Runtime(journal_spec(db), modes=[mode], tools=TOOLS) as rt:
        handles = [
            await rt.run(f"c{n}", {"n": n}, mode=mode.name, run_id=f"c{n}-r")
            for n in range(conversations)
        ]
        print("ready", flush=True)
        for handle in handles:
            await handle.wait(until="terminal")
        print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
