"""`Runtime`: the embedded, asyncio-native runtime over the pure core and a journal.

Theory of operation
-------------------
A `Runtime` owns a journal, a `Coordinator` (the pure core), a `Writer` (the single writer of
every conversation, see `_writer.py`) and an `EffectManager` (asyncio tasks carrying out
`start_effect` / `cancel_effects`, see `_effects.py`). Every public operation builds one event
at the edge, with a fresh id and the clock's time (the core makes neither, CORE-4), posts it to
its conversation's inbox and awaits the outcome, which the writer sets after the event is
journaled and its directives carried out. A refusal is the core's typed error, raised as is; a
duplicate (an interrupt of an interrupted run, a resume of a running run) returns the snapshot.

Opening a runtime on an existing journal folds every conversation back (RT-8) and answers the
effects left live by the previous process (`_recovery.py`), before any caller gets in. What a
runtime reads (snapshots, waits, subscriptions) is its base class, `_reading.Reading`; where its
published directives go, `_publishing.Publisher`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final

from .._core import (
    HISTORY_LIMIT,
    Authorizer,
    Coordinator,
    Mode,
)
from .._core._definitions import Migration, definition_of, fingerprint_of
from .._errors import JournalError, StaleOwnerError
from .._journal import DEFAULT_LEASE, Journal, OwnerRecord, open_journal
from .._lifecycle import STEP_CLASS_TRAITS, StepClass
from .._vocabulary import (
    CancelRequested,
    EffectStarted,
    EmitAudit,
    Event,
    HumanInputReceived,
    InterruptRequested,
    JsonValue,
    ResumeRequested,
    RunRequested,
)
from ._claims import WorkerOwner
from ._effects import EffectManager, json_normalized
from ._executors import (
    ClockedExecutor,
    Executor,
    FunctionExecutor,
    HumanGateExecutor,
    TimerExecutor,
)
from ._handle import RunHandle
from ._ids import UuidIds, new_run_id
from ._llm import ChatModel, LlmExecutor
from ._owner import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_LIMIT,
    ROLES,
    Owner,
    Role,
    owned_elsewhere,
)
from ._publishing import Publisher
from ._reading import Reading, RuntimeStatus
from ._recovery import RecoveryReport, restore
from ._requests import request_event_id
from ._snapshot import RunSnapshot
from ._tracing import RunTracer
from ._upgrades import Meeting
from ._writer import Queued, Writer

log: Final = logging.getLogger("interruptible.runtime")

JournalSpec = str | os.PathLike[str] | Journal

# How long `close` waits for cancelled effects to answer: long enough for an executor's own
# cleanup (closing a connection), short enough that Ctrl-C in the demo feels immediate.
CLOSE_GRACE: Final = 1.0


class Runtime(Reading):
    """The embedded runtime: `async with Runtime("runs.db", modes=[...]) as rt: ...`.

    `journal` is a SQLite file path (the default durable journal), `"memory"`, or any `Journal`.
    `executors` maps step classes to executors, over the built-ins (`timer`, `human_gate`,
    `system` over `functions`, `tool` over `tools`, `llm` over `model`). `clock` and `ids` make
    the times and ids put into events (the core never makes them). `on_audit` is called with
    every `emit_audit` directive (they are also logged on `interruptible.audit`).

    Ownership (spec/ownership.md): the runtime drives only the conversations it owns, under a
    lease of `lease` seconds renewed by heartbeat; with `adopt`, it takes over abandoned
    conversations that have work, on open and at every heartbeat. Commands for a conversation
    another live process owns are delivered to it and answered from there (waiting up to
    `command_timeout` seconds).

    Roles (spec/workers.md): `role="embedded"` (the default) is the above. On a journal shared by
    workers (`PostgresJournal`), `role="worker"` claims conversations with work from the
    journal, up to `limit` live ones (WRK-1), and never folds the whole journal on open;
    `role="client"` owns nothing and drives nothing: `run`, `interrupt_run`, `resume_run`,
    `cancel_run` and `provide_input` are sent to whichever worker owns the conversation (or
    claims it), and return its answer or raise its typed error (WRK-5).

    Traces (spec/observability.md): with `tracer_provider` (an OpenTelemetry `TracerProvider`,
    the `otel` extra), or `tracing=True` for the global one, each run that ends here is emitted
    as one trace built from the journal, once; the runtime never sets a global provider.
    """

    def __init__(
        self,
        journal: JournalSpec,
        *,
        modes: Iterable[Mode] = (),
        executors: Mapping[StepClass | str, Executor] | None = None,
        tools: Mapping[str, Any] | None = None,  # callables, LangChain tools, McpTools(...)
        functions: Mapping[str, Callable[..., Any]] | None = None,
        model: ChatModel | None = None,
        authorizer: Authorizer | None = None,
        clock: Callable[[], float] = time.time,
        ids: Callable[[], str] | None = None,
        on_audit: Callable[[EmitAudit], None] | None = None,
        history_limit: int = HISTORY_LIMIT,
        lease: float = DEFAULT_LEASE,
        adopt: bool = True,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        role: Role = "embedded",
        limit: int = DEFAULT_LIMIT,
        migrations: Iterable[Migration] = (),
        tracing: bool = False,
        tracer_provider: Any = None,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        if role not in ROLES:
            raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
        if type(limit) is not int or limit < 1:
            raise ValueError(f"limit must be a positive number of conversations, got {limit!r}")
        self.role: Role = role
        self.limit = limit
        self.lease = lease
        self.adopt = adopt
        self.command_timeout = command_timeout
        self._owner: Owner | None = None
        self._journal_spec = journal
        self._own_journal = not isinstance(journal, Journal)
        self._journal: Journal | None = None
        self.coordinator = Coordinator(list(modes), authorizer, history_limit=history_limit)
        self.migrations: tuple[Migration, ...] = tuple(migrations)
        self.clock = clock
        self._ids: Callable[[], str] = ids if ids is not None else UuidIds()
        self._run_ids: Callable[[], str] = ids if ids is not None else new_run_id
        table: dict[StepClass, Executor] = {
            StepClass.timer: TimerExecutor(),
            StepClass.human_gate: HumanGateExecutor(),
            StepClass.system: FunctionExecutor(functions, threaded=False),
            StepClass.tool: FunctionExecutor(tools, threaded=True),
            StepClass.llm: LlmExecutor(model),
        }
        for key, executor in (executors or {}).items():
            table[StepClass(key)] = executor
        # A class with a durable deadline (a timer, RT-10) measures it from journaled start
        # times, so its executor gets the clock those times come from: the trait says which.
        for step_class, executor in table.items():
            if STEP_CLASS_TRAITS[step_class].durable_deadline and isinstance(
                executor, ClockedExecutor
            ):
                executor.bind_clock(clock)
        self.effects = EffectManager(
            table,
            post=self._post_answer,
            post_and_wait=self._submit,
            first_start=self._first_start,
            clock=clock,
            ids=self._ids,
            post_latest=self._post_progress,
        )
        # Traces of the runs that settle here (OBS-1): on with `tracing=True` (the global tracer
        # provider, looked up when a trace is emitted) or with a `tracer_provider`.
        self.tracer = RunTracer(tracer_provider) if tracing or tracer_provider is not None else None
        self._writer: Writer | None = None
        self._publisher = Publisher(
            on_audit, self.tracer, lambda: self.journal, lambda: self.coordinator
        )
        self.recovery = RecoveryReport()
        self._state: RuntimeStatus = RuntimeStatus.new

    # --- opening and closing --------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the journal, restore every conversation, restart live effects, start the pump."""
        if self._state is not RuntimeStatus.new:
            raise RuntimeError(f"this runtime is {self._state}; make a new one")
        self._state = RuntimeStatus.starting
        self._journal = open_journal(self._journal_spec)
        if self.role != "embedded" and not getattr(self._journal, "claims_work", False):
            if self._own_journal:
                self._journal.close()
            self._state = RuntimeStatus.new
            raise ValueError(
                f"role={self.role!r} needs a journal that workers share (a PostgreSQL DSN, "
                f"PostgresJournal); {type(self._journal).__name__} is one process's: use "
                "role='embedded'."
            )
        self.effects.bind_loop(asyncio.get_running_loop())
        writer = Writer(
            self._journal,
            self.coordinator,
            self.effects,
            publish=self._publisher.publish,
            clock=self.clock,
            ids=self._ids,
        )
        writer.meeting = Meeting(lambda: self.coordinator, self.migrations, self._ids, self.clock)
        self._writer = writer
        if self.tracer is not None:
            writer.on_commit = self.tracer.committed
        owning: dict[str, Any] = {
            "coordinator": lambda: self.coordinator,
            "clock": self.clock,
            "ids": self._ids,
            "lease": self.lease,
            "adopt": self.adopt,
            "command_timeout": self.command_timeout,
        }
        owner = self._owner = (
            WorkerOwner(self._journal, writer, self.recovery, limit=self.limit, **owning)
            if self.role == "worker"
            else Owner(self._journal, writer, self.recovery, role=self.role, **owning)
        )
        try:
            if self.role != "client":
                owner.register()
            if self.role == "embedded":
                restore(writer, owner, self.coordinator, self.recovery, adopt=self.adopt)
        except BaseException:
            if self._own_journal:
                self._journal.close()
            self._state = RuntimeStatus.new
            raise
        writer.start()
        owner.start()
        self._state = RuntimeStatus.open

    @property
    def owner_id(self) -> str:
        """This runtime's owner id in the journal (host:pid:random)."""
        if self._owner is None:
            raise JournalError("the runtime is not open; use `async with Runtime(...)`")
        return self._owner.owner_id

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner, as the journal records it."""
        return self.journal.owner(conversation_id)

    def live_owner(self, conversation_id: str) -> OwnerRecord | None:
        """The other live process that drives the conversation, if one does (OWN-4)."""
        if self._owner is None:
            raise JournalError("the runtime is not open; use `async with Runtime(...)`")
        return self._owner.live_owner(self.journal.owner(conversation_id))

    async def close(self) -> None:
        """Let cancelled effects answer, journal what is queued, stop; effects still running
        are left for the next process to restart (they are cancelled without a report)."""
        if self._state is not RuntimeStatus.open:
            return
        self._state = RuntimeStatus.closing
        writer = self._writer
        assert writer is not None
        if self._owner is not None:  # no new commands or takeovers while closing
            await self._owner.stop()
        cancelling = self.effects.cancelling_tasks()
        if cancelling:
            await asyncio.wait(cancelling, timeout=CLOSE_GRACE)
        await writer.drained()
        leftovers = self.effects.cancel_quietly()
        if leftovers:
            # An executor that ignores cancellation is abandoned after a second (its answer, if
            # it ever gives one, is dropped: the next process restarts the effect anyway).
            await asyncio.wait(leftovers, timeout=CLOSE_GRACE)
        await writer.stop()
        if self._owner is not None and self.role != "client":
            self._owner.release()
        self._publisher.close()
        if self._own_journal and self._journal is not None:
            self._journal.close()
        self._state = RuntimeStatus.closed

    # --- the operations ------------------------------------------------------------------------

    async def run(
        self,
        conversation_id: str,
        input: JsonValue = None,
        *,
        mode: str | Mode,
        run_id: str | None = None,
        principal: str | None = None,
        supersede: bool = False,
    ) -> RunHandle:
        """Start a run of `mode` over `input`; a repeated request (same run id, mode, input and
        principal) returns the existing run."""
        name, fingerprint, definition = self._register(mode)
        run_id = run_id if run_id is not None else self._run_ids()
        event = RunRequested(
            self._ids(),
            conversation_id,
            run_id,
            name,
            json_normalized(input, "the run input"),
            principal,
            supersede,
            self.clock(),
            None,
            fingerprint,
            definition,
        )
        await self._submit(conversation_id, event, create=True)
        return RunHandle(self, conversation_id, run_id)

    async def interrupt_run(
        self,
        conversation_id: str,
        reason: str = "interrupt_requested",
        *,
        run_id: str | None = None,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """Interrupt the conversation's active run (or `run_id`); it may be resumed later. A
        retry with the same `request_id` gets the first answer (RT-34)."""
        run_id = run_id if run_id is not None else self._current_run_id(conversation_id)
        event = InterruptRequested(
            self._event_id(request_id), conversation_id, run_id, reason, principal, self.clock()
        )
        return await self._request(conversation_id, run_id, event)

    async def resume_run(
        self,
        conversation_id: str,
        run_id: str | None = None,
        *,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """Resume the conversation's interrupted run (or `run_id`) at its first step without a
        kept result (RT-30). A retry with the same `request_id` gets the first answer (RT-34)."""
        run_id = run_id if run_id is not None else self._current_run_id(conversation_id)
        event = ResumeRequested(
            self._event_id(request_id), conversation_id, run_id, principal, self.clock()
        )
        return await self._request(conversation_id, run_id, event)

    async def cancel_run(
        self,
        conversation_id: str,
        run_id: str | None = None,
        *,
        principal: str | None = None,
        reason: str = "cancel_requested",
        request_id: str | None = None,
    ) -> RunSnapshot:
        """End the conversation's active run (or `run_id`) for good: terminal `canceled`. A
        retry with the same `request_id` gets the first answer (RT-34)."""
        run_id = run_id if run_id is not None else self._current_run_id(conversation_id)
        event = CancelRequested(
            self._event_id(request_id), conversation_id, run_id, reason, principal, self.clock()
        )
        return await self._request(conversation_id, run_id, event)

    async def provide_input(
        self,
        conversation_id: str,
        run_id: str,
        step_id: str,
        value: JsonValue,
        *,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """Answer the human gate `step_id` of the run (kept until the gate opens if early). A
        retry with the same `request_id` gets the first answer (RT-34)."""
        event = HumanInputReceived(
            self._event_id(request_id),
            conversation_id,
            run_id,
            step_id,
            json_normalized(value, "the answer"),
            principal,
            self.clock(),
        )
        return await self._request(conversation_id, run_id, event)

    # --- internals ------------------------------------------------------------------------------

    def _register(self, mode: str | Mode) -> tuple[str, str | None, object]:
        """The mode's name, and the fingerprint and definition a run of it journals (UPG-1):
        the newest registered under a name, or the version given (registered if new)."""
        if isinstance(mode, str):
            current = self.coordinator.current.get(mode)
            return (mode, None, None) if current is None else (mode, *current)
        definition = definition_of(mode)
        fingerprint = fingerprint_of(definition)
        if fingerprint not in self.coordinator.versions:
            if mode.name in self.coordinator.modes:
                raise ValueError(
                    f"another definition is already registered as {mode.name!r}; register "
                    "each version up front (modes=[old, new], each with its own `version`)"
                )
            self.coordinator = self.coordinator.with_modes(mode)
            if self._writer is not None:
                self._writer.coordinator = self.coordinator
        return mode.name, fingerprint, definition

    def _event_id(self, request_id: str | None) -> str:
        """A command's event id: its request id's when given (RT-34), else a new one."""
        return self._ids() if request_id is None else request_event_id(request_id)

    async def _request(self, conversation_id: str, run_id: str, event: Event) -> RunSnapshot:
        outcome = await self._submit(conversation_id, event)
        if isinstance(outcome, RunSnapshot):  # answered by the owner in another process
            return outcome
        run = outcome.state.run(run_id)
        if run is None:  # a late request for a forgotten ended run: nothing to show
            raise self._run_not_found(conversation_id, run_id)
        return RunSnapshot.of(conversation_id, run, self.coordinator.mode_of(run))

    async def _submit(self, conversation_id: str, event: Event, create: bool = False) -> Any:
        writer = self._live_writer()
        if self._state is not RuntimeStatus.open and not isinstance(event, EffectStarted):
            raise JournalError("the runtime is closing", reason="runtime_closing")
        owner = self._owner
        assert owner is not None
        if self.role == "client":  # every request goes to the owner (WRK-5)
            return await owner.forward(conversation_id, event)
        lost: StaleOwnerError | None = None
        for _ in range(2):
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            conv = writer.conversations.get(conversation_id)
            if conv is not None and conv.epoch is not None:
                writer.post(conv, event, future)
            else:
                # Not ours (yet): claim it if it is new or abandoned (the request goes first),
                # else deliver the request to its live owner (OWN-6).
                routed = owner.route(conversation_id, create=create, first=(event, future))
                if routed is None:
                    raise self._run_not_found(conversation_id, getattr(event, "run_id", None))
                if isinstance(routed, OwnerRecord):
                    if isinstance(event, RunRequested):
                        raise owned_elsewhere(routed, event.run_id)
                    return await owner.forward(conversation_id, event)
            try:
                return await future
            except StaleOwnerError as exc:
                # Taken over while this runtime believed it owned the conversation (OWN-3):
                # nothing of the request was written; deliver it to the new owner instead.
                lost = exc
        assert lost is not None
        raise lost

    def _post_answer(self, conversation_id: str, event: Event) -> None:
        writer = self._writer
        if writer is None:
            return
        conv = writer.conversations.get(conversation_id)
        if conv is not None:
            writer.post(conv, event, None)

    def _post_progress(
        self, conversation_id: str, event: Event, queued: Queued | None
    ) -> Queued | None:
        writer = self._writer
        conv = writer.conversations.get(conversation_id) if writer is not None else None
        if writer is None or conv is None:
            return None
        return writer.post_latest(conv, event, queued)

    def _first_start(self, conversation_id: str, run_id: str, step_id: str) -> float | None:
        writer = self._writer
        conv = writer.conversations.get(conversation_id) if writer is not None else None
        return None if conv is None else conv.first_start(run_id, step_id)
