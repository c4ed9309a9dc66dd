"""Executors: what carries out one step class's effects, and the built-in ones.

An executor is any object with `async execute(effect) -> output`; it may also have
`cancel(effect) -> None`, a hook the effect manager calls at the moment it cancels the effect's
task (to abort a remote call, close a socket, ...). The effect manager owns everything around the
call: the start delay, the policy timeout, turning the answer or the exception into an effect
lifecycle event, and cancellation. An executor only does the work.

To fail with a chosen category, raise `EffectError`; a `TimeoutError` is a `timeout` (retryable,
as when the policy's timeout cuts the executor short); any other exception is an
`executor_error` (not retryable, since nothing says trying again would help).

Plain callables run by the `tool` and `system` executors can read the effect they belong to (its
idempotency key above all) with `current_effect()`: a context variable, so it also reaches a
synchronous tool running in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from .._lifecycle import StepClass
from .._vocabulary import FailureCategory, JsonValue, StepPolicy
from ._cancel import CancelToken

if TYPE_CHECKING:
    from ._arguments import ArgumentPlan


def _plan(name: str, function: Function) -> ArgumentPlan:
    # pydantic is imported here, at the first registration, never by `import interruptible`
    # nor by a runtime without tools (TOOL-3).
    from ._arguments import plan_for

    return plan_for(name, function)


class EffectError(Exception):
    """An executor's failure with a normalized category (raise it from `execute`)."""

    def __init__(
        self,
        category: FailureCategory | str,
        message: str,
        *,
        retryable: bool | None = None,
        details: JsonValue = None,
    ) -> None:
        super().__init__(message)
        self.category = FailureCategory(category)
        self.message = message
        # Unless told, a failure is retryable when its category usually is (timeouts, rate limits).
        self.retryable = (
            retryable if retryable is not None else self.category in _RETRYABLE_BY_DEFAULT
        )
        self.details = details


_RETRYABLE_BY_DEFAULT: Final = frozenset(
    {FailureCategory.timeout, FailureCategory.transient, FailureCategory.rate_limited}
)


class Effect:
    """One effect being executed: the step attempt it belongs to, and a progress reporter."""

    __slots__ = (
        "_report",
        "attempt",
        "conversation_id",
        "effect_id",
        "first_started_at",
        "idempotency_key",
        "input",
        "policy",
        "run_id",
        "started_at",
        "step_class",
        "step_id",
    )

    def __init__(
        self,
        *,
        conversation_id: str,
        run_id: str,
        step_id: str,
        effect_id: str,
        attempt: int,
        step_class: StepClass,
        input: JsonValue,
        policy: StepPolicy,
        idempotency_key: str,
        started_at: float,
        first_started_at: float,
        report: Callable[[JsonValue], None],
    ) -> None:
        self.conversation_id = conversation_id
        self.run_id = run_id
        self.step_id = step_id
        self.effect_id = effect_id
        self.attempt = attempt
        self.step_class = step_class
        self.input = input
        self.policy = policy
        self.idempotency_key = idempotency_key
        self.started_at = started_at  # this attempt's journaled effect_started time
        self.first_started_at = first_started_at  # the step's first attempt's, for deadlines
        self._report = report

    def progress(self, value: JsonValue) -> None:
        """Report progress (a JSON value); it is journaled and published to subscribers."""
        self._report(value)

    def __repr__(self) -> str:
        return f"Effect({self.effect_id!r}, key={self.idempotency_key!r})"


@runtime_checkable
class Executor(Protocol):
    """Carries out the effects of one step class."""

    async def execute(self, effect: Effect) -> JsonValue:
        """Do the work and return the step's output (a JSON value); raise to fail."""
        ...


@runtime_checkable
class ClockedExecutor(Executor, Protocol):
    """An executor that measures a durable deadline and so takes the runtime's clock."""

    def bind_clock(self, clock: Callable[[], float]) -> None:
        """Use `clock` (the one the journaled times come from) unless given one already."""
        ...


_CURRENT: Final[contextvars.ContextVar[Effect]] = contextvars.ContextVar("interruptible_effect")


def current_effect() -> Effect:
    """The effect whose executor is running this code (inside a tool or system callable)."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "current_effect() is only available inside a step's executor; call it from a tool "
            "or system function that the runtime runs."
        ) from None


def bind_current(effect: Effect) -> contextvars.Token[Effect]:
    """Make `effect` the current effect of this task (the effect manager does this)."""
    return _CURRENT.set(effect)


# --- the built-in executors ---------------------------------------------------------------------


class TimerExecutor:
    """`timer`: waits `input["seconds"]` from the step's *first* journaled start (durable).

    The deadline is `first_started_at + seconds`, so a timer restarted after a crash or resumed
    after an interrupt waits only what is left of it, and one whose deadline has passed ends at
    once (RT-10).
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock

    def bind_clock(self, clock: Callable[[], float]) -> None:
        """Use the runtime's clock (the one its journaled times come from)."""
        if self._clock is None:
            self._clock = clock

    async def execute(self, effect: Effect) -> JsonValue:
        seconds = _number_field(effect.input, "seconds")
        clock = self._clock
        assert clock is not None, "the runtime binds the timer's clock"
        deadline = effect.first_started_at + seconds
        remaining = deadline - clock()
        if remaining > 0:
            effect.progress({"deadline": deadline, "remaining": remaining})
            await asyncio.sleep(remaining)
        return {"seconds": seconds, "deadline": deadline}


