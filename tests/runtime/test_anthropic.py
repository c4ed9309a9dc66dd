"""`AnthropicModel` with fake Messages clients: tool calls both ways, streamed progress, errors."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from interruptible import (
    AgentLoop,
    AnthropicModel,
    EffectProgress,
    FailureCategory,
    RunStatus,
    StepPolicy,
    tool_schemas,
)
from interruptible._journal import MemoryJournal
from interruptible._runtime import EffectError, Runtime
from tests.runtime.support import arun


def _events(text_pieces: list[str], call: dict[str, Any] | None = None) -> list[Any]:
    """The raw stream events of one answer: a text block in pieces, then maybe a tool call."""
    events: list[Any] = [{"type": "message_start", "message": {"role": "assistant"}}]
    events.append(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    for piece in text_pieces:
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
        )
    events.append({"type": "content_block_stop", "index": 0})
    if call is not None:
        block = SimpleNamespace(type="tool_use", id=call["id"], name=call["name"], input={})
        events.append(SimpleNamespace(type="content_block_start", index=1, content_block=block))
        raw = '{"city": ' + f'"{call["city"]}"' + "}"
        for half in (raw[:5], raw[5:]):
            delta = SimpleNamespace(type="input_json_delta", partial_json=half)
            events.append(SimpleNamespace(type="content_block_delta", index=1, delta=delta))
        events.append({"type": "content_block_stop", "index": 1})
    events.append({"type": "message_delta", "delta": {"stop_reason": "end_turn"}})
    events.append({"type": "message_stop"})
    return events


class _Messages:
    """A fake `client.messages`: answers from a list, streamed or whole, and keeps the requests."""

    def __init__(self, answers: list[list[Any]], fail: Exception | None = None) -> None:
        self.answers = answers
        self.fail = fail
        self.requests: list[dict[str, Any]] = []

    async def create(self, **request: Any) -> Any:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        events = self.answers[len(self.requests) - 1]
        if not request.get("stream"):
            return SimpleNamespace(content=_whole(events))

        async def stream() -> Any:
            for event in events:
                await asyncio.sleep(0)
                yield event

        return stream()


def _whole(events: list[Any]) -> list[Any]:
    """The `Message.content` the same answer has when it is not streamed."""
    text = "".join(
        e["delta"]["text"]
        for e in events
        if isinstance(e, dict) and e["type"] == "content_block_delta"
    )
    content: list[Any] = [{"type": "text", "text": text}]
    for e in events:
        if getattr(e, "type", None) == "content_block_start":
            content.append({"type": "tool_use", "id": e.content_block.id, "name": "lookup"})
            content[-1]["input"] = {"city": "Oslo"}
    return content


def test_tool_11_messages_and_tool_calls_are_mapped_both_ways() -> None:
    """Our messages go in as the Messages API's: the system text apart, an assistant's tool calls
    as `tool_use` blocks, consecutive tool results as one user turn of `tool_result` blocks, the
    tools with their input schemas; the answer's text and `tool_use` blocks come back as content
    and tool calls, streamed or not (TOOL-11)."""

    def lookup(city: str) -> str:
        """Look a city up."""
        return city

    for stream in (True, False):
        messages = _Messages(
            [_events(["Let me ", "look."], {"id": "tu-1", "name": "lookup", "city": "Oslo"})]
        )
        model = AnthropicModel(
            SimpleNamespace(messages=messages),
            model="claude-test",
            max_tokens=100,
            tool_schemas=tool_schemas({"lookup": lookup}),
            stream=stream,
        )
        history = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "a", "name": "lookup", "arguments": {"city": "X"}},
                    {"id": "b", "name": "lookup", "arguments": {"city": "Y"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "rain"},
            {"role": "tool", "tool_call_id": "b", "content": {"t": 3}},
        ]
        answer = arun(model.complete(history, ["lookup"]))
        assert answer == {
            "content": "Let me look.",
            "tool_calls": [{"id": "tu-1", "name": "lookup", "arguments": {"city": "Oslo"}}],
        }
        request = messages.requests[0]
        assert request["model"] == "claude-test" and request["max_tokens"] == 100
        assert request["system"] == "Be brief."
        assert request["messages"] == [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "a", "name": "lookup", "input": {"city": "X"}},
                    {"type": "tool_use", "id": "b", "name": "lookup", "input": {"city": "Y"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "rain"},
                    {"type": "tool_result", "tool_use_id": "b", "content": '{"t": 3}'},
                ],
            },
        ]
        assert request["tools"] == [
            {
                "name": "lookup",
                "description": "Look a city up.",
                "input_schema": tool_schemas({"lookup": lookup})["lookup"]["function"][
                    "parameters"
                ],
            }
        ]
        assert request.get("stream", False) is stream


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("RateLimitError", FailureCategory.rate_limited),
        ("OverloadedError", FailureCategory.transient),
        ("APITimeoutError", FailureCategory.timeout),
        ("BadRequestError", FailureCategory.invalid_input),
        ("AuthenticationError", FailureCategory.executor_error),
    ],
)
def test_tool_11_client_errors_map_to_categories(name: str, category: FailureCategory) -> None:
    """The client's exceptions become failure categories by class name (TOOL-11)."""
    error = type(name, (Exception,), {})("boom")
    model = AnthropicModel(SimpleNamespace(messages=_Messages([], error)), model="m")
    with pytest.raises(EffectError) as raised:
        arun(model.complete([{"role": "user", "content": "hi"}], []))
    assert raised.value.category is category


