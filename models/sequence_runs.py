"""Model: runs of a static `Sequence` (tool, human gate, llm, ...) under every interleaving.

The world requests up to `runs` runs of one Sequence whose steps cycle through the step classes
that behave differently: a retrying `tool` (two attempts, transient failures retried), a
`human_gate` (answers may come early, late, twice or conflicting), an `llm` step that fails
*onwards* (`on_failure="continue"`), a `timer` and a `system` step. Every effect answers with
one fixed output, so the state space comes from interleavings, not from data.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf
from typing import Final

from interruptible import (
    Mode,
    OnFailure,
    Sequence,
    StepClass,
    StepDefinition,
    StepPolicy,
)
from interruptible._verify._checker import Bounds
from interruptible._vocabulary import JsonValue

_TEMPLATES: Final = (
    (StepClass.tool, StepPolicy(max_attempts=2)),
    (StepClass.human_gate, StepPolicy()),
    (StepClass.llm, StepPolicy(on_failure=OnFailure.continue_)),
    (StepClass.timer, StepPolicy()),
    (StepClass.system, StepPolicy()),
)


class SequenceRuns:
    """The world of runs of one `Sequence` pipeline."""

    name = "sequence_runs"
    # The CI bound: every interleaving of two runs (the second may supersede the first) of a
    # pipeline with a retrying tool and a human gate, with one interrupt, one effect lost by a
    # crash, one duplicate, late or stale event and one refused request: about 135,000 states in
    # about 5 s on a 2-core CI machine. `PROGRESS_BOUNDS` trades the lost effect for a progress
    # report per effect (about 245,000 states, 10 s); CI checks both (spec/verification.md).
    ci_bounds = Bounds(
        runs=2, steps=2, interrupts=1, duplicates=1, unauthorized=1, progress=0, lost=1
    )

    def steps(self, bounds: Bounds) -> tuple[StepDefinition, ...]:
        """The pipeline's steps: s1, s2, ... cycling through `_TEMPLATES`."""
        templates = (_TEMPLATES[i % len(_TEMPLATES)] for i in range(bounds.steps))
        return tuple(
            StepDefinition(f"s{i}", step_class, None, policy)
            for i, (step_class, policy) in enumerate(templates, start=1)
        )

    def modes(self, bounds: Bounds) -> SequenceOf[Mode]:
        return [Sequence("pipeline", self.steps(bounds))]

    def gates(self, bounds: Bounds) -> SequenceOf[str]:
        return [s.step_id for s in self.steps(bounds) if s.step_class is StepClass.human_gate]

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        return "pipeline", {"n": index}

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        return (f"{step_id}-out",)


MODEL: Final = SequenceRuns()
PROGRESS_BOUNDS: Final = Bounds(
    runs=2, steps=2, interrupts=1, duplicates=1, unauthorized=1, progress=1, lost=0
)
