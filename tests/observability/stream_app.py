"""The pipeline the stream tests follow: tool steps that report progress as they go."""

from __future__ import annotations

import asyncio
from typing import Any

from interruptible import Sequence, StepClass, StepDefinition, StepPolicy
from interruptible._runtime import current_effect


async def chatty(pause: float = 0.002) -> str:
    """Report progress three times, pausing between reports so each gets its own commit."""
    effect = current_effect()
    for n in range(3):
        effect.progress({"step": effect.step_id, "n": n})
        await asyncio.sleep(pause)
    return effect.step_id


TOOLS: dict[str, Any] = {"chatty": chatty}


def streamed(steps: int, pause: float = 0.002) -> Sequence:
    """`steps` chatty tool steps, pausing `pause` seconds after each report."""
    return Sequence(
        "streamed",
        tuple(
            StepDefinition(
                f"s{n}",
                StepClass.tool,
                {"name": "chatty", "arguments": {"pause": pause}},
                StepPolicy(),
            )
            for n in range(steps)
        ),
    )
