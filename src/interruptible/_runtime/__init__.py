"""The embedded runtime: asyncio `Runtime`, the effect manager, executors, model adapters."""

from ._anthropic import AnthropicModel
from ._cancel import CancelToken
from ._effects import EffectManager
from ._executors import (
    Effect,
    EffectError,
    Executor,
    FunctionExecutor,
    HumanGateExecutor,
    Inline,
    TimerExecutor,
    current_effect,
    inline,
    tool_schemas,
)
from ._handle import RunHandle
from ._ids import UuidIds
from ._llm import ChatModel, LlmExecutor, OpenAICompatibleModel, ScriptedModel
from ._mcp import McpTools
from ._recovery import RESTART_REASON, RecoveryReport
from ._runtime import Runtime
from ._snapshot import RunSnapshot, StepSnapshot
from ._stream import Position as StreamPosition
from ._stream import Stream, StreamItem, follow
from ._subscription import Subscription
from ._upgrade_check import RunCheck, UpgradeReport, upgrade_check

__all__ = [
    "RESTART_REASON",
    "AnthropicModel",
    "CancelToken",
    "ChatModel",
    "Effect",
    "EffectError",
    "EffectManager",
    "Executor",
    "FunctionExecutor",
    "HumanGateExecutor",
    "Inline",
    "LlmExecutor",
    "McpTools",
    "OpenAICompatibleModel",
    "RecoveryReport",
    "RunCheck",
    "RunHandle",
    "RunSnapshot",
    "Runtime",
    "ScriptedModel",
    "StepSnapshot",
    "Stream",
    "StreamItem",
    "StreamPosition",
    "Subscription",
    "TimerExecutor",
    "UpgradeReport",
    "UuidIds",
    "current_effect",
    "follow",
    "inline",
    "tool_schemas",
    "upgrade_check",
]