class HumanGateExecutor:
    """`human_gate`: waits for `Runtime.provide_input`; the core then completes the step and
    cancels this waiter, so the executor itself never returns."""

    async def execute(self, effect: Effect) -> JsonValue:
        await asyncio.Event().wait()  # woken only by cancellation
        raise AssertionError("unreachable")  # pragma: no cover


Function = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Inline:
    """A synchronous tool that runs on the event loop, as a system function does (`inline`)."""

    function: Function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def inline(function: Function) -> Inline:
    """Mark a synchronous tool to run on the event loop instead of in a worker thread.

    For short, non-blocking code (a computation, a dict lookup): it saves the thread hop, about
    50 us a call. While it runs it holds the loop, so every other conversation waits, and neither
    a timeout nor an interrupt can cut it short; a tool that may block on IO belongs in a thread,
    which is what a plain synchronous tool gets. `tools={"lookup": inline(lookup)}`.
    """
    if inspect.iscoroutinefunction(function):
        raise TypeError(f"{function!r} is async: it runs on the loop already; register it as is")
    if not callable(function):
        raise TypeError(f"inline() takes a callable, got {function!r}")
    return Inline(function)


def tool_schemas(functions: Mapping[str, Function]) -> dict[str, dict[str, Any]]:
    """OpenAI-style tool objects for registered callables, from their signatures.

    `{name: {"type": "function", "function": {"name", "description", "parameters"}}}`, where
    `parameters` is pydantic's JSON Schema of the arguments the runtime validates (TOOL-4) and
    `description` the first paragraph of the docstring (a LangChain tool as LangChain describes
    it, an MCP tool by its `inputSchema`); pass it to
    `OpenAICompatibleModel(tool_schemas=...)` so the model is told what each tool takes. A tool
    registered as `inline(function)` is described as its function.
    """
    from ._foreign import adapt

    tools = {}
    for name, function in functions.items():
        arguments = _plan(name, adapt(_plain(function)))
        described: dict[str, Any] = {"name": name}
        if arguments.description:
            described["description"] = arguments.description
        described["parameters"] = arguments.schema()
        tools[name] = {"type": "function", "function": described}
    return tools


def _plain(function: Function) -> Function:
    """The callable itself, whether or not it was registered as `inline(function)`."""
    return function.function if isinstance(function, Inline) else function


