"""Notifications of a PostgreSQL journal, and what a worker's claim returns (spec/workers.md).

Theory of operation
-------------------
The schema's triggers send a notification on the journal's channel (`channel(schema)`) when a
command is submitted (`c <id>`), when one is answered (`a <id>`), and when an owner releases its
lease (`w`); PostgreSQL delivers them when their transaction commits (WRK-4). A `Listener` holds
one connection of its own, asyncio, that LISTENs on the channel from a task, and hands the
payloads to whoever awaits `get`, all that arrived since the last call at once.

A listener never loses the news of a lost connection: it connects again (backing off from
50 ms to 2 s) and, once it LISTENs again, hands out `RESCAN` (`*`), which means "anything may
have happened meanwhile: look at the tables". A notification sent while nobody listened is gone
for good; that is why an owner also looks every `SWEEP` seconds (spec/workers.md, WRK-4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final, NamedTuple

import psycopg

logger = logging.getLogger("interruptible.journal")

# TCP keepalives for every connection of a journal: a connection whose peer is gone (a network
# partition, a server's machine that died) is noticed within about half a minute, not when TCP
# gives up (hours).
KEEPALIVES: Final[dict[str, Any]] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

# What `Listener.get` hands out after (re)connecting: every table may have changed unseen.
RESCAN: Final = "*"
_BACKOFF_FIRST: Final = 0.05
_BACKOFF_MAX: Final = 2.0


class Claim(NamedTuple):
    """A conversation a worker has just claimed (`PostgresJournal.claim_work`)."""

    conversation_id: str
    epoch: int
    previous_owner: str | None
    reason: str  # "new", "unowned", "released" or "lease_expired"
    active: bool  # its activity marker when claimed (WRK-2)


class Listener:
    """LISTEN on a journal's channel from an asyncio task; `get` the payloads."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        connect_timeout: float,
        *,
        application_name: str = "interruptible listener",
    ) -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.connections = 0  # how many times it has connected (tests, the fault test)
        self._notes: list[str] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening on the running loop (the first `get` then returns `RESCAN`)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="interruptible listener"
            )

    async def get(self, timeout: float) -> list[str]:
        """Every payload that arrived since the last call, waiting up to `timeout` seconds for
        the first; an empty list when none came."""
        if not self._notes:
            # `asyncio.timeout`, not `wait_for`: on Python 3.11, `wait_for` returns instead of
            # raising when the task is cancelled as the event is set, and a loop around this
            # call would never stop (a client's close, a worker's drain, would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
        notes, self._notes = self._notes, []
        self._arrived.clear()
        return notes

    def nudge(self) -> None:
        """Hand out a `w` ("look for work") as if it had arrived: the caller's own news."""
        self._put("w")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _put(self, payload: str) -> None:
        self._notes.append(payload)
        self._arrived.set()

    async def _listen(self) -> None:
        delay = _BACKOFF_FIRST
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=max(1, round(self.connect_timeout)),
                    application_name=self.application_name,
                    **KEEPALIVES,
                )
            except psycopg.Error as exc:
                logger.warning("cannot connect to listen (%s); retrying", str(exc).strip())
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            try:
                async with conn:
                    name = '"' + self.channel.replace('"', '""') + '"'
                    await conn.execute(f"LISTEN {name}".encode())
                    self.connections += 1
                    delay = _BACKOFF_FIRST
                    self._put(RESCAN)
                    async for note in conn.notifies():
                        self._put(note.payload)
            except psycopg.Error as exc:
                logger.warning("the listening connection was lost (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
