"""The mode `bench_workers.py` interrupts, resumes and takes over in worker processes: run it with
`interruptible worker --modes _workers_app:MODES --tools _workers_app:TOOLS` (with `bench/` on
the worker's PYTHONPATH).

`hold` is one `tool` step that waits until it is cancelled (an asyncio sleep: an interrupt stops
it at once, no thread to wait for). Each time the step starts, its first action appends
`run_id step_id attempt pid time.time()` to the file named by `INTERRUPTIBLE_BENCH_MARKS` (when
set): the moment a resumed or taken-over run is running again in a worker, on the same wall
clock as the bench process (one machine), as `_dbos_resume.py` marks DBOS's resumed step.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from interruptible import Sequence, StepClass, StepDefinition, StepPolicy
from interruptible._runtime import current_effect

MARKS_ENV = "INTERRUPTIBLE_BENCH_MARKS"


async def hold() -> str:
    """Mark the start, then wait until cancelled."""
    effect = current_effect()
    path = os.environ.get(MARKS_ENV)
    if path:
        line = (
            f"{effect.run_id} {effect.step_id} {effect.attempt} {os.getpid()} {time.time():.6f}\n"
        )
        with open(path, "a", encoding="utf-8") as file:
            file.write(line)
    await asyncio.sleep(24 * 3600)
    return "held"


HOLD = Sequence("hold", (StepDefinition("hold", StepClass.tool, {"name": "hold"}, StepPolicy()),))
MODES = [HOLD]
TOOLS: dict[str, Any] = {"hold": hold}
