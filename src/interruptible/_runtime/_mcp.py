"""The tools of a Model Context Protocol server, registered as `tool` steps.

Theory of operation
-------------------
`McpTools(session)` wraps a connected MCP client session: the official `mcp` SDK's `Client` or
`ClientSession`, or anything with `async list_tools()` and `async call_tool(name, arguments)`.
`await tools.load()` lists the server's tools (every page) and makes the object a read-only
mapping from step name to tool, so `tools={**mcp_tools, "fetch": fetch}` registers them beside
plain callables (TOOL-8). A step is named as the server names the tool, after `prefix`.

Each call validates its arguments against the tool's `inputSchema` first (a refusal is
`invalid_input` before the request is sent, TOOL-1), then sends `tools/call` through the session.
The step's task awaits the request, so cancelling the step (an interrupt, a cancel, a timeout)
cancels the request, and the SDK tells the server with `notifications/cancelled` (TOOL-9). A
result the server marks `isError` fails the step as `executor_error`, not retryable (the server
ran the tool and it said no); a protocol error (`MCPError`) by its JSON-RPC code (TOOL-10). The
output is the result's structured content when the server gives one, else its one text block's
text, else its content blocks as JSON.

The `mcp` package is an optional extra (`interruptible[mcp]`); this module only imports it to
read a result, duck-typed, so a session from any SDK version that keeps these names works.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from .._vocabulary import FailureCategory, JsonValue
from ._executors import EffectError

if TYPE_CHECKING:
    from ._arguments import ArgumentPlan

# JSON-RPC error codes of an MCP error response, by category (TOOL-10): the request itself was
# wrong (invalid params, an unknown method or tool) or the server failed while answering.
_CODES: Final[dict[int, FailureCategory]] = {
    -32602: FailureCategory.invalid_input,  # invalid params
    -32601: FailureCategory.not_found,  # method not found
    -32600: FailureCategory.invalid_input,  # invalid request
    -32603: FailureCategory.transient,  # internal error
}


def _field(value: Any, *names: str) -> Any:
    """A field by any of its spellings (`input_schema` in one SDK, `inputSchema` in another)."""
    for name in names:
        if isinstance(value, Mapping):
            if name in value:
                return value[name]
        elif hasattr(value, name):
            return getattr(value, name)
    return None


class McpTool:
    """One tool of an MCP server, as the tool executor calls it: `await tool(**arguments)`."""

    __slots__ = ("description", "input_schema", "name", "session")

    def __init__(self, session: Any, name: str, description: str, input_schema: Any) -> None:
        self.session = session
        self.name = name  # the server's name for it, sent in `tools/call`
        self.description = description
        self.input_schema: dict[str, Any] = (
            dict(input_schema) if isinstance(input_schema, Mapping) else {"type": "object"}
        )

    def arguments_plan(self, name: str) -> ArgumentPlan:
        from ._foreign import SchemaArguments, json_schema_validator  # pydantic, at registration

        schema = self.input_schema
        return SchemaArguments(name, self.description, schema, json_schema_validator(schema))

    async def __call__(self, **arguments: Any) -> JsonValue:
        try:
            result = await self.session.call_tool(self.name, arguments)
        except EffectError:
            raise
        except Exception as exc:
            code = _field(_field(exc, "error"), "code")
            if code is None:
                code = _field(exc, "code")
            category = _CODES.get(code, FailureCategory.executor_error)
            if type(exc).__name__ in ("TimeoutError", "McpTimeoutError"):
                raise
            raise EffectError(
                category,
                f"{type(exc).__name__}: {exc}",
                details={"tool": self.name, "code": code if isinstance(code, int) else None},
            ) from exc
        content = [_block(block) for block in _field(result, "content") or ()]
        if _field(result, "is_error", "isError"):
            text = " ".join(str(block.get("text", "")) for block in content).strip()
            raise EffectError(
                FailureCategory.executor_error,
                f"the MCP tool {self.name!r} answered an error: {text or 'no text'}",
                retryable=False,
                details={"tool": self.name, "content": content},
            )
        structured = _field(result, "structured_content", "structuredContent")
        if structured is not None:
            return structured
        if len(content) == 1 and content[0].get("type") == "text":
            return content[0].get("text")
        return content

    def __repr__(self) -> str:
        return f"McpTool({self.name!r})"


def _block(block: Any) -> dict[str, JsonValue]:
    dump = getattr(block, "model_dump", None)
    if callable(dump):
        dumped: dict[str, JsonValue] = dump(mode="json", exclude_none=True, by_alias=True)
        return dumped
    return dict(block) if isinstance(block, Mapping) else {"type": "text", "text": str(block)}


class McpTools(Mapping[str, McpTool]):
    """The tools of an MCP server, by step name, once `await load()` has listed them.

    `McpTools(session, prefix="weather_")` names each step `prefix + tool name`; `only=` keeps
    just the tools named there (the server's names).
    """

    def __init__(
        self, session: Any, *, prefix: str = "", only: tuple[str, ...] | None = None
    ) -> None:
        if not callable(getattr(session, "call_tool", None)) or not callable(
            getattr(session, "list_tools", None)
        ):
            raise TypeError(
                f"McpTools takes a connected MCP session (an mcp.Client or ClientSession), got "
                f"{session!r}"
            )
        self.session = session
        self.prefix = prefix
        self.only = only
        self._tools: dict[str, McpTool] | None = None

    async def load(self) -> McpTools:
        """List the server's tools (every page); returns self, ready to register."""
        tools: dict[str, McpTool] = {}
        cursor: str | None = None
        while True:
            listed = await (self._next_page(cursor) if cursor else self.session.list_tools())
            for tool in _field(listed, "tools") or ():
                name = str(_field(tool, "name"))
                if self.only is not None and name not in self.only:
                    continue
                tools[self.prefix + name] = McpTool(
                    self.session,
                    name,
                    _field(tool, "description") or "",
                    _field(tool, "input_schema", "inputSchema"),
                )
            cursor = _field(listed, "next_cursor", "nextCursor")
            if not cursor:
                break
        if self.only is not None:
            missing = sorted(set(self.only) - {tool.name for tool in tools.values()})
            if missing:
                raise LookupError(
                    f"the MCP server lists no tool {', '.join(map(repr, missing))}; it lists "
                    f"{sorted(tool.name for tool in tools.values())}"
                )
        self._tools = tools
        return self

    def _next_page(self, cursor: str) -> Any:
        # `mcp.Client.list_tools(cursor=...)`; `ClientSession.list_tools(params=...)`.
        parameters = inspect.signature(self.session.list_tools).parameters
        if "cursor" in parameters or "params" not in parameters:
            return self.session.list_tools(cursor=cursor)
        from mcp.types import PaginatedRequestParams

        return self.session.list_tools(params=PaginatedRequestParams(cursor=cursor))

    def _loaded(self) -> dict[str, McpTool]:
        if self._tools is None:
            raise RuntimeError(
                "McpTools has not listed the server's tools yet; `await tools.load()` first"
            )
        return self._tools

    def __getitem__(self, name: str) -> McpTool:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())
