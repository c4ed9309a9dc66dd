"""Rejoinable streams: a conversation's published directives read from its journal, each with
its position, so a client that reconnects passes the last position it saw (spec/observability.md,
OBS-6..OBS-10).

Theory of operation
-------------------
A `Subscription` hears what its runtime carries out from the moment it is made; a client that
reconnects loses what happened in between, and a process that drives nothing hears nothing. A
`Stream` reads the journal instead: it folds the conversation's records from the first one
through the pure `reduce` (the runtime's own coordinator), and every `emit_lifecycle`,
`emit_progress` and `emit_output` that folding an event gives is an item, at the position
`(sequence, index)`: the journal sequence of that event and the directive's place among that
event's published directives. Replay parity (JRN-12) makes these the directives the live runtime
published, in the same order; the position is the journal's own, so it is the same in every
process that reads the journal, the one that wrote it included.

There is no separate "live" source to switch to, so there is no switch at which an item could be
lost or repeated: catching up and following are the same loop (read the records after the last
one folded, fold them, hand out the items past `after`), which waits between reads. In a runtime
that drives the conversation, the writer wakes its streams after each commit that published
something for it; otherwise (another process drives it, a client, a read-only journal) the
stream looks at the journal's last sequence every `poll` seconds, from 5 ms, doubling while
nothing arrives, up to `poll` (one primary-key lookup per look). PostgreSQL's notifications say
only when a run settles (WRK-4), not when an event is written; a trigger that notified every
append would cost every step a notification, for readers that a lookup serves as well.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from .._core import Authorizer, ConversationState, Coordinator, Mode, RunState, initial_state
from .._journal import Journal
from .._vocabulary import EmitLifecycle, EmitOutput, EmitProgress
from ._reads import IN_PROCESS, Principal, check_read, run_filter
from ._subscription import Published

# The first wait between two looks at a journal nobody wakes us for: short, so a client follows
# a busy run closely; doubled while nothing arrives, up to the stream's `poll`.
FIRST_POLL: Final = 0.005
DEFAULT_POLL: Final = 0.1
_PUBLISHED: Final = (EmitLifecycle, EmitProgress, EmitOutput)


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where an item is in its conversation's journal: the sequence of the event whose folding
    published it, and its place (from 0) among that event's published directives."""

    sequence: int
    index: int = 0


# `after=n` means every item of the events up to sequence n: no event publishes this many.
_LAST_INDEX: Final = 2**62


