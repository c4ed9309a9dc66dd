"""Tools in the ecosystem's own terms (spec/tools.md): pydantic-typed tools, LangChain tools,
an MCP server's tools, each driven by an agent loop, interrupted in flight and resumed."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import subprocess
import sys
import typing
from typing import Any, Literal

import anyio
import pytest
from langchain_core.tools import StructuredTool, ToolException
from langchain_core.tools import tool as langchain_tool
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from interruptible import (
    AgentLoop,
    FailureCategory,
    McpTools,
    RunStatus,
    ScriptedModel,
    StepPolicy,
    StepStatus,
    tool_schemas,
)
from interruptible._runtime import Runtime
from interruptible._runtime._arguments import Arguments
from tests.runtime.support import arun, pipeline, tool_step, until


class Cabin(enum.Enum):
    economy = "economy"
    business = "business"


class Trip(BaseModel):
    destination: str
    dates: list[str]
    cabin: Cabin = Cabin.economy


@dataclasses.dataclass
class Traveller:
    name: str
    age: int


class Opaque:
    """No pydantic model, dataclass or TypedDict: pydantic cannot validate it."""


class OldStyle(typing.TypedDict):
    a: int


class Contact(TypedDict):
    email: str


BOOKED: list[Any] = []


def book(
    trip: Trip,
    traveller: Traveller,
    contact: Contact,
    seats: Literal[1, 2] = 1,
    pair: tuple[int, int] = (0, 0),
) -> str:
    """Book a trip."""
    BOOKED.append((trip, traveller, contact, seats, pair))
    return f"{traveller.name} to {trip.destination} in {trip.cabin.value}"


GOOD = {
    "trip": {"destination": "Oslo", "dates": ["2026-01-02", "2026-01-09"], "cabin": "business"},
    "traveller": {"name": "Ana", "age": 30},
    "contact": {"email": "a@x"},
}


def test_tool_1_a_pydantic_typed_tool_is_called_with_models_and_bad_arguments_name_the_path() -> (
    None
):
    """A tool whose parameters are a pydantic model, a dataclass, a TypedDict, a Literal and a
    tuple registers and is called with instances built from the JSON arguments; arguments that
    do not fit fail the step as `invalid_input`, not retryable, before the call, and the message
    names the argument and the path inside it (TOOL-1)."""
    BOOKED.clear()

    async def scenario(**arguments: Any) -> Any:
        mode = pipeline("p", [tool_step("b", "book", StepPolicy(max_attempts=3), **arguments)])
        async with Runtime("memory", modes=[mode], tools={"book": book}) as rt:
            return await (await rt.run("c", None, mode="p")).wait()

    final = arun(scenario(**GOOD, pair=[1, 2]))
    assert final.status is RunStatus.completed
    assert final.steps[0].output == "Ana to Oslo in business"
    trip, traveller, contact, seats, pair = BOOKED[0]
    assert isinstance(trip, Trip) and trip.cabin is Cabin.business
    assert traveller == Traveller("Ana", 30)
    assert contact == {"email": "a@x"} and seats == 1 and pair == (1, 2)

    bad = {**GOOD, "trip": {**GOOD["trip"], "dates": ["2026-01-02", 9]}}
    final = arun(scenario(**bad))
    assert final.status is RunStatus.failed
    assert final.error.category is FailureCategory.invalid_input
    assert final.error.retryable is False and final.steps[0].attempt == 1
    assert final.error.message == (
        "'book': argument 'trip.dates[1]' should be a valid string, got an integer 9"
    )
    assert final.error.details == {"argument": "trip.dates[1]"}
    assert len(BOOKED) == 1


@pytest.mark.parametrize(
    ("annotation", "value", "fits"),
    [
        (int, 2, True),
        (int, 2.0, False),  # a JSON number with a fraction part is no int
        (int, True, False),  # a boolean is no number
        (int, "2", False),  # text is never parsed into a number
        (float, 2, True),  # an integer is a number
        (float, float("nan"), False),  # JSON numbers are finite
        (bool, 1, False),
        (str, 3, False),
        (Cabin, "business", True),  # an enum by its value
        (Cabin, "Business", False),
        (Literal[2.0], 2, True),  # a literal number by value, as JSON Schema compares it
        (tuple[int, str], [1, "a"], True),  # an array is a tuple
        (Trip, {"destination": "x", "dates": []}, True),  # an object is a model
        (Trip, {"destination": "x", "dates": [], "extra": 1}, True),  # the model's own rule
        (Traveller, {"name": "a", "age": "3"}, False),
    ],
)
def test_tool_2_strictness_is_pydantic_strict_json_mode(
    annotation: Any, value: Any, fits: bool
) -> None:
    """Arguments are validated as JSON in pydantic's strict mode: ambiguous values are refused,
    objects become models, dataclasses and TypedDicts, strings become enum members (TOOL-2)."""

    def f(x: Any) -> None: ...

    f.__annotations__["x"] = annotation
    assert (Arguments("f", f).problem({"x": value}) is None) is fits


def test_tool_3_pydantic_is_imported_by_the_first_tool_not_by_import_interruptible() -> None:
    """`import interruptible`, the pure core and a runtime without tools never import pydantic
    (nor the optional LangChain, MCP or Anthropic packages); registering a tool does (TOOL-3)."""
    code = (
        "import sys, interruptible\n"
        "from interruptible import Runtime, McpTools, AnthropicModel, Coordinator\n"
        "heavy = ('pydantic', 'langchain_core', 'mcp', 'anthropic')\n"
        "print(any(m in sys.modules for m in heavy))\n"
        "Runtime('memory')\n"
        "print('pydantic' in sys.modules)\n"
        "Runtime('memory', tools={'f': lambda x: x})\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False", "True"]


def test_tool_4_tool_schemas_are_pydantics_json_schema() -> None:
    """`tool_schemas` gives each tool pydantic's JSON Schema of its arguments: models, enums and
    dataclasses in `$defs`, referred to by `$ref`, exactly as pydantic writes them (TOOL-4)."""
    schema = tool_schemas({"book": book})["book"]["function"]
    assert schema["description"] == "Book a trip."
    parameters = schema["parameters"]
    assert parameters["properties"]["trip"] == {"$ref": "#/$defs/Trip"}
    trip = TypeAdapter(Trip).json_schema()
    assert parameters["$defs"]["Trip"] == {k: v for k, v in trip.items() if k != "$defs"}
    assert parameters["$defs"]["Cabin"] == {
        "enum": ["economy", "business"],
        "title": "Cabin",
        "type": "string",
    }
    assert sorted(parameters["required"]) == ["contact", "traveller", "trip"]
    assert parameters["additionalProperties"] is False


def test_tool_5_a_typing_typed_dict_on_python_3_11_is_refused_with_what_to_do() -> None:
    """pydantic reads `typing.TypedDict` only from Python 3.12: before that, a parameter typed
    with one is a `TypeError` at registration that says to use `typing_extensions` (TOOL-5)."""

    def f(x: OldStyle) -> None: ...

    if sys.version_info >= (3, 12):
        assert Arguments("f", f).problem({"x": {"a": "1"}}) is not None
    else:
        with pytest.raises(TypeError, match="typing_extensions"):
            Arguments("f", f)


# --- LangChain tools ---------------------------------------------------------------------------


class CityQuery(BaseModel):
    city: str


def test_tool_6_a_langchain_tool_is_validated_from_its_args_schema_and_called_async() -> None:
    """A LangChain `BaseTool` registers as it is: its `args_schema` validates the arguments
    before the call (`invalid_input`), `tool_schemas` describes it from LangChain's own
    conversion, and it is called through `ainvoke` (TOOL-6)."""
    calls: list[str] = []

    async def weather(city: str) -> str:
        calls.append(city)
        return f"sunny in {city}"

    lc = StructuredTool.from_function(
        coroutine=weather, name="weather", description="The weather.", args_schema=CityQuery
    )
    described = tool_schemas({"w": lc})["w"]["function"]
    assert described["description"] == "The weather."
    assert described["parameters"]["properties"]["city"]["type"] == "string"

    async def scenario(**arguments: Any) -> Any:
        mode = pipeline("p", [tool_step("t", "w", **arguments)])
        async with Runtime("memory", modes=[mode], tools={"w": lc}) as rt:
            return await (await rt.run("c", None, mode="p")).wait()

    final = arun(scenario(city="Oslo"))
    assert final.status is RunStatus.completed
    assert calls == ["Oslo"]
    final = arun(scenario(city=3))
    assert final.error.category is FailureCategory.invalid_input
    assert final.error.message == "'w': argument 'city' should be a valid string, got an integer 3"
    assert calls == ["Oslo"]


@pytest.mark.parametrize(
    ("raised", "category", "retryable"),
    [
        (ToolException("no such city"), FailureCategory.executor_error, False),
        (ConnectionError("reset"), FailureCategory.transient, True),
        (TimeoutError("slow"), FailureCategory.timeout, True),
        (RuntimeError("bug"), FailureCategory.executor_error, False),
        (NotImplementedError("no body"), FailureCategory.not_found, False),
        (
            ValidationError.from_exception_data("CityQuery", []),
            FailureCategory.invalid_input,
            False,
        ),
    ],
)
def test_tool_7_a_langchain_tools_exceptions_map_to_failure_categories(
    raised: Exception, category: FailureCategory, retryable: bool
) -> None:
    """A LangChain tool's exceptions become failure categories by class: `ToolException` an
    `executor_error` (not retryable), `ConnectionError` `transient`, `TimeoutError` `timeout`
    (both retryable), anything else an `executor_error` (TOOL-7)."""

    @langchain_tool
    async def lookup(city: str) -> str:
        """Look a city up."""
        raise raised

    async def scenario() -> Any:
        mode = pipeline("p", [tool_step("t", "lookup", city="x")])
        async with Runtime("memory", modes=[mode], tools={"lookup": lookup}) as rt:
            return await (await rt.run("c", None, mode="p")).wait()

    final = arun(scenario())
    assert final.status is RunStatus.failed
    assert final.error.category is category
    assert final.error.retryable is retryable


def _agent_run(tool_name: str, arguments: dict[str, Any]) -> tuple[AgentLoop, ScriptedModel]:
    call = {"id": "call-1", "name": tool_name, "arguments": arguments}
    model = ScriptedModel([{"content": "", "tool_calls": [call]}, "done"])
    return AgentLoop("agent", tools=(tool_name,), tool_policy=StepPolicy()), model


async def _interrupt_in_flight_and_resume(
    rt: Runtime, started: asyncio.Event, release: asyncio.Event
) -> Any:
    handle = await rt.run("c", {"prompt": "go"}, mode="agent", run_id="r")
    await asyncio.wait_for(started.wait(), 5)
    await handle.interrupt()
    await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.pending)
    release.set()
    await handle.resume()
    return await handle.wait(until="terminal")


def test_tool_6_an_agent_loop_drives_a_langchain_tool_and_an_interrupt_cancels_its_task() -> None:
    """An agent loop calls a LangChain tool; an interrupt while the call is in flight cancels the
    tool's task (it sees `CancelledError`), and the resumed run calls it again and completes
    (TOOL-6)."""
    seen: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(city: str) -> str:
        seen.append("start")
        started.set()
        try:
            if not release.is_set():
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            started.clear()
            raise
        seen.append("done")
        return f"sunny in {city}"

    lc = StructuredTool.from_function(coroutine=slow, name="slow", description="Slow weather.")
    agent, model = _agent_run("slow", {"city": "Oslo"})

    async def scenario() -> Any:
        async with Runtime("memory", modes=[agent], model=model, tools={"slow": lc}) as rt:
            return await _interrupt_in_flight_and_resume(rt, started, release)

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output == {"answer": "done", "turns": 2}
    assert seen == ["start", "cancelled", "start", "done"]


def test_tool_1_an_agent_loop_drives_a_pydantic_typed_tool_through_an_interrupt() -> None:
    """An agent loop calls a pydantic-typed async tool with the model's JSON arguments; an
    interrupt while the call is in flight cancels its task, and the resumed run calls it again
    with a fresh `Trip` and completes (TOOL-1)."""
    seen: list[Any] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def plan_trip(trip: Trip) -> str:
        seen.append(trip)
        started.set()
        try:
            if not release.is_set():
                await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return f"{len(trip.dates)} days in {trip.destination}"

    agent, model = _agent_run("plan_trip", {"trip": {"destination": "Oslo", "dates": ["a", "b"]}})

    async def scenario() -> Any:
        async with Runtime(
            "memory", modes=[agent], model=model, tools={"plan_trip": plan_trip}
        ) as rt:
            return await _interrupt_in_flight_and_resume(rt, started, release)

    final = arun(scenario())
    assert final.status is RunStatus.completed
    trip = Trip(destination="Oslo", dates=["a", "b"])
    assert seen == [trip, "cancelled", trip]
    assert final.steps[1].output == "2 days in Oslo"


# --- MCP servers -------------------------------------------------------------------------------


def _server(log: list[str], release: anyio.Event | None = None) -> MCPServer:
    server = MCPServer("test-tools")

    @server.tool()
    async def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    async def wait_for(city: str) -> str:
        """Wait, then answer."""
        log.append("start")
        try:
            if release is None or not release.is_set():
                await anyio.sleep(30)
        except BaseException:
            log.append("cancelled")
            raise
        log.append("done")
        return f"sunny in {city}"

    @server.tool()
    def refuse() -> str:
        """Always fails."""
        raise ValueError("no")

    return server


def test_tool_8_mcp_tools_are_listed_and_named_by_the_server_after_a_prefix() -> None:
    """`await McpTools(session).load()` lists a server's tools as a mapping from step name (the
    server's name after `prefix`) to tool; `only` keeps some; each is described by its
    `inputSchema`; before `load()` it says what to do (TOOL-8)."""

    async def scenario() -> None:
        async with Client(_server([])) as client:
            unloaded = McpTools(client)
            with pytest.raises(RuntimeError, match="load"):
                len(unloaded)
            tools = await McpTools(client).load()
            assert sorted(tools) == ["add", "refuse", "wait_for"]
            some = await McpTools(client, prefix="calc_", only=("add",)).load()
            assert list(some) == ["calc_add"] and some["calc_add"].name == "add"
            described = tool_schemas(dict(some))["calc_add"]["function"]
            assert described["description"] == "Add two numbers."
            assert described["parameters"]["required"] == ["a"]
            with pytest.raises(LookupError, match="'nope'"):
                await McpTools(client, only=("nope",)).load()
        with pytest.raises(TypeError, match="MCP session"):
            McpTools(object())

    arun(scenario())


def test_tool_8_mcp_tools_lists_every_page_through_a_client_or_a_client_session() -> None:
    """`load()` follows `nextCursor` to the last page, through `mcp.Client` (`cursor=`) and
    through the SDK's `ClientSession` (`params=`), the latter also on a real in-process server
    (TOOL-8)."""
    from mcp.types import PaginatedRequestParams

    pages = {
        None: {"tools": [{"name": "a", "inputSchema": {"type": "object"}}], "nextCursor": "2"},
        "2": {"tools": [{"name": "b", "inputSchema": {"type": "object"}}], "nextCursor": None},
    }

    class ByCursor:
        async def list_tools(self, *, cursor: str | None = None) -> Any:
            return pages[cursor]

        async def call_tool(self, name: str, arguments: Any) -> Any: ...

    class ByParams(ByCursor):
        async def list_tools(self, *, params: PaginatedRequestParams | None = None) -> Any:  # type: ignore[override]
            return pages[params.cursor if params is not None else None]

    async def scenario() -> None:
        for session in (ByCursor(), ByParams()):
            assert sorted(await McpTools(session).load()) == ["a", "b"]
        async with Client(_server([])) as client:
            tools = await McpTools(client.session).load()
            assert sorted(tools) == ["add", "refuse", "wait_for"]

    arun(scenario())


def test_tool_10_mcp_calls_validate_first_and_map_errors() -> None:
    """An MCP tool's arguments are checked against its `inputSchema` before any request
    (`invalid_input`); a result the server marks `isError` fails the step as `executor_error`,
    not retryable; a structured result is the step's output (TOOL-10)."""

    async def scenario() -> list[Any]:
        async with Client(_server([])) as client:
            tools = await McpTools(client).load()
            steps = [
                tool_step("ok", "add", a=1),
                tool_step("bad", "add", a="1"),
                tool_step("err", "refuse"),
            ]
            finals = []
            for step in steps:
                mode = pipeline(step.step_id, [step])
                async with Runtime("memory", modes=[mode], tools=tools) as rt:
                    finals.append(await (await rt.run("c", None, mode=step.step_id)).wait())
            return finals

    ok, bad, err = arun(scenario())
    assert ok.status is RunStatus.completed and ok.steps[0].output == {"result": 3}
    assert bad.error.category is FailureCategory.invalid_input
    assert bad.error.message == "'add': argument 'a' '1' is not of type 'integer'"
    assert err.error.category is FailureCategory.executor_error
    assert err.error.retryable is False
    assert "the MCP tool 'refuse' answered an error" in err.error.message


