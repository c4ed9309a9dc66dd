"""Restoring conversations from a journal: fold each conversation's events through `reduce`.

Theory of operation
-------------------
The journal holds every event the runtime accepted, in the order the runtime reduced them
(journal-first, JRN-13), and `reduce` is pure (CORE-4). Folding a conversation's records from an
empty state therefore rebuilds the state the live runtime held, and the directives it produced
(JRN-12). `restore` keeps only the final state of each conversation, which is what a restarting
runtime needs and all it can afford at 100,000 events; `replay_conversation` keeps every
outcome, for `replay_parity` and for tools that show a conversation's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._core import ConversationState, Coordinator, Replay, initial_state, replay
from .._vocabulary import Directive
from ._protocol import Journal


def restore(journal: Journal, coordinator: Coordinator) -> dict[str, ConversationState]:
    """The state of every conversation in the journal, by folding its events (JRN-12)."""
    reduce = coordinator.reduce
    states: dict[str, ConversationState] = {}
    for conversation_id in journal.conversations():
        state = initial_state()
        for record in journal.read(conversation_id):
            state = reduce(state, record.event).state
        states[conversation_id] = state
    return states


def replay_conversation(journal: Journal, coordinator: Coordinator, conversation_id: str) -> Replay:
    """Every outcome of one conversation's events, folded from an empty state."""
    return replay(coordinator, (record.event for record in journal.read(conversation_id)))


@dataclass(frozen=True, slots=True)
class Parity:
    """Whether replaying a conversation from the journal reproduced what the live run held."""

    conversation_id: str
    events: int
    state_matches: bool
    directives_match: bool | None  # None when no live directives were given
    replayed: Replay

    @property
    def holds(self) -> bool:
        """Whether the state, and the directives when given, are the same."""
        return self.state_matches and self.directives_match is not False


def replay_parity(
    journal: Journal,
    coordinator: Coordinator,
    conversation_id: str,
    live_state: ConversationState,
    live_directives: Sequence[Directive] | None = None,
) -> Parity:
    """Replay one conversation and compare it with the live state (and directives) (JRN-12)."""
    replayed = replay_conversation(journal, coordinator, conversation_id)
    directives_match = (
        None if live_directives is None else tuple(live_directives) == replayed.directives
    )
    return Parity(
        conversation_id=conversation_id,
        events=len(replayed.outcomes),
        state_matches=replayed.state == live_state,
        directives_match=directives_match,
        replayed=replayed,
    )
