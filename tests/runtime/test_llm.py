"""The llm step class: ScriptedModel, OpenAICompatibleModel (with fake clients), agent loops."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from interruptible import AgentLoop, FailureCategory, RunStatus, StepPolicy, StepStatus
from interruptible._runtime import EffectError, OpenAICompatibleModel, Runtime, ScriptedModel
from tests.runtime.support import Ledger, arun, until

CALL = {"id": "call-1", "name": "lookup", "arguments": {"city": "Paris"}}


def test_rt_12_scripted_model_answers_by_turn_not_by_call() -> None:
    """The n-th answer goes to the request with n-1 assistant messages, so a retried or
    restarted step gets the same answer; strings are plain content; past the script, an error."""
    model = ScriptedModel(["first", {"content": "", "tool_calls": [CALL]}])
    user = [{"role": "user", "content": "hi"}]
    assert arun(model.complete(user, [])) == {"content": "first", "tool_calls": []}
    assert arun(model.complete(user, [])) == {"content": "first", "tool_calls": []}
    second = [*user, {"role": "assistant", "content": "first"}]
    assert arun(model.complete(second, []))["tool_calls"] == [CALL]
    with pytest.raises(EffectError, match="2 answers"):
        arun(model.complete([*second, {"role": "assistant", "content": ""}], []))


def test_rt_4_agent_loop_resume_never_repeats_a_finished_tool_call() -> None:
    """An agent loop (llm -> two tool calls -> llm) interrupted during its second tool call
    resumes at that call: the first tool call, finished, is never made again (the lesson of
    LangGraph re-running a whole node)."""
    ledger = Ledger()
    gate = asyncio.Event()
    calls = [CALL, {"id": "call-2", "name": "slow_lookup", "arguments": {"city": "Rome"}}]
    model = ScriptedModel([{"content": "", "tool_calls": calls}, "It is sunny in both."])

    def lookup(city: str) -> str:
        ledger.record()
        return f"sunny in {city}"

    async def slow_lookup(city: str) -> str:
        ledger.record()
        await gate.wait()
        return f"sunny in {city}"

    async def scenario() -> Any:
        agent = AgentLoop("agent", tools=("lookup", "slow_lookup"), tool_policy=StepPolicy())
        async with Runtime(
            "memory",
            modes=[agent],
            model=model,
            tools={"lookup": lookup, "slow_lookup": slow_lookup},
        ) as rt:
            handle = await rt.run("c", {"prompt": "weather?"}, mode="agent", run_id="r")
            await until(lambda: ledger.keys["r:turn-1.tool-call-2:1"] == 1)
            await handle.interrupt()
            await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.pending)
            gate.set()
            await handle.resume()
            return await handle.wait()

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output == {"answer": "It is sunny in both.", "turns": 2}
    assert ledger.keys == {
        "r:turn-1.tool-call-1:1": 1,
        "r:turn-1.tool-call-2:1": 1,
        "r:turn-1.tool-call-2:2": 1,
    }


class _Completions:
    def __init__(self, reply: Any, fail: Exception | None = None) -> None:
        self.reply = reply
        self.fail = fail
        self.requests: list[dict[str, Any]] = []

    def create(self, **request: Any) -> Any:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        return self.reply


class _AsyncCompletions(_Completions):
    async def create(self, **request: Any) -> Any:
        return super().create(**request)


def _client(completions: _Completions) -> Any:
    return SimpleNamespace(chat=SimpleNamespace(completions=completions))


def _reply_with_tool_call() -> Any:
    call = SimpleNamespace(
        id="call-9",
        type="function",
        function=SimpleNamespace(name="lookup", arguments=json.dumps({"city": "Oslo"})),
    )
    return SimpleNamespace(
        choices=[SimpleNamespace(message=SimpleNamespace(content=None, tool_calls=[call]))]
    )


@pytest.mark.parametrize("completions_class", [_Completions, _AsyncCompletions])
def test_rt_12_openai_compatible_model_adapts_requests_and_replies(
    completions_class: type[_Completions],
) -> None:
    """The adapter sends the model name, API-shaped messages (tool call arguments as JSON text,
    tool results as text) and tool schemas, through a sync or async client, and turns the reply
    back into the agent loop's message shape."""
    completions = completions_class(_reply_with_tool_call())
    model = OpenAICompatibleModel(
        _client(completions),
        model="gpt-test",
        tool_schemas={"lookup": {"type": "object", "properties": {"city": {"type": "string"}}}},
        temperature=0,
    )
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call-1", "content": {"temp": 20}},
    ]
    answer = arun(model.complete(messages, ["lookup", "other"]))
    assert answer == {
        "content": "",
        "tool_calls": [{"id": "call-9", "name": "lookup", "arguments": {"city": "Oslo"}}],
    }
    (request,) = completions.requests
    assert request["model"] == "gpt-test" and request["temperature"] == 0
    assert request["messages"][1]["tool_calls"][0]["function"] == {
        "name": "lookup",
        "arguments": json.dumps({"city": "Paris"}),
    }
    assert request["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call-1",
        "content": json.dumps({"temp": 20}),
    }
    assert [tool["function"]["name"] for tool in request["tools"]] == ["lookup", "other"]
    assert request["tools"][0]["function"]["parameters"]["properties"] == {
        "city": {"type": "string"}
    }


def test_rt_12_openai_compatible_model_maps_client_errors_to_categories() -> None:
    """A client exception named like OpenAI's rate-limit, timeout or connection errors becomes a
    retryable failure of that category, a bad request or a missing model a failure that is not
    retried, a subclass as its base, and anything else an `executor_error`."""

    def named(name: str, base: type[Exception] = Exception) -> Exception:
        return type(name, (base,), {})(name)

    for error, category, retryable in [
        (named("RateLimitError"), FailureCategory.rate_limited, True),
        (named("APITimeoutError"), FailureCategory.timeout, True),
        (named("Timeout"), FailureCategory.timeout, True),
        (TimeoutError("slow"), FailureCategory.timeout, True),
        (named("ReadTimeout", TimeoutError), FailureCategory.timeout, True),
        (named("APIConnectionError"), FailureCategory.transient, True),
        (named("InternalServerError"), FailureCategory.transient, True),
        (named("ServiceUnavailableError"), FailureCategory.transient, True),
        (named("BadRequestError"), FailureCategory.invalid_input, False),
        (named("NotFoundError"), FailureCategory.not_found, False),
        (ValueError("odd"), FailureCategory.executor_error, False),
    ]:
        model = OpenAICompatibleModel(_client(_Completions(None, error)), model="m")
        with pytest.raises(EffectError) as raised:
            arun(model.complete([{"role": "user", "content": "x"}], []))
        assert (raised.value.category, raised.value.retryable) == (category, retryable)


def test_rt_12_an_agent_runs_end_to_end_on_the_openai_adapter() -> None:
    """A dict-shaped reply works too, and an agent loop completes on the adapter."""
    reply = {"choices": [{"message": {"content": "42", "tool_calls": None}}]}
    model = OpenAICompatibleModel(_client(_Completions(reply)), model="m")

    async def scenario() -> Any:
        async with Runtime("memory", modes=[AgentLoop()], model=model) as rt:
            handle = await rt.run("c", {"prompt": "answer?"}, mode="agent")
            return await handle.wait()

    assert arun(scenario()).output == {"answer": "42", "turns": 1}
