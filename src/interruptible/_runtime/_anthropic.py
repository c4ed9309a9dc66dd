"""`AnthropicModel`: a `ChatModel` over the Anthropic Messages API client (`client.messages`).

Theory of operation
-------------------
The client is passed in (an `anthropic.AsyncAnthropic`, or any object with the same
`messages.create`), so nothing here imports the SDK or touches the network by itself (TOOL-11).
Our message shape (the `AgentLoop`'s) goes in as the API's: `system` messages become the
`system` parameter, an assistant turn's tool calls become `tool_use` blocks, and consecutive
`tool` results become one `user` turn of `tool_result` blocks (the API wants user and assistant
turns to alternate). The answer's `text` blocks become `content`, its `tool_use` blocks
`tool_calls`, with `input` as `arguments`.

With `stream=True` (the default) the request is streamed: each text delta is reported as the
step's progress, `{"text": what has come so far}`. The writer keeps only a report's latest value
until it is journaled (RT-19), so a thousand deltas between two commits cost one record; each
report carries the whole text so far so that the one kept says everything. Client exceptions are
mapped to failure categories by class name, as for the OpenAI-compatible adapter (RT-12), with
`OverloadedError` (HTTP 529) transient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._vocabulary import FailureCategory, JsonValue
from ._executors import EffectError, current_effect
from ._llm import _ERROR_CATEGORIES, _field

# Anthropic's own names beside the OpenAI-style ones (`_llm._ERROR_CATEGORIES`).
_CATEGORIES: Final = {
    **_ERROR_CATEGORIES,
    "OverloadedError": FailureCategory.transient,
    "ServiceUnavailableError": FailureCategory.transient,
    "GatewayTimeoutError": FailureCategory.timeout,
    "RequestTimeoutError": FailureCategory.timeout,
}

# The API requires `max_tokens`; this is the adapter's default when none is given.
DEFAULT_MAX_TOKENS: Final = 4096


class AnthropicModel:
    """Adapts an Anthropic Messages client (`client.messages.create`, async).

    `tool_schemas` maps a tool name to its JSON Schema of parameters, or to the OpenAI tool
    object `tool_schemas(tools)` makes (its description and parameters are used); a tool without
    one is offered with an open object schema.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        tool_schemas: Mapping[str, Mapping[str, Any]] | None = None,
        stream: bool = True,
        **options: Any,
    ) -> None:
        if not callable(getattr(_field(client, "messages"), "create", None)):
            raise TypeError(
                f"AnthropicModel takes an Anthropic client (with messages.create), got {client!r}"
            )
        self.client = client
        self.model = model
        self.max_tokens = max_tokens
        self.tool_schemas = dict(tool_schemas or {})
        self.stream = stream
        self.options = options

    async def complete(
        self, messages: Sequence[JsonValue], tools: Sequence[JsonValue]
    ) -> Mapping[str, JsonValue]:
        system, turns = to_anthropic(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": turns,
            **self.options,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [self._tool(str(name)) for name in tools]
        try:
            if self.stream:
                return await self._streamed(request)
            return from_anthropic(await self.client.messages.create(**request))
        except EffectError:
            raise
        except Exception as exc:
            category = next(
                (_CATEGORIES[c.__name__] for c in type(exc).__mro__ if c.__name__ in _CATEGORIES),
                FailureCategory.executor_error,
            )
            raise EffectError(category, f"{type(exc).__name__}: {exc}") from exc

    async def _streamed(self, request: dict[str, Any]) -> Mapping[str, JsonValue]:
        blocks: dict[int, dict[str, Any]] = {}
        text = ""
        try:
            effect = current_effect()
        except RuntimeError:  # called outside a step (a test, a script): nobody to tell
            effect = None
        events = await self.client.messages.create(**request, stream=True)
        async for event in events:
            kind = _field(event, "type")
            index = _field(event, "index")
            if kind == "content_block_start":
                block = _field(event, "content_block")
                blocks[index] = {
                    "type": _field(block, "type"),
                    "text": _field(block, "text") or "",
                    "id": _field(block, "id"),
                    "name": _field(block, "name"),
                    "json": "",
                }
            elif kind == "content_block_delta":
                delta, block = _field(event, "delta"), blocks[index]
                if _field(delta, "type") == "text_delta":
                    piece = _field(delta, "text") or ""
                    block["text"] += piece
                    text += piece
                    if effect is not None and piece:
                        effect.progress({"text": text})
                elif _field(delta, "type") == "input_json_delta":
                    block["json"] += _field(delta, "partial_json") or ""
        content: list[dict[str, Any]] = []
        for _, block in sorted(blocks.items()):
            if block["type"] == "tool_use":
                content.append(
                    {
                        "type": "tool_use",
                        "id": block["id"],
                        "name": block["name"],
                        "input": _arguments(block["json"] or "{}"),
                    }
                )
            elif block["type"] == "text":
                content.append({"type": "text", "text": block["text"]})
        return from_anthropic({"content": content})

    def _tool(self, name: str) -> dict[str, Any]:
        schema: Mapping[str, Any] = self.tool_schemas.get(name) or {"type": "object"}
        described: dict[str, Any] = {"name": name}
        if schema.get("type") == "function":  # an OpenAI tool object, from `tool_schemas`
            function = schema.get("function") or {}
            if function.get("description"):
                described["description"] = function["description"]
            schema = function.get("parameters") or {"type": "object"}
        described["input_schema"] = dict(schema)
        return described


def _arguments(raw: str) -> JsonValue:
    try:
        value: JsonValue = json.loads(raw)
    except ValueError as exc:
        raise EffectError(
            FailureCategory.executor_error, f"the model's tool call input is not JSON: {raw!r}"
        ) from exc
    return value


def to_anthropic(messages: Sequence[JsonValue]) -> tuple[str, list[dict[str, Any]]]:
    """Our messages as the API's: the system text, and alternating user and assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            message = {"role": "user", "content": str(message)}
        role, content = message.get("role"), message.get("content")
        if role == "system":
            system.append(content if isinstance(content, str) else json.dumps(content))
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": content if isinstance(content, str) else json.dumps(content),
            }
            previous = turns[-1] if turns else None
            if previous is not None and previous["role"] == "user" and _all_results(previous):
                previous["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
            continue
        if role == "assistant":
            blocks: list[dict[str, Any]] = []
            if content:
                blocks.append({"type": "text", "text": str(content)})
            calls = message.get("tool_calls") or []
            for call in calls if isinstance(calls, list) else []:
                if isinstance(call, Mapping):
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call.get("id"),
                            "name": call.get("name"),
                            "input": call.get("arguments") or {},
                        }
                    )
            turns.append({"role": "assistant", "content": blocks or ""})
            continue
        turns.append({"role": "user", "content": content if isinstance(content, str) else ""})
    return "\n\n".join(system), turns


def _all_results(turn: Mapping[str, Any]) -> bool:
    content = turn["content"]
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


def from_anthropic(response: Any) -> Mapping[str, JsonValue]:
    """The API's answer (a `Message` or its dict) in our message shape."""
    texts: list[str] = []
    calls: list[JsonValue] = []
    for block in _field(response, "content") or ():
        kind = _field(block, "type")
        if kind == "text":
            texts.append(_field(block, "text") or "")
        elif kind == "tool_use":
            arguments = _field(block, "input")
            calls.append(
                {
                    "id": _field(block, "id"),
                    "name": _field(block, "name"),
                    "arguments": dict(arguments) if isinstance(arguments, Mapping) else {},
                }
            )
    return {"content": "".join(texts), "tool_calls": calls}