def test_tool_9_an_interrupt_cancels_the_mcp_request_and_resume_calls_again() -> None:
    """An agent loop calls an MCP server's tool; an interrupt while the request is in flight
    cancels it, and the server's handler is cancelled (`notifications/cancelled`); the resumed
    run sends the call again and completes with its result (TOOL-9)."""
    log: list[str] = []
    release = anyio.Event()
    agent, model = _agent_run("wait_for", {"city": "Oslo"})

    async def scenario() -> Any:
        async with Client(_server(log, release)) as client:
            tools = await McpTools(client).load()
            async with Runtime("memory", modes=[agent], model=model, tools=tools) as rt:
                handle = await rt.run("c", {"prompt": "go"}, mode="agent", run_id="r")
                await until(lambda: log == ["start"])
                await handle.interrupt()
                await until(lambda: log == ["start", "cancelled"])
                release.set()
                await handle.resume()
                return await handle.wait(until="terminal")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output == {"answer": "done", "turns": 2}
    assert log == ["start", "cancelled", "start", "done"]


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (-32602, FailureCategory.invalid_input),
        (-32601, FailureCategory.not_found),
        (-32603, FailureCategory.transient),
        (-1, FailureCategory.executor_error),
    ],
)
def test_tool_10_an_mcp_protocol_error_maps_by_its_json_rpc_code(
    code: int, category: FailureCategory
) -> None:
    """An error response to `tools/call` (the SDK's `MCPError`) fails the step by its JSON-RPC
    code: invalid params `invalid_input`, method not found `not_found`, internal error
    `transient`, others `executor_error`; the details keep the code (TOOL-10)."""
    from mcp.shared.exceptions import MCPError

    class Session:
        async def list_tools(self) -> Any:
            return {"tools": [{"name": "t", "description": "", "inputSchema": {"type": "object"}}]}

        async def call_tool(self, name: str, arguments: Any) -> Any:
            raise MCPError(code, "refused")

    async def scenario() -> Any:
        tools = await McpTools(Session()).load()
        mode = pipeline("p", [tool_step("s", "t")])
        async with Runtime("memory", modes=[mode], tools=tools) as rt:
            return await (await rt.run("c", None, mode="p")).wait()

    final = arun(scenario())
    assert final.error.category is category
    assert final.error.details == {"tool": "t", "code": code}


