"""The demo's pipeline: a realistic run on a SQLite journal, its tools and its runtime.

The pipeline plans with a (scripted) model, calls two tools, asks a person to approve, waits out
an embargo timer and publishes: every step class once. An editor who says no stops it before the
embargo: nothing is published, and the run's output says so (CLI-6). What a person sees of it
(the live display, Ctrl-C, resuming in a new process) is the command line's: `_cli/_demo.py`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel

from .._core import Complete, Plan, Sequence
from .._lifecycle import RunStatus, StepClass
from .._vocabulary import (
    Backoff,
    FailureCategory,
    JsonValue,
    StepDefinition,
    StepPolicy,
)
from ._executors import current_effect
from ._llm import ScriptedModel
from ._runtime import Runtime

# Tests run the demo faster; every process of one demo journal must use the same value, since
# the timer's seconds are part of the step definitions.
SPEED: Final = float(os.environ.get("INTERRUPTIBLE_DEMO_SPEED", "1") or 1)
CONVERSATION: Final = "demo"
CITIES: Final = ("Paris", "Berlin", "Rome", "Madrid")
POPULATIONS: Final = {"Paris": 2.1, "Berlin": 3.7, "Rome": 2.8, "Madrid": 3.3}
TOOL_POLICY: Final = StepPolicy(
    timeout=30.0,
    max_attempts=3,
    backoff=Backoff(initial=0.5, multiplier=2.0, max_delay=4.0),
    retry_on=(FailureCategory.transient, FailureCategory.timeout),
)

PLAN: Final = (
    "Look up the populations of four capitals, summarise them, ask the editor, wait for the "
    "embargo, publish."
)


def is_no(answer: JsonValue) -> bool:
    """Whether a gate's answer declines: `false`, "n" or "no", or `{"approved": false}`."""
    if isinstance(answer, Mapping):
        answer = answer.get("approved")
    if isinstance(answer, str):
        return answer.strip().lower() in ("n", "no")
    return answer is False


@dataclass(frozen=True, slots=True)
class EditedSequence(Sequence):
    """A `Sequence` with an editor's gate: answered no (`{"approved": false}`, `false`, "n" or
    "no"), the steps after the gate are not planned; the run's output says whether `publish`
    ran (CLI-6)."""

    gate: str = "approve"
    publish: str = "publish"

    def _declined(self, context: JsonValue) -> bool:
        if context["next"] <= self._positions[self.gate]:
            return False  # not answered yet
        for step_id, output in Sequence.outputs_of(context):
            if step_id == self.gate:
                return is_no(output)
        return False  # the gate failed: the pipeline goes on as a Sequence does

    def plan(self, context: JsonValue) -> Plan:
        if self._declined(context):
            return Complete()
        return Sequence.plan(self, context)

    def finalize(self, context: JsonValue, status: RunStatus) -> JsonValue:
        output = Sequence.finalize(self, context, status)
        return {**output, "published": self.publish in output["outputs"]}


DEMO_MODE: Final = EditedSequence(
    "demo-brief",
    (
        StepDefinition(
            "plan",
            StepClass.llm,
            {"messages": [{"role": "user", "content": "Write a brief on European capitals."}]},
            StepPolicy(timeout=30.0, max_attempts=2),
            "plan the brief (model)",
        ),
        StepDefinition(
            "lookup",
            StepClass.tool,
            {"name": "lookup_populations", "arguments": {"cities": list(CITIES)}},
            TOOL_POLICY,
            "look up populations (tool)",
        ),
        StepDefinition(
            "summarize",
            StepClass.tool,
            {
                "name": "summarize",
                "arguments": {"brief": {"topic": "European capitals", "tone": "plain"}},
            },
            TOOL_POLICY,
            "summarise (pydantic-typed tool, in a thread)",
        ),
        StepDefinition(
            "approve",
            StepClass.human_gate,
            {"question": "Publish the brief?"},
            StepPolicy(),
            "editor approval (human gate)",
        ),
        StepDefinition(
            "embargo",
            StepClass.timer,
            {"seconds": 4 / SPEED},
            StepPolicy(),
            "embargo (timer, 4 s)",
        ),
        StepDefinition(
            "publish",
            StepClass.system,
            {"name": "publish", "arguments": {"channel": "newsroom"}},
            StepPolicy(),
            "publish (system)",
        ),
    ),
    "1",  # its version (spec/upgrades.md): docs/demo_v2.py shows what changing it does
)


async def lookup_populations(cities: list[str]) -> dict[str, float]:
    """The first tool: slow on purpose, one city at a time, reporting progress."""
    effect = current_effect()
    found: dict[str, float] = {}
    for index, city in enumerate(cities):
        await asyncio.sleep(0.8 / SPEED)
        found[city] = POPULATIONS.get(city, 1.0)
        effect.progress({"done": index + 1, "of": len(cities), "city": city})
    return found


class Brief(BaseModel):
    """What the summary is about: the tool's argument, validated by pydantic (TOOL-1)."""

    topic: str
    tone: Literal["plain", "lively"] = "plain"


def summarize(brief: Brief) -> str:
    """The second tool: synchronous (it runs in a worker thread), its argument a pydantic model."""
    time.sleep(1.5 / SPEED)
    if brief.tone == "lively":
        return "Four capitals, and Berlin, at 3.7 million, beats them all!"
    return "Four capitals, 2.1 to 3.7 million people each; Berlin is the largest."


def publish(channel: str) -> JsonValue:
    """The system step: our own short code."""
    return {"channel": channel, "published_by": current_effect().idempotency_key}


def demo_runtime(db: str | Path) -> Runtime:
    """The runtime of the demo: its mode, a scripted model, its tools and its system step."""
    return Runtime(
        db,
        modes=[DEMO_MODE],
        model=ScriptedModel([PLAN], delay=1.0 / SPEED),
        tools={"lookup_populations": lookup_populations, "summarize": summarize},
        functions={"publish": publish},
    )