def test_tool_11_a_real_anthropic_client_is_accepted_without_network() -> None:
    """The adapter takes the SDK's own client object (made, never called here); anything
    without `messages.create` is a `TypeError` that says what it takes (TOOL-11)."""
    import anthropic

    AnthropicModel(anthropic.AsyncAnthropic(api_key="test"), model="m")
    with pytest.raises(TypeError, match=r"messages\.create"):
        AnthropicModel(object(), model="m")


def test_tool_11_an_agent_loop_streams_its_answer_as_coalesced_progress() -> None:
    """An agent loop over `AnthropicModel`: the tool call the model streams runs, and the
    streamed text is the llm step's progress, each report the whole text so far, so the last one
    journaled says it all however many deltas the writer coalesced (TOOL-11, RT-19)."""
    pieces = [f"w{i} " for i in range(200)]
    messages = _Messages(
        [
            _events(["Checking."], {"id": "tu-1", "name": "lookup", "city": "Oslo"}),
            _events(pieces),
        ]
    )
    model = AnthropicModel(SimpleNamespace(messages=messages), model="m")
    journal = MemoryJournal()

    def lookup(city: str) -> str:
        return f"sunny in {city}"

    async def scenario() -> Any:
        agent = AgentLoop("agent", tools=("lookup",), tool_policy=StepPolicy())
        async with Runtime(journal, modes=[agent], model=model, tools={"lookup": lookup}) as rt:
            handle = await rt.run("c", {"prompt": "weather?"}, mode="agent")
            return await handle.wait(until="terminal")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output == {"answer": "".join(pieces), "turns": 2}
    progress = [
        (r.event.step_id, r.event.progress)
        for r in journal.read("c")
        if isinstance(r.event, EffectProgress)
    ]
    last_turn = [value for step, value in progress if step == progress[-1][0]]
    assert 1 <= len(last_turn) <= len(pieces)
    assert last_turn[-1] == {"text": "".join(pieces)}
    assert messages.requests[1]["messages"][-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "tu-1", "content": "sunny in Oslo"}],
    }


def test_tool_11_an_interrupt_mid_stream_stops_the_stream_and_resume_asks_again() -> None:
    """An interrupt while the answer streams cancels the llm step's task where it waits for the
    next event (the stream is closed, not read to its end); the resumed run asks the model again
    and completes with the new answer (TOOL-11)."""
    closed: list[str] = []
    streaming = asyncio.Event()

    class Messages:
        def __init__(self) -> None:
            self.calls = 0

        async def create(self, **request: Any) -> Any:
            self.calls += 1
            first = self.calls == 1

            async def stream() -> Any:
                try:
                    for event in _events(["Thinking", " hard"] if first else ["Done."]):
                        if first and event.get("type") == "content_block_stop":
                            streaming.set()
                            await asyncio.sleep(30)  # the rest never comes in time
                        yield event
                finally:
                    closed.append("first" if first else "second")

            return stream()

    messages = Messages()
    model = AnthropicModel(SimpleNamespace(messages=messages), model="m")

    async def scenario() -> Any:
        agent = AgentLoop("agent", tools=())
        async with Runtime("memory", modes=[agent], model=model) as rt:
            handle = await rt.run("c", {"prompt": "hi"}, mode="agent")
            await asyncio.wait_for(streaming.wait(), 5)
            await handle.interrupt()
            await handle.resume()
            return await handle.wait(until="terminal")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output == {"answer": "Done.", "turns": 1}
    assert messages.calls == 2 and closed == ["first", "second"]
