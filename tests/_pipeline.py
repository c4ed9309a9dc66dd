"""The pipeline the tests drive: the one the golden traces record, so a test's run and a
trace's are the same definition (plan, fetch, approve, wait, publish).

`interruptible`'s trace scenarios own it; this is the one place a test imports it from.
"""

from __future__ import annotations

from interruptible._views._traces import PIPELINE

# The step ids, in order.
STEPS: tuple[str, ...] = tuple(step.step_id for step in PIPELINE.steps)

__all__ = ["PIPELINE", "STEPS"]
