"""The PostgreSQL journal's ownership (spec/ownership.md) and workers' claims (spec/workers.md):
leases, epochs, commands and their answers, claims of work and activity markers."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Final

from .._codec import dumps, loads_event
from .._errors import DecodeError, InvalidEventError
from .._vocabulary import TYPE_NAMES, Event
from ._check import check_events, check_target, no_lease, stale_batches, stale_owner
from ._ownership import Command, CommandAnswer, OwnerRecord
from ._pg_connection import (
    _REFUSED,
    PgConnection,
    _storable,
    _unstorable,
    logger,
    psycopg,  # imported there, with the message for an installation without it
)
from ._pg_listen import Claim, Listener
from ._pg_schema import channel


class PgOwners(PgConnection):
    """Owners, commands and claims of a PostgreSQL journal."""

    # --- ownership (spec/ownership.md) -----------------------------------------------------

    def register(self, owner_id: str, host: str, pid: int, expires: float) -> None:
        """Record (or refresh) an owner's lease."""
        for what, value in (("owner id", owner_id), ("host", host)):
            if not _storable(value):
                raise _unstorable(what, value, "bad_owner")
        self._execute("register", (owner_id, host, pid, expires), "registering an owner")

    def renew(self, owner_id: str, expires: float) -> None:
        """Move an owner's lease to `expires` (one row, whatever it owns)."""
        if _storable(owner_id):
            self._execute("renew", (expires, owner_id), "renewing a lease")
        else:
            self._check_open()  # no such owner can have a lease

    def release(self, owner_id: str) -> None:
        """End an owner's lease now."""
        self.renew(owner_id, 0.0)

    def claim(
        self, conversation_id: str, owner_id: str, seen_epoch: int, *, reason: str, at: float
    ) -> OwnerRecord:
        """Take the conversation at epoch `seen_epoch + 1`, if its epoch is still `seen_epoch`."""
        check_target(conversation_id, 0)
        if not _storable(conversation_id):
            raise _unstorable("conversation id", conversation_id, "bad_conversation_id")
        with self._lock:
            conn = self._live()
            try:
                with conn.transaction():
                    # The conversation's row, locked: appends in flight finish first (OWN-3).
                    conn.execute(self._sql["touch"], (conversation_id,))
                    current, previous, leased = conn.execute(
                        self._sql["claim_check"], (owner_id, conversation_id)
                    ).fetchone() or (None, None, False)
                    if (current or 0) != seen_epoch:
                        raise stale_owner(conversation_id, seen_epoch or None, current)
                    if not leased:
                        raise no_lease(owner_id)
                    claimed = conn.execute(
                        self._sql["claim"],
                        (conversation_id, seen_epoch + 1, owner_id, previous, reason, at),
                    ).fetchone()
            except _REFUSED:
                # Another claimant first (the lock makes this rare): say which epoch won.
                try:
                    heads = conn.execute(self._sql["heads"], ([conversation_id],)).fetchall()
                    current = heads[0][2] if heads else None
                except psycopg.Error:
                    current = None
                raise stale_owner(conversation_id, seen_epoch or None, current) from None
            except psycopg.Error as exc:
                raise self._failed(
                    conn, exc, f"claiming conversation {conversation_id!r}", write=True
                ) from None
        assert claimed is not None
        return OwnerRecord(*claimed)

    def owner(self, conversation_id: str) -> OwnerRecord | None:
        """The conversation's current owner."""
        if not _storable(conversation_id):
            self._check_open()
            return None
        rows = self._query("owner", (conversation_id,))
        return OwnerRecord(*rows[0]) if rows else None

    def owners(self) -> list[OwnerRecord]:
        """The current owner of every owned conversation."""
        return [OwnerRecord(*row) for row in self._query("owners", ())]

    def ownership_history(self, conversation_id: str) -> list[OwnerRecord]:
        """Every owner the conversation had, by epoch."""
        if not _storable(conversation_id):
            self._check_open()
            return []
        return [OwnerRecord(*row) for row in self._query("history", (conversation_id,))]

    def submit(self, conversation_id: str, event: Event, at: float) -> int:
        """Queue a command for the conversation's owner; ids commit in order, with no gap."""
        check_target(conversation_id, 0)
        if not _storable(conversation_id):
            raise _unstorable("conversation id", conversation_id, "bad_conversation_id")
        check_events(conversation_id, [event])
        rows = self._query(
            "submit",
            (conversation_id, TYPE_NAMES[type(event)], dumps(event), at),
            "submitting a command",
        )
        command_id: int = rows[0][0]
        return command_id

    def pending_commands(self, after: int = 0, conversation_id: str | None = None) -> list[Command]:
        """Unanswered commands with id > `after`, in order. One that does not decode (or names
        another conversation) is never acted on: it is answered with an `InvalidEventError`, so its
        sender learns it and it is no work for any worker (WRK-1); a read-only journal skips
        it with a warning."""
        if conversation_id is None:
            rows = self._query("pending", (after,))
        elif not _storable(conversation_id):
            self._check_open()
            return []
        else:
            rows = self._query("pending_of", (after, conversation_id))
        commands = []
        for command_id, cid, body, submitted_at in rows:
            try:
                event = loads_event(body)
            except DecodeError as exc:
                self._refuse_command(command_id, cid, f"does not decode: {exc}")
                continue
            if getattr(event, "conversation_id", None) != cid:
                self._refuse_command(command_id, cid, "names another conversation")
                continue
            commands.append(Command(command_id, cid, event, submitted_at))
        return commands

    def _refuse_command(self, command_id: int, cid: str, problem: str) -> None:
        """Answer a damaged command with an `InvalidEventError` (once: the answers' key)."""
        logger.warning("journal %s: command %d %s", self._where(), command_id, problem)
        if self.readonly:
            return
        error = InvalidEventError(
            f"command {command_id} for conversation {cid!r} {problem}; nothing was done. Send "
            "it again with this version of interruptible.",
            conversation_id=cid,
            reason="bad_command",
        )
        body = json.dumps(
            {
                "error": {
                    "type": "InvalidEventError",
                    "message": error.message,
                    "fields": error.fields(),
                }
            },
            separators=(",", ":"),
        )
        self._execute("answer_once", (command_id, body, time.time()), "answering a damaged command")

    def last_command_id(self) -> int:
        """The largest command id submitted so far (every smaller one is committed too)."""
        last: int = self._query("last_command", ())[0][0]
        return last

    def answer(self, command_id: int) -> CommandAnswer | None:
        """The owner's answer to a command, None while it is pending."""
        rows = self._query("answer", (command_id,))
        return CommandAnswer(*rows[0]) if rows else None

    def change_token(self) -> int:
        """The last command id: it moves exactly when a submitted command commits."""
        return self.last_command_id()

    # --- workers (spec/workers.md) --------------------------------------------------------

    # This journal shares conversations between worker processes: it keeps the activity
    # markers and claims work in one transaction (WRK-1, WRK-2).
    claims_work: Final = True

    def claim_work(
        self, owner_id: str, *, limit: int, at: float, max_claims: int | None = None
    ) -> list[Claim]:
        """Claim conversations with work whose owner is gone, for `owner_id`, so that it holds
        at most `limit` live ones (counted in the same transaction, WRK-1); at most
        `max_claims` now (default: as many as fit). Nothing when its lease is not live."""
        if limit < 0:
            raise ValueError(f"limit must be at least 0, got {limit!r}")
        if not _storable(owner_id):
            raise _unstorable("owner id", owner_id, "bad_owner")
        most = limit if max_claims is None else max(0, min(limit, max_claims))
        rows = self._query(
            "claim_work", (owner_id, limit, most, at), "claiming conversations with work"
        )
        return [Claim(*row) for row in rows]

    def mark(self, conversation_id: str, epoch: int, active: bool) -> None:
        """Set the conversation's activity marker, as its owner at `epoch` (WRK-2); refused
        with `StaleOwnerError` when another owner has claimed it since."""
        with self._lock:
            conn = self._live()
            try:
                with conn.transaction():
                    self._mark(conn, [(conversation_id, epoch, active)])
            except psycopg.Error as exc:
                raise self._failed(conn, exc, "marking a conversation", write=True) from None

    def find_run(self, run_id: str) -> str | None:
        """The conversation whose journal holds the request of run `run_id`, if any (a scan of
        the `run_requested` documents: for tools, not hot paths)."""
        if not _storable(run_id):
            self._check_open()
            return None
        rows = self._query("find_run", (run_id,))
        return str(rows[0][0]) if rows else None

    def active_conversations(self) -> list[str]:
        """The conversations marked as having a run to drive, sorted."""
        return [cid for (cid,) in self._query("active", ())]

    def owned_with_work(self, owner_id: str) -> list[tuple[str, int, bool]]:
        """(conversation, epoch, marker) of every conversation whose current owner is
        `owner_id` and that has work (marked active, or a command pending): what that owner
        must be driving (WRK-1)."""
        if not _storable(owner_id):
            self._check_open()
            return []
        return [(cid, epoch, active) for cid, epoch, active in self._query("owned", (owner_id,))]

    def owners_of(self, conversation_ids: Sequence[str], owner_id: str) -> list[OwnerRecord]:
        """The current owners of those conversations that are not `owner_id`."""
        cids = [cid for cid in conversation_ids if _storable(cid)]
        if not cids:
            self._check_open()
            return []
        return [OwnerRecord(*row) for row in self._query("owners_of", (cids, owner_id))]

    def listener(self) -> Listener:
        """A new `Listener` of this journal's notifications (its own connection, asyncio)."""
        self._check_open()
        return Listener(
            self.dsn,
            channel(self.schema),
            self.connect_timeout,
            application_name=f"{self.application_name} listener",
        )

    def _mark(
        self, conn: psycopg.Connection[Any], marks: Sequence[tuple[str, int | None, bool]]
    ) -> None:
        """Set activity markers under the epoch fence (in the caller's transaction, WRK-2)."""
        changed = conn.execute(
            self._sql["mark"],
            ([m[0] for m in marks], [m[1] for m in marks], [m[2] for m in marks]),
        ).rowcount
        if changed != len(marks):
            heads = conn.execute(self._sql["heads"], ([m[0] for m in marks],)).fetchall()
            epochs = {cid: epoch for cid, _last, epoch in heads}
            for cid, epoch, _active in marks:
                if epochs.get(cid) != epoch:
                    raise stale_owner(cid, epoch, epochs.get(cid))
            raise stale_batches()  # pragma: no cover - a marker row vanished (none ever do)
