"""Tools made elsewhere, registered as they are: LangChain tools (and the shared schema plan).

Theory of operation
-------------------
`tools=` takes plain callables, and also tools an application already has in another library's
terms. Each kind becomes an async callable here, when it is registered, carrying its own
`arguments_plan` (what `_arguments.plan_for` asks for): the arguments are validated before the
call from the schema the tool declares, so a bad call still fails as `invalid_input` before the
tool runs (TOOL-1), and `tool_schemas` describes the tool from that same schema.

A LangChain `BaseTool` (TOOL-6) is recognised by its class, without importing LangChain (it is
an optional extra, and `import interruptible` never pays for it). Its arguments are validated
against its `args_schema` (a pydantic model, strict JSON as for our own tools, TOOL-2, or a JSON
Schema), it is called through its async path, `ainvoke`, so cancelling the step cancels that
task, and its exceptions are mapped to failure categories by class (`_LANGCHAIN_CATEGORIES`,
TOOL-7). MCP tools come from `McpTools` (`_mcp.py`) and use `SchemaArguments` as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .._vocabulary import FailureCategory, JsonValue
from ._arguments import ArgumentPlan
from ._executors import EffectError
from ._refusals import ArgumentsRefused, refusal, to_json


class SchemaArguments:
    """The argument plan of a tool that declares its arguments as a schema, not a signature.

    The JSON arguments are validated, then passed on as they are (the tool parses them itself).
    """

    __slots__ = ("_validate", "description", "json_schema", "name", "token")

    def __init__(
        self,
        name: str,
        description: str,
        json_schema: Mapping[str, Any],
        validate: Callable[[str, Mapping[str, Any]], None],
    ) -> None:
        self.name = name
        self.description = " ".join(description.split("\n\n", 1)[0].split())
        self.json_schema = dict(json_schema)
        self._validate = validate
        self.token: str | None = None

    def bind(self, arguments: Mapping[Any, Any]) -> dict[str, Any]:
        self._validate(self.name, arguments)
        return dict(arguments)

    def schema(self) -> dict[str, Any]:
        return dict(self.json_schema)


def pydantic_validator(model: Any) -> Callable[[str, Mapping[str, Any]], None]:
    """Validation against a pydantic model class, in strict JSON mode (TOOL-2)."""
    import pydantic

    adapter = pydantic.TypeAdapter(model)

    def validate(name: str, arguments: Mapping[str, Any]) -> None:
        try:
            adapter.validate_json(to_json(name, arguments), strict=True)
        except pydantic.ValidationError as exc:
            raise refusal(name, arguments, exc) from None

    return validate


def json_schema_validator(schema: Mapping[str, Any]) -> Callable[[str, Mapping[str, Any]], None]:
    """Validation against a JSON Schema (an MCP tool's `inputSchema`), with `jsonschema`."""
    import jsonschema  # type: ignore[import-untyped, unused-ignore]

    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    validator = validator_class(schema)

    def validate(name: str, arguments: Mapping[str, Any]) -> None:
        to_json(name, arguments)  # names are strings, values JSON
        error = jsonschema.exceptions.best_match(validator.iter_errors(dict(arguments)))
        if error is None:
            return
        path = ""
        for step in error.absolute_path:
            path += f"[{step}]" if type(step) is int else (f".{step}" if path else str(step))
        raise ArgumentsRefused(name, path or None, error.message)

    return validate


# LangChain's exceptions by class name, the nearest in the MRO first (TOOL-7). A tool's own
# `ToolException` says "this call failed" and trying again gives the same: not retryable.
_LANGCHAIN_CATEGORIES: Final[dict[str, FailureCategory]] = {
    "ValidationError": FailureCategory.invalid_input,
    "ValidationException": FailureCategory.invalid_input,
    "ToolException": FailureCategory.executor_error,
    "TimeoutError": FailureCategory.timeout,
    "ConnectionError": FailureCategory.transient,
    "RateLimitError": FailureCategory.rate_limited,
    "NotImplementedError": FailureCategory.not_found,
}


def category_of(exc: BaseException, table: Mapping[str, FailureCategory]) -> FailureCategory:
    """The category of `exc` by the nearest class name in its MRO that `table` lists."""
    for cls in type(exc).__mro__:
        category = table.get(cls.__name__)
        if category is not None:
            return category
    return FailureCategory.executor_error


def is_langchain_tool(candidate: object) -> bool:
    """Whether `candidate` is a langchain-core `BaseTool`, read from its classes (no import)."""
    return any(
        cls.__name__ == "BaseTool" and cls.__module__.startswith("langchain_core.")
        for cls in type(candidate).__mro__
    )


class LangChainTool:
    """A LangChain `BaseTool` as the tool executor calls it: `await tool(**arguments)`."""

    __slots__ = ("tool",)

    def __init__(self, tool: Any) -> None:
        self.tool = tool

    def arguments_plan(self, name: str) -> ArgumentPlan:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        described = convert_to_openai_tool(self.tool)["function"]
        schema = described.get("parameters") or {"type": "object", "properties": {}}
        args_schema = self.tool.args_schema
        if isinstance(args_schema, Mapping):
            validate = json_schema_validator(args_schema)
        elif args_schema is not None:
            validate = pydantic_validator(args_schema)
        else:  # no declared arguments: LangChain parses what it gets
            validate = json_schema_validator(schema)
        return SchemaArguments(name, described.get("description") or "", schema, validate)

    async def __call__(self, **arguments: Any) -> JsonValue:
        try:
            output = await self.tool.ainvoke(arguments)
        except EffectError:
            raise
        except Exception as exc:
            category = category_of(exc, _LANGCHAIN_CATEGORIES)
            if category is FailureCategory.timeout:
                raise  # the effect manager answers a TimeoutError as a timeout, as for any tool
            raise EffectError(
                category,
                f"{type(exc).__name__}: {exc}",
                details={"tool": str(self.tool.name), "exception": type(exc).__name__},
            ) from exc
        dump = getattr(output, "model_dump", None)  # a pydantic model (a ToolMessage, ...)
        return dump(mode="json") if callable(dump) else output

    def __repr__(self) -> str:
        return f"LangChainTool({self.tool.name!r})"


def adapt(function: Any) -> Any:
    """The callable to register for `function`: a LangChain tool wrapped, anything else as is."""
    if is_langchain_tool(function):
        return LangChainTool(function)
    return function