def position_after(after: int | Position) -> Position:
    """The last position a stream skips, from `after=` (a sequence, or an item's position)."""
    if isinstance(after, Position):
        if after.sequence < 0 or after.index < 0:
            raise ValueError(f"a position has no negative part, got {after!r}")
        return after
    if type(after) is not int or after < 0:
        raise ValueError(
            f"after must be a journal sequence (an int >= 0, 0: from the start) or an item's "
            f"Position, got {after!r}"
        )
    return Position(after, _LAST_INDEX)


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One published directive of a conversation, at its position in the journal."""

    position: Position
    directive: Published

    @property
    def conversation_id(self) -> str:
        """The conversation the directive is about."""
        return self.directive.conversation_id


class Stream:
    """An async iterator of a conversation's `StreamItem`s after a position, then of the new
    ones as they are journaled, until `close()` (or leaving `async with`, or the runtime that
    made it closing).

    `coordinator` folds the journal (it must know the conversation's modes); `admits`, when
    given, decides each directive (what a principal may read, RT-20); `on_close` is called once.
    """

    def __init__(
        self,
        journal: Journal,
        conversation_id: str,
        after: int | Position,
        *,
        coordinator: Callable[[], Coordinator],
        poll: float = DEFAULT_POLL,
        on_close: Callable[[Stream], None] | None = None,
    ) -> None:
        if not (poll > 0):
            raise ValueError(f"poll must be positive seconds, got {poll!r}")
        self.conversation_id = conversation_id
        self.after = position_after(after)
        self._journal = journal
        self._coordinator = coordinator
        self._poll = poll
        self._on_close = on_close
        self._admits: Callable[[Published], bool] | None = None
        self._state: ConversationState = initial_state()
        self._last = 0  # the last sequence folded
        self._items: deque[StreamItem] = deque()
        self._wake = asyncio.Event()
        self._closed = False

    def filter_for(self, authorizer: Callable[[], Authorizer], principal: str | None) -> None:
        """Deliver only the directives of runs `principal` may read, as the stream's own fold
        holds them (RT-20)."""
        self._admits = run_filter(authorizer, principal, self._run)

    def _run(self, conversation_id: str, run_id: str) -> RunState | None:
        return self._state.run(run_id)

    @property
    def last_sequence(self) -> int:
        """The last journal sequence this stream has folded."""
        return self._last

    def wake(self) -> None:
        """Look at the journal again now (the writer calls this after a commit)."""
        self._wake.set()

    def close(self) -> None:
        """End the iteration once the items already read from the journal are handed out."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            if self._on_close is not None:
                self._on_close(self)

    def read(self) -> int:
        """Fold what the journal holds past the last record folded; how many items it gave."""
        reduce = self._coordinator().reduce
        state = self._state
        after = self.after
        admits = self._admits
        found = 0
        for record in self._journal.read(self.conversation_id, self._last):
            outcome = reduce(state, record.event)
            state = outcome.state
            self._last = record.sequence
            index = 0
            for directive in outcome.directives:
                if not isinstance(directive, _PUBLISHED):
                    continue
                position = Position(record.sequence, index)
                index += 1
                if position <= after:
                    continue
                self._state = state  # `admits` reads the runs as of this event
                if admits is not None and not admits(directive):
                    continue
                self._items.append(StreamItem(position, directive))
                found += 1
        self._state = state
        return found

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> StreamItem:
        delay = FIRST_POLL
        while True:
            if self._items:
                item = self._items.popleft()
                self.after = item.position
                return item
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            if self.read():
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, self._poll)
                # Cheap look first: read (and decode) only when something was appended. A stream
                # closed meanwhile may have lost its journal (closed with it): look no more.
                if self._closed:
                    continue
                if self._journal.last_sequence(self.conversation_id) == self._last:
                    continue

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Streams:
    """A runtime's open streams, by conversation: the writer wakes a conversation's streams
    after each commit that published something for it (OBS-8)."""

    def __init__(self) -> None:
        self._by_conversation: dict[str, list[Stream]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_conversation)

    def open(
        self,
        journal: Journal,
        conversation_id: str | None,
        after: int | Position,
        coordinator: Callable[[], Coordinator],
        principal: Principal,
        poll: float,
    ) -> Stream:
        """A stream of `conversation_id` on the runtime's journal, with its read checked and
        filtered for `principal` unless it is the process's own (RT-20)."""
        if not isinstance(conversation_id, str):
            raise ValueError(
                "a stream's positions are one conversation's journal sequences: name the "
                f"conversation (subscribe(conversation_id, after=...)), got {conversation_id!r}"
            )
        stream = Stream(
            journal,
            conversation_id,
            after,
            coordinator=coordinator,
            poll=poll,
            on_close=self._forget,
        )
        if principal is not IN_PROCESS:
            check_read(coordinator().authorizer, principal, conversation_id, None)
            stream.filter_for(lambda: coordinator().authorizer, principal)
        self._by_conversation.setdefault(conversation_id, []).append(stream)
        return stream

    def wake(self, conversation_id: str) -> None:
        """Wake the conversation's streams: the journal holds something new for them."""
        for stream in self._by_conversation.get(conversation_id, ()):
            stream.wake()

    def close(self) -> None:
        """Close every stream (the runtime is closing)."""
        for streams in list(self._by_conversation.values()):
            for stream in list(streams):
                stream.close()

    def _forget(self, stream: Stream) -> None:
        streams = self._by_conversation.get(stream.conversation_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._by_conversation[stream.conversation_id]


def follow(
    journal: Journal | str | os.PathLike[str],
    conversation_id: str,
    *,
    modes: Iterable[Mode] = (),
    after: int | Position = 0,
    authorizer: Authorizer | None = None,
    principal: Principal = IN_PROCESS,
    poll: float = DEFAULT_POLL,
) -> Stream:
    """A `Stream` of `conversation_id` read from `journal`, in any process: a `Journal`, or the
    path of a SQLite journal, opened read-only (JRN-17) and closed with the stream. `modes` are
    the conversation's modes (folding needs them). With `principal=`, only if `authorizer` lets
    it read the conversation, and only of the runs it lets it read (RT-20)."""
    coordinator = Coordinator(list(modes), authorizer)
    opened: Journal | None = None
    if not isinstance(journal, Journal):
        from .._journal import SQLiteJournal

        opened = journal = SQLiteJournal(journal, readonly=True)
    stream = Stream(
        journal,
        conversation_id,
        after,
        coordinator=lambda: coordinator,
        poll=poll,
        on_close=None if opened is None else (lambda _: opened.close()),
    )
    if principal is not IN_PROCESS:
        check_read(coordinator.authorizer, principal, conversation_id, None)
        stream.filter_for(lambda: coordinator.authorizer, principal)
    return stream
