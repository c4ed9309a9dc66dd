"""Model: two runtimes in two processes share one conversation through one journal (OWN-1..6).

The runs are of a `Sequence` of tool steps (one in the CI bound), each effect completing with one
fixed output, so the state space comes from the protocol: which process owns the conversation,
leases that lapse while an owner is paused, takeovers, a stale owner that wakes up and writes,
crashes and clean closes at every point, and commands (interrupt, resume, cancel) submitted by a
third process and carried out by whichever process owns the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf
from typing import Final

from interruptible import Mode, Sequence, StepClass, StepDefinition
from interruptible._verify._checker import OwnerBounds
from interruptible._vocabulary import JsonValue


class TwoOwners:
    """Two owner processes, one conversation, runs of a Sequence of tool steps."""

    name = "two_owners"
    ownership = True
    ci_bounds = OwnerBounds(owners=2, runs=1, steps=1, commands=1, pauses=1, stops=1)

    def modes(self, bounds: OwnerBounds) -> SequenceOf[Mode]:
        steps = tuple(
            StepDefinition(f"s{i}", StepClass.tool, None) for i in range(1, bounds.steps + 1)
        )
        return [Sequence("pipeline", steps)]

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        return "pipeline", {"n": index}

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        return (f"{step_id}-out",)

    def commands(self, bounds: OwnerBounds) -> SequenceOf[str]:
        return ("interrupt", "resume", "cancel")


MODEL: Final = TwoOwners()
