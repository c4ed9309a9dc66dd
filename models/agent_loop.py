"""Model: runs of the built-in `AgentLoop` (llm -> tools -> llm) under every interleaving.

Each `llm` effect may answer with one tool call (`search`) or with a final answer, so the world
chooses how many turns a run takes (up to `max_turns = bounds.steps`, after which the run fails);
each `tool` effect answers with one fixed result. With interrupts, retries and late answers in
between, the checker proves that a tool call with a kept result is never started again (VER-6,
MODE-4) and every other property, for every interleaving within the bounds.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf
from typing import Final

from interruptible import AgentLoop, Mode, StepPolicy
from interruptible._verify._checker import Bounds
from interruptible._vocabulary import JsonValue

_CALL: Final = {"content": "", "tool_calls": [{"id": "c1", "name": "search", "arguments": {}}]}
_ANSWER: Final = {"content": "done", "tool_calls": []}


class AgentLoopRuns:
    """The world of runs of one agent loop with one tool."""

    name = "agent_loop"
    # Two runs (the second may supersede the first), at most two model turns, one interrupt.
    ci_bounds = Bounds(
        runs=2, steps=2, interrupts=1, duplicates=1, unauthorized=1, progress=0, lost=0
    )

    def modes(self, bounds: Bounds) -> SequenceOf[Mode]:
        return [
            AgentLoop(
                name="agent",
                tools=("search",),
                max_turns=bounds.steps,
                llm_policy=StepPolicy(max_attempts=2),
                tool_policy=StepPolicy(max_attempts=1),
            )
        ]

    def run_request(self, index: int) -> tuple[str, JsonValue]:
        return "agent", {"prompt": f"question {index}"}

    def outputs(self, step_class: str, step_id: str) -> tuple[JsonValue, ...]:
        if step_id.endswith(".llm"):
            return (_ANSWER, _CALL)
        return ("found it",)

    def gates(self, bounds: Bounds) -> SequenceOf[str]:
        return ()


MODEL: Final = AgentLoopRuns()
