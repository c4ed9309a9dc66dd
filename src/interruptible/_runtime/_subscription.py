"""Subscriptions: what a UI reads, the published `emit_lifecycle` / `emit_progress` /
`emit_output` directives of one conversation (or of all), in the order they were carried out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, TypeAlias

from .._vocabulary import EmitLifecycle, EmitOutput, EmitProgress

Published: TypeAlias = EmitLifecycle | EmitProgress | EmitOutput

_END: Final = object()


class Subscription:
    """An async iterator of published directives; registered from the moment it is made.

    Use `async for directive in rt.subscribe(cid): ...`; `close()` (or leaving an `async with`
    block, or the runtime closing) ends the iteration. The queue is unbounded: a subscriber that
    stops reading should close its subscription.
    """

    def __init__(
        self,
        conversation_id: str | None,
        unregister: Callable[[Subscription], None],
        admits: Callable[[Published], bool] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._unregister = unregister
        self._admits = admits  # None: every directive (else what its principal may read, RT-20)
        self._closed = False

    def put(self, directive: Published) -> None:
        """Deliver one directive (the runtime calls this)."""
        if not self._closed and (self._admits is None or self._admits(directive)):
            self._queue.put_nowait(directive)

    def close(self) -> None:
        """End the iteration once what was delivered has been read."""
        if not self._closed:
            self._closed = True
            self._unregister(self)
            self._queue.put_nowait(_END)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Published:
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        assert isinstance(item, EmitLifecycle | EmitProgress | EmitOutput)
        return item

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
