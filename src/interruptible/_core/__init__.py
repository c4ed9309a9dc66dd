"""The pure core: state, `reduce`, the coordinator, modes and replay."""

from ._authorizer import Authorizer, OwnerOrOperator, ReadAuthorizer, read_allowed
from ._coordinator import Coordinator
from ._modes import (
    AgentLoop,
    Complete,
    Fail,
    Mode,
    ModeError,
    NextStep,
    OutputRefusedError,
    Plan,
    Sequence,
)
from ._replay import Replay, replay
from ._state import (
    HISTORY_LIMIT,
    NO_INPUT,
    ConversationState,
    Disposition,
    IgnoredReason,
    Outcome,
    RunState,
    StepState,
    initial_state,
)
from ._txn import RUN, STEP

__all__ = [
    "HISTORY_LIMIT",
    "NO_INPUT",
    "RUN",
    "STEP",
    "AgentLoop",
    "Authorizer",
    "Complete",
    "ConversationState",
    "Coordinator",
    "Disposition",
    "Fail",
    "IgnoredReason",
    "Mode",
    "ModeError",
    "NextStep",
    "Outcome",
    "OutputRefusedError",
    "OwnerOrOperator",
    "Plan",
    "ReadAuthorizer",
    "Replay",
    "RunState",
    "Sequence",
    "StepState",
    "initial_state",
    "read_allowed",
    "replay",
]
