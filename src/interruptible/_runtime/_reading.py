"""What a runtime reads: runs, their snapshots and waits, subscriptions and streams, and the
conversations it holds; `Runtime` is built on it (`_runtime.py` holds the operations).

Reads never write: a conversation driven by another process is read from the journal (OWN-6),
and with `principal=` the authorizer decides what may be read (RT-20).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Final, overload

from .._core import ConversationState, Coordinator, RunState
from .._errors import JournalError, RunNotFoundError
from .._journal import Journal
from ._handle import Until
from ._owner import Owner, Role
from ._publishing import Publisher
from ._reads import IN_PROCESS, Principal, check_read, run_filter
from ._snapshot import RunSnapshot
from ._stream import DEFAULT_POLL, Position, Stream
from ._subscription import Subscription
from ._writer import UNTIL, Conversation, Writer, has_run_to_drive

# How often `wait` re-reads the journal for a run that another process drives.
_FOLLOW_POLL: Final = 0.02


class RuntimeStatus(StrEnum):
    """The runtime's own lifecycle: new -> starting -> open -> closing -> closed.

    A failed start goes back to `new`; messages print the value.
    """

    new = "new"
    starting = "starting"
    open = "open"
    closing = "closing"
    closed = "closed"


# The statuses in which the runtime still has a writer to journal through (`close` drains it).
_WRITING: Final = frozenset({RuntimeStatus.open, RuntimeStatus.closing})


class Reading:
    """The reads of a `Runtime` (its base: the attributes below are the runtime's)."""

    coordinator: Coordinator
    role: Role
    _owner: Owner | None
    _writer: Writer | None
    _journal: Journal | None
    _publisher: Publisher
    _state: RuntimeStatus

    async def wait(
        self,
        conversation_id: str,
        run_id: str,
        *,
        until: Until = "settled",
        principal: Principal = IN_PROCESS,
    ) -> RunSnapshot:
        """Until the run is interrupted or has ended (woken by the writer, never polled); with
        `until="terminal"`, until it has ended, past any interruption (RT-31); with
        `principal=`, only if the authorizer lets it read the run (RT-20)."""
        if until not in UNTIL:
            raise ValueError(f"until must be one of {sorted(UNTIL)}, got {until!r}")
        awaited = UNTIL[until]
        conv = self._conversation(conversation_id, run_id)
        run = conv.state.run(run_id)
        if run is None:
            raise self._run_not_found(conversation_id, run_id)
        if principal is not IN_PROCESS:
            check_read(self.coordinator.authorizer, principal, conversation_id, run)
        while conv.epoch is None and run.status not in awaited:
            # Driven by another process: follow the journal (its answers are written there),
            # woken when a run of the conversation settles if the journal says so (WRK-4).
            assert self._owner is not None
            await self._owner.follow(conversation_id, _FOLLOW_POLL)
            conv = self._conversation(conversation_id, run_id)
            run = conv.state.run(run_id) or run
        if run.status not in awaited:
            future: asyncio.Future[RunState | None] = asyncio.get_running_loop().create_future()
            if conv.waiters is None:
                conv.waiters = {}
            conv.waiters.setdefault((run_id, until), []).append(future)
            settled = await future
            run = settled if settled is not None else run
        return RunSnapshot.of(conversation_id, run, self.coordinator.mode_of(run))

    def snapshot(
        self, conversation_id: str, run_id: str | None = None, *, principal: Principal = IN_PROCESS
    ) -> RunSnapshot:
        """A run of the conversation: `run_id`, else the active run, else the latest one; with
        `principal=`, only if the authorizer lets it read the run (RT-20)."""
        conv = self._conversation(conversation_id, run_id)
        state = conv.state
        if run_id is None:
            run_id = state.active_run_id or (state.history[-1] if state.history else None)
        run = state.run(run_id) if run_id is not None else None
        if run is None:
            raise self._run_not_found(conversation_id, run_id or "<none>")
        if principal is not IN_PROCESS:
            check_read(self.coordinator.authorizer, principal, conversation_id, run)
        return RunSnapshot.of(conversation_id, run, self.coordinator.mode_of(run))

    def state(self, conversation_id: str) -> ConversationState:
        """The core's `ConversationState` of a conversation (exact, for tests and tools)."""
        return self._conversation(conversation_id, None).state

    def conversations(self) -> list[str]:
        """Every conversation the runtime holds."""
        return list(self._live_writer().conversations)

    def live_conversations(self) -> int:
        """How many conversations this runtime drives whose active run is neither interrupted
        nor ended (what a worker's `limit` bounds, WRK-1)."""
        return sum(
            1
            for conv in self._live_writer().conversations.values()
            if conv.epoch is not None and has_run_to_drive(conv.state)
        )

    def find_run(self, run_id: str) -> str | None:
        """The conversation a run id belongs to, if any (a scan: for tools, not hot paths)."""
        for conversation_id, conv in self._live_writer().conversations.items():
            if run_id in conv.state.run_ids:
                return conversation_id
        return None

    @overload
    def subscribe(
        self,
        conversation_id: str | None = None,
        *,
        principal: Principal = IN_PROCESS,
        after: None = None,
        poll: float = DEFAULT_POLL,
    ) -> Subscription: ...

    @overload
    def subscribe(
        self,
        conversation_id: str,
        *,
        principal: Principal = IN_PROCESS,
        after: int | Position,
        poll: float = DEFAULT_POLL,
    ) -> Stream: ...

    def subscribe(
        self,
        conversation_id: str | None = None,
        *,
        principal: Principal = IN_PROCESS,
        after: int | Position | None = None,
        poll: float = DEFAULT_POLL,
    ) -> Subscription | Stream:
        """The published lifecycle, progress and output directives of one conversation (or,
        with None, of every conversation), from now on; with `principal=`, if the authorizer
        lets it read the conversation, and only of the runs it lets it read (RT-20).

        With `after=` (a journal sequence, 0 for the start, or the `position` of the last item a
        client saw): a rejoinable `Stream` of the conversation's items after it, read from the
        journal, then of the new ones (OBS-6..OBS-10); in every role, a client's included."""
        if after is not None:
            self._live_writer()
            return self._publisher.streams.open(
                self.journal, conversation_id, after, lambda: self.coordinator, principal, poll
            )
        if self.role == "client":
            raise JournalError(
                "a client runtime drives no run, so it publishes nothing: subscribe with "
                "after=0 (a stream read from the journal), or follow the run with wait() or "
                "snapshot() (spec/workers.md)",
                reason="client_role",
            )
        admits = None
        if principal is not IN_PROCESS:
            check_read(self.coordinator.authorizer, principal, conversation_id, None)
            admits = run_filter(lambda: self.coordinator.authorizer, principal, self._held_run)
        return self._publisher.subscribe(conversation_id, admits)

    @property
    def journal(self) -> Journal:
        """The journal this runtime writes."""
        if self._journal is None:
            raise JournalError("the runtime is not open; use `async with Runtime(...)`")
        return self._journal

    @property
    def commits(self) -> int:
        """How many journal writes the runtime made (each one transaction: one commit, or none
        when the journal refused it)."""
        return self._live_writer().commits

    # --- the internals reads share ---

    def _live_writer(self) -> Writer:
        if self._writer is None or self._state not in _WRITING:
            raise JournalError(
                f"the runtime is {self._state}; open it first (`async with Runtime(...) as rt`)",
                reason="runtime_not_open",
            )
        return self._writer

    def _conversation(self, conversation_id: str, run_id: str | None) -> Conversation:
        conv = self._live_writer().conversations.get(conversation_id)
        if conv is None or conv.epoch is None:
            # Not driven here: the journal's view (another process may own it, OWN-6).
            assert self._owner is not None
            conv = self._owner.view(conversation_id)
        if conv is None:
            raise self._run_not_found(conversation_id, run_id)
        return conv

    def _current_run_id(self, conversation_id: str) -> str:
        state = self._conversation(conversation_id, None).state
        run_id = state.active_run_id or (state.history[-1] if state.history else None)
        if run_id is None:
            raise self._run_not_found(conversation_id, None)
        return run_id

    def _run_not_found(self, conversation_id: str, run_id: str | None) -> RunNotFoundError:
        what = f"run {run_id!r}" if run_id else "a run"
        return RunNotFoundError(
            f"conversation {conversation_id!r} has no {what}; check the ids (conversations() "
            f"lists what the runtime holds).",
            conversation_id=conversation_id,
            run_id=run_id,
            reason="run_not_found",
        )

    def _held_run(self, conversation_id: str, run_id: str) -> RunState | None:
        writer = self._writer
        conv = writer.conversations.get(conversation_id) if writer is not None else None
        return None if conv is None else conv.state.run(run_id)