class FunctionExecutor:
    """`tool` and `system`: calls a registered plain callable with the step's arguments.

    The step input is `{"name": str, "arguments": {...}}` (extra keys such as an agent loop's
    `call_id` are ignored). The arguments are checked against the callable's signature and
    annotations first (`_arguments`): a step whose arguments do not fit fails as `invalid_input`
    before the callable runs. An async callable is awaited on the loop. A synchronous one runs in a
    worker thread when `threaded` (tools: they may block on IO) or on the loop otherwise (system
    steps: short code of our own, where a thread hop would cost more than the call); a tool
    registered as `inline(function)` runs on the loop too.
    """

    def __init__(self, functions: Mapping[str, Function] | None = None, *, threaded: bool) -> None:
        self.functions: dict[str, Function] = {}
        self.threaded = threaded
        self._arguments: dict[str, ArgumentPlan] = {}
        self._is_async: dict[str, bool] = {}
        self._on_loop: set[str] = set()  # synchronous callables registered with `inline`
        for name, function in (functions or {}).items():
            self.register(name, function)

    def register(self, name: str, function: Function) -> None:
        """Add (or replace) the callable run for steps naming `name`.

        `TypeError` when its signature can take no step's arguments (see `_arguments`).
        """
        from ._foreign import adapt

        on_loop = isinstance(function, Inline)
        function = adapt(_plain(function))  # a LangChain tool becomes a callable (TOOL-6)
        arguments = _plan(name, function)  # raises before anything is registered
        if on_loop:
            self._on_loop.add(name)
        else:
            self._on_loop.discard(name)
        self.functions[name] = function
        self._arguments[name] = arguments
        self._is_async.pop(name, None)

    def _threaded(self, name: str) -> bool:
        return self.threaded and name not in self._on_loop

    def is_inline(self, input: JsonValue) -> bool:
        """Whether this input runs as a synchronous call on the loop (no task needed)."""
        if type(input) is not dict and not isinstance(input, Mapping):
            return False
        name = input.get("name")
        if not isinstance(name, str) or self._threaded(name):
            return False
        function = self.functions.get(name)
        return function is not None and not self._async(name, function)

    def _async(self, name: str, function: Function) -> bool:
        known = self._is_async.get(name)
        if known is None:
            known = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
                getattr(function, "__call__", None)  # noqa: B004 - an object with async __call__
            )
            self._is_async[name] = known
        return known

    def resolve(self, effect: Effect) -> tuple[Function, dict[str, Any]]:
        """The callable and keyword arguments for this effect, or an `EffectError`."""
        input = effect.input
        # `type(...) is dict` first: the common case, without the Mapping ABC's instance check.
        if (type(input) is not dict and not isinstance(input, Mapping)) or not isinstance(
            input.get("name"), str
        ):
            raise EffectError(
                FailureCategory.invalid_input,
                f"a {effect.step_class.value} step's input must be "
                f"{{'name': str, 'arguments': {{...}}}}, got {input!r}",
            )
        name: str = input["name"]
        function = self.functions.get(name)
        if function is None:
            raise EffectError(
                FailureCategory.not_found,
                f"no {effect.step_class.value} named {name!r} is registered; registered: "
                f"{sorted(self.functions)}",
                retryable=False,
            )
        arguments = input.get("arguments")
        if arguments is None:  # no arguments (or JSON null): the call takes none
            arguments = {}
        if type(arguments) is not dict and not isinstance(arguments, Mapping):
            raise EffectError(
                FailureCategory.invalid_input,
                f"arguments of {name!r} must be an object",
                retryable=False,
            )
        plan = self._arguments.get(name)
        if plan is None:  # put in `functions` directly, not through `register`
            plan = self._arguments[name] = _plan(name, function)
        try:
            return function, plan.bind(arguments)
        except ValueError as refused:  # `ArgumentsRefused` (its module imports pydantic)
            raise EffectError(
                FailureCategory.invalid_input,
                str(refused),
                retryable=False,
                details=_refusal_details(refused),
            ) from None

    def call_inline(self, effect: Effect) -> JsonValue:
        """Run a synchronous callable right here (the effect manager checked `is_inline`)."""
        function, arguments = self.resolve(effect)
        name = self._arguments[effect.input["name"]].token
        if name is not None:
            arguments[name] = CancelToken()  # never set: nothing can cancel a call on the loop
        token = bind_current(effect)
        try:
            return function(**arguments)
        finally:
            _CURRENT.reset(token)

    async def execute(self, effect: Effect) -> JsonValue:
        function, arguments = self.resolve(effect)
        name = effect.input["name"]
        token = self._arguments[name].token
        cancel: CancelToken | None = None
        if token is not None:
            cancel = arguments[token] = CancelToken()
        if self._async(name, function):
            result: Awaitable[JsonValue] = function(**arguments)
            if cancel is None:
                return await result
            try:
                return await result
            except asyncio.CancelledError:
                cancel.set()
                raise
        if self._threaded(name):
            result = await _in_thread(function, arguments, cancel)
        else:
            result = function(**arguments)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            return await result
        return result


async def _in_thread(
    function: Function, arguments: dict[str, Any], cancel: CancelToken | None
) -> Any:
    """Call `function` in a worker thread; when cancelled, wait for the thread (RT-24).

    A thread cannot be stopped from outside, so a cancel (an interrupt, a cancel, a policy
    timeout) sets the tool's token, if it took one, and waits for the call to return: the effect
    then answers what really happened. A call that returned without a token crossed the cancel
    and its result is kept; a tool that took a token was told to stop, so whatever it does then
    is answered as canceled (RT-25). The effect manager stops waiting after the step's
    `cancel_grace` (RT-26).
    """
    loop = asyncio.get_running_loop()
    # The context is copied, as `asyncio.to_thread` does, so current_effect() works in there.
    call = functools.partial(contextvars.copy_context().run, function, **arguments)
    thread = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.set()
    while not thread.done():
        try:
            await asyncio.shield(thread)
        except asyncio.CancelledError:
            continue  # asked again: still nothing can stop the thread
        except Exception:
            break
    if cancel is not None:
        raise asyncio.CancelledError
    return thread.result()  # its exception, if it raised: a failure that crossed the cancel


def _refusal_details(refused: ValueError) -> JsonValue:
    """The refusal's fields, for a program reading the failure (the argument's path above all)."""
    argument = getattr(refused, "argument", None)
    return {"argument": argument} if isinstance(argument, str) else None


def _number_field(input: JsonValue, name: str) -> float:
    value = input.get(name) if isinstance(input, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EffectError(
            FailureCategory.invalid_input,
            f"expected input {{{name!r}: a number >= 0}}, got {input!r}",
            retryable=False,
        )
    return float(value)
