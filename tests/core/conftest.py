"""Shared pipelines for the core tests."""

from __future__ import annotations

import pytest

from interruptible import (
    AgentLoop,
    Backoff,
    Coordinator,
    FailureCategory,
    OnFailure,
    OwnerOrOperator,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._verify._driver import CoreDriver

RETRYING = StepPolicy(
    max_attempts=3,
    backoff=Backoff(initial=0.5, multiplier=2.0, max_delay=10.0),
    retry_on=(FailureCategory.transient, FailureCategory.timeout),
)

PIPELINE = Sequence(
    "pipeline",
    (
        StepDefinition("plan", StepClass.llm, {"prompt": "plan"}, RETRYING),
        StepDefinition(
            "fetch", StepClass.tool, {"name": "fetch", "arguments": {"url": "u"}}, RETRYING
        ),
        StepDefinition("approve", StepClass.human_gate, {"question": "ship it?"}),
        StepDefinition("wait", StepClass.timer, {"seconds": 5}),
        StepDefinition("publish", StepClass.system, {"action": "publish"}),
    ),
)

LENIENT = Sequence(
    "lenient",
    (
        StepDefinition("a", StepClass.tool, None, StepPolicy(on_failure=OnFailure.continue_)),
        StepDefinition("b", StepClass.tool),
    ),
)

STEPS = ("plan", "fetch", "approve", "wait", "publish")


def make_coordinator() -> Coordinator:
    """The coordinator every core test uses: the pipelines above, operators `ops`."""
    return Coordinator(
        [PIPELINE, LENIENT, AgentLoop(tools=("search",), max_turns=3)],
        OwnerOrOperator(frozenset({"ops"})),
    )


@pytest.fixture
def driver() -> CoreDriver:
    """A driver over a fresh conversation `c1`, acting as principal `alice`."""
    return CoreDriver(make_coordinator())


def finish_step(driver: CoreDriver, run_id: str, step_id: str, output: object = None) -> None:
    """Start and complete a step's latest attempt (a human gate is answered instead)."""
    driver.started(run_id, step_id)
    if step_id == "approve":
        driver.answer(run_id, step_id, output if output is not None else "yes")
    else:
        driver.complete(run_id, step_id, output if output is not None else f"{step_id}-out")
