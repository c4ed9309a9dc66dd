"""The `llm` step class: a small model-adapter protocol, its executor, and two adapters.

A model adapter is any object with `async complete(messages, tools) -> {"content": str,
"tool_calls": [{"id", "name", "arguments"}]}` (the `AgentLoop` message shape). `ScriptedModel`
answers from a list (tests, the demo); `OpenAICompatibleModel` adapts any client object with
`client.chat.completions.create(...)`, synchronous or asynchronous, without importing a vendor
library (the client is passed in; nothing here touches the network by itself).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._vocabulary import FailureCategory, JsonValue
from ._executors import Effect, EffectError


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages and tool names in, one assistant message out."""

    async def complete(
        self, messages: Sequence[JsonValue], tools: Sequence[JsonValue]
    ) -> Mapping[str, JsonValue]:
        """The assistant's answer: `{"content": str, "tool_calls": [...]}`."""
        ...


class LlmExecutor:
    """`llm`: hands the step input's `messages` and `tools` to a `ChatModel`."""

    def __init__(self, model: ChatModel | None = None) -> None:
        self.model = model

    async def execute(self, effect: Effect) -> JsonValue:
        if self.model is None:
            raise EffectError(
                FailureCategory.not_found,
                "no model is configured for llm steps; pass Runtime(model=...)",
                retryable=False,
            )
        input = effect.input
        if not isinstance(input, Mapping) or not isinstance(input.get("messages"), list):
            raise EffectError(
                FailureCategory.invalid_input,
                f"an llm step's input must be {{'messages': [...], 'tools': [...]}}, got {input!r}",
                retryable=False,
            )
        answer = await self.model.complete(input["messages"], list(input.get("tools") or []))
        return _message(answer)


def _message(answer: Mapping[str, JsonValue]) -> JsonValue:
    content = answer.get("content") or ""
    calls = answer.get("tool_calls") or []
    if not isinstance(content, str) or not isinstance(calls, list):
        raise EffectError(
            FailureCategory.executor_error, f"the model answered {answer!r}, not a message"
        )
    return {"content": content, "tool_calls": calls}


class ScriptedModel:
    """A model that answers from a script: answer n to the n-th model turn of a conversation.

    The turn is counted from the `assistant` messages already in the request, not from calls, so
    a step retried or restarted after a crash gets the same answer again: the script is a pure
    function of the request, like a recorded model. An answer is a string (content, no tool
    call) or a message mapping; `delay` seconds pass before each answer.
    """

    def __init__(self, answers: Sequence[str | Mapping[str, JsonValue]], *, delay: float = 0.0):
        if not answers:
            raise ValueError("a ScriptedModel needs at least one answer")
        self.answers = tuple(answers)
        self.delay = delay
        self.calls = 0

    async def complete(
        self, messages: Sequence[JsonValue], tools: Sequence[JsonValue]
    ) -> Mapping[str, JsonValue]:
        self.calls += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        turn = sum(
            1
            for message in messages
            if isinstance(message, Mapping) and message.get("role") == "assistant"
        )
        if turn >= len(self.answers):
            raise EffectError(
                FailureCategory.executor_error,
                f"the script has {len(self.answers)} answers and turn {turn + 1} asked for more",
                retryable=False,
            )
        answer = self.answers[turn]
        if isinstance(answer, str):
            return {"content": answer, "tool_calls": []}
        return {
            "content": answer.get("content", ""),
            "tool_calls": list(answer.get("tool_calls") or []),
        }


# Client exception class names, by the category they mean (OpenAI's and its look-alikes').
_ERROR_CATEGORIES: dict[str, FailureCategory] = {
    "RateLimitError": FailureCategory.rate_limited,
    "APITimeoutError": FailureCategory.timeout,
    "Timeout": FailureCategory.timeout,
    "TimeoutError": FailureCategory.timeout,
    "APIConnectionError": FailureCategory.transient,
    "InternalServerError": FailureCategory.transient,
    "ServiceUnavailableError": FailureCategory.transient,
    "BadRequestError": FailureCategory.invalid_input,
    "NotFoundError": FailureCategory.not_found,
}


class OpenAICompatibleModel:
    """Adapts a chat-completions client (`client.chat.completions.create`, sync or async).

    `tool_schemas` maps a tool name to its JSON Schema of parameters (or to a full OpenAI tool
    object); a tool without one is offered with an open object schema. Our message shape is
    converted to the API's on the way in (tool call arguments as JSON text, tool results as
    text) and back on the way out. Client exceptions are mapped to failure categories by class
    name, so rate limits and timeouts are retryable: they retry under a policy with
    `max_attempts > 1` (`AgentLoop`'s default `llm_policy` has 3).
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        tool_schemas: Mapping[str, Mapping[str, JsonValue]] | None = None,
        **options: Any,
    ) -> None:
        self.client = client
        self.model = model
        self.tool_schemas = dict(tool_schemas or {})
        self.options = options

    async def complete(
        self, messages: Sequence[JsonValue], tools: Sequence[JsonValue]
    ) -> Mapping[str, JsonValue]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_api_message(message) for message in messages],
            **self.options,
        }
        if tools:
            request["tools"] = [self._tool(name) for name in tools]
        create = self.client.chat.completions.create
        try:
            if inspect.iscoroutinefunction(create):
                response = await create(**request)
            else:
                response = await asyncio.to_thread(create, **request)
                if inspect.isawaitable(response):
                    response = await response
        except EffectError:
            raise
        except Exception as exc:
            category = next(
                (
                    _ERROR_CATEGORIES[cls.__name__]
                    for cls in type(exc).__mro__
                    if cls.__name__ in _ERROR_CATEGORIES
                ),
                FailureCategory.executor_error,
            )
            raise EffectError(category, f"{type(exc).__name__}: {exc}") from exc
        return _from_api_response(response)

    def _tool(self, name: JsonValue) -> dict[str, JsonValue]:
        schema = self.tool_schemas.get(str(name))
        if schema is not None and schema.get("type") == "function":
            return dict(schema)
        return {
            "type": "function",
            "function": {
                "name": name,
                "parameters": dict(schema) if schema is not None else {"type": "object"},
            },
        }


def _to_api_message(message: JsonValue) -> dict[str, JsonValue]:
    if not isinstance(message, Mapping):
        return {"role": "user", "content": str(message)}
    role = message.get("role")
    if role == "assistant" and message.get("tool_calls"):
        return {
            "role": "assistant",
            "content": message.get("content") or None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
                }
                for call in message["tool_calls"]
            ],
        }
    if role == "tool":
        content = message.get("content")
        return {
            "role": "tool",
            "tool_call_id": message.get("tool_call_id"),
            "content": content if isinstance(content, str) else json.dumps(content),
        }
    return {key: value for key, value in message.items() if key != "tool_calls"}


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _from_api_response(response: Any) -> Mapping[str, JsonValue]:
    choices = _field(response, "choices") or []
    if not choices:
        raise EffectError(FailureCategory.executor_error, "the model returned no choice")
    message = _field(choices[0], "message")
    calls = []
    for call in _field(message, "tool_calls") or []:
        function = _field(call, "function")
        raw = _field(function, "arguments") or "{}"
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except ValueError as exc:
            raise EffectError(
                FailureCategory.executor_error,
                f"the model's tool call arguments are not JSON: {raw!r}",
            ) from exc
        calls.append(
            {"id": _field(call, "id"), "name": _field(function, "name"), "arguments": arguments}
        )
    return {"content": _field(message, "content") or "", "tool_calls": calls}