def test_tool_1_a_signature_pydantic_cannot_validate_is_refused_at_registration() -> None:
    """A parameter of a class pydantic cannot validate, or an annotation that does not resolve,
    is a `TypeError` naming the tool when the runtime is made, before anything runs (TOOL-1)."""

    def takes_opaque(x: Opaque) -> None: ...

    with pytest.raises(TypeError, match="'o': pydantic cannot validate one of its parameters"):
        Runtime("memory", tools={"o": takes_opaque})


def test_tool_8_mcp_tools_of_a_server_run_as_a_subprocess_over_stdio() -> None:
    """The same through a real MCP transport: a server the test starts as a subprocess, spoken
    to over stdio (no network) (TOOL-8)."""
    from mcp import StdioServerParameters

    script = (
        "from mcp.server.mcpserver import MCPServer\n"
        "server = MCPServer('stdio-tools')\n"
        "@server.tool()\n"
        "def shout(text: str) -> str:\n"
        "    return text.upper()\n"
        "server.run('stdio')\n"
    )
    params = StdioServerParameters(command=sys.executable, args=["-c", script])

    async def scenario() -> Any:
        async with Client(params) as client:
            tools = await McpTools(client).load()
            mode = pipeline("p", [tool_step("s", "shout", text="hi")])
            async with Runtime("memory", modes=[mode], tools=tools) as rt:
                return await (await rt.run("c", None, mode="p")).wait()

    final = arun(scenario(), timeout=60)
    assert final.status is RunStatus.completed
    assert final.steps[0].output == {"result": "HI"}


def test_tool_1_the_demo_summarises_through_a_pydantic_typed_tool() -> None:
    """The demo's `summarize` step calls a tool whose argument is a pydantic model: its step
    input validates into a `Brief`, and a wrong tone is refused naming the path (TOOL-1)."""
    from interruptible._runtime._demo import DEMO_MODE, Brief, summarize

    step = next(s for s in DEMO_MODE.steps if s.step_id == "summarize")
    plan = Arguments("summarize", summarize)
    assert plan.bind(step.input["arguments"]) == {
        "brief": Brief(topic="European capitals", tone="plain")
    }
    assert plan.problem({"brief": {"topic": "x", "tone": "loud"}}) == (
        "'summarize': argument 'brief.tone' should be 'plain' or 'lively', got a string 'loud'"
    )
