"""The exhaustive bounded model checker and the properties it shares with the stateful tests."""

from ._explore import Counterexample, Explorer, Report, explore, parity_violations, replay_trace
from ._key import KeyCache, conversation_key
from ._owner_explore import (
    OwnerExplorer,
    OwnerReport,
    OwnerTrace,
    explore_owners,
    replay_moves,
)
from ._owner_state import OwnerBounds, OwnerModel
from ._owners import OwnerWorld
from ._properties import (
    PROPERTIES,
    EffectView,
    Violation,
    ledger_violations,
    transition_violations,
)
from ._world import Bounds, Ledger, Model, World

__all__ = [
    "PROPERTIES",
    "Bounds",
    "Counterexample",
    "EffectView",
    "Explorer",
    "KeyCache",
    "Ledger",
    "Model",
    "OwnerBounds",
    "OwnerExplorer",
    "OwnerModel",
    "OwnerReport",
    "OwnerTrace",
    "OwnerWorld",
    "Report",
    "Violation",
    "World",
    "conversation_key",
    "explore",
    "explore_owners",
    "ledger_violations",
    "parity_violations",
    "replay_moves",
    "replay_trace",
    "transition_violations",
]
