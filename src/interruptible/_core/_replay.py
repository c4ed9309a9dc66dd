"""Replay: fold a list of events through `reduce` from an empty state (CORE-5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._vocabulary import Directive, Event
from ._coordinator import Coordinator
from ._state import ConversationState, Outcome, initial_state


@dataclass(frozen=True, slots=True)
class Replay:
    """The result of folding events: the final state, every outcome, and all directives in order."""

    state: ConversationState
    outcomes: tuple[Outcome, ...]

    @property
    def directives(self) -> tuple[Directive, ...]:
        """Every directive of every event, in order."""
        return tuple(d for outcome in self.outcomes for d in outcome.directives)


def replay(
    coordinator: Coordinator,
    events: Iterable[Event],
    state: ConversationState | None = None,
) -> Replay:
    """Fold `events` through `coordinator.reduce`, from `state` or an empty conversation."""
    current = state if state is not None else initial_state()
    outcomes = []
    for event in events:
        outcome = coordinator.reduce(current, event)
        outcomes.append(outcome)
        current = outcome.state
    return Replay(current, tuple(outcomes))
