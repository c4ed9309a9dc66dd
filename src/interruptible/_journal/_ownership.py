"""Ownership: who drives a conversation, the leases that say whether they are alive, commands.

Theory of operation (spec/ownership.md)
---------------------------------------
A conversation is driven by one *owner* at a time: a runtime in one process, named by an owner
id (`host:pid:random`). The journal keeps, per conversation, the history of its owners as an
append-only list numbered by *epoch* 1, 2, 3, ... (OWN-1); the current owner is the one of the
largest epoch. Taking a conversation (`claim`) is a compare-and-set on that epoch: it names the
epoch its caller saw, and a second claimant that saw the same epoch loses (OWN-2). Every event
row records the epoch of the owner that wrote it, and the journal refuses, in the same
transaction as the write, a row whose epoch is not the conversation's current one (OWN-3): a
stale owner (paused past its lease, then woken after a takeover) can never append, even where
its sequence numbers happen to fit.

Whether an owner is alive is a *lease*, one per owner (not per conversation): the owner renews
its expiry by heartbeat, and `release` (a clean close) sets it to 0. A conversation is
*abandoned* when its current owner's lease has expired or been released, or when the owner ran
on this host and its pid is gone (OWN-4). Only an abandoned conversation may be taken over.
The decision is made here, at the edge, with the caller's clock; the journal only makes the
compare-and-set atomic.

Commands (`interrupt_run`, `resume_run`, `cancel_run`, `provide_input` from a process that does
not own the conversation) are rows of a `commands` table: the request event, ids and time made
by the sender. The owner applies each pending command as an ordinary event and writes its
answer in the same transaction as the events it caused, so a command is answered exactly when
its effect is journaled, and whoever owns the conversation next applies the ones still pending
(OWN-6).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Final

from .._vocabulary import Event

# Why these: a lease long enough that a busy event loop or a slow fsync never lets it lapse by
# accident (the heartbeat renews it every quarter), short enough that a crashed owner on
# another host is taken over within seconds. On this host a dead pid is seen at once anyway.
DEFAULT_LEASE: Final = 10.0
HEARTBEATS_PER_LEASE: Final = 4


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    """A conversation's owner at one epoch, with that owner's lease."""

    conversation_id: str
    epoch: int
    owner_id: str
    previous_owner: str | None
    reason: str  # why it was taken: "new", or what made the previous owner abandoned
    taken_at: float
    host: str
    pid: int
    expires: float  # the owner's lease; 0 once released, or unknown


@dataclass(frozen=True, slots=True)
class Command:
    """A request for a conversation, submitted by a process that does not own it."""

    command_id: int
    conversation_id: str
    event: Event
    submitted_at: float


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """What the owner answered a command: a JSON document (a snapshot or an error)."""

    command_id: int
    epoch: int | None
    body: str
    answered_at: float


def this_host() -> str:
    """The name this host goes by in owner records."""
    return socket.gethostname()


def new_owner_id(host: str | None = None, pid: int | None = None) -> str:
    """A fresh owner id: host, pid, and a random part (two runtimes in one process differ)."""
    return (
        f"{host if host is not None else this_host()}:"
        f"{pid if pid is not None else os.getpid()}:{secrets.token_hex(4)}"
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except OSError:
        return False
    return True


def abandonment(record: OwnerRecord, now: float, host: str) -> str | None:
    """Why `record`'s owner no longer drives the conversation, or None while it is alive (OWN-4):
    "released", "lease_expired" or "owner_gone"."""
    if record.expires <= 0:
        return "released"
    if record.expires <= now:
        return "lease_expired"
    if record.host == host and not pid_alive(record.pid):
        return "owner_gone"
    return None
