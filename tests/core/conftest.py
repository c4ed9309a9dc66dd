"""The core tests' coordinator: the shared pipeline (the golden traces'), a lenient one, an
agent loop."""

from __future__ import annotations

import pytest

from interruptible import (
    AgentLoop,
    Coordinator,
    OnFailure,
    OwnerOrOperator,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._verify._driver import CoreDriver
from tests._pipeline import PIPELINE, STEPS

__all__ = ["LENIENT", "PIPELINE", "STEPS", "finish_step", "make_coordinator"]

LENIENT = Sequence(
    "lenient",
    (
        StepDefinition("a", StepClass.tool, None, StepPolicy(on_failure=OnFailure.continue_)),
        StepDefinition("b", StepClass.tool),
    ),
)


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
