"""Request ids: a retried command gets its first answer (RT-34).

A command given a `request_id` journals its event under the event id `request:<request_id>`, so
the journal itself says which request each event answered: no new field, no schema change. The
conversation keeps the outcomes of its latest `REMEMBERED` requests. The writer, which applies
every command of a conversation it owns, answers a command whose event id it remembers with the
first outcome, and journals nothing; a restore or a catch-up folds the journal and remembers the
request events it meets, so a new owner (another process, or this one restarted) answers a retry
as the first owner did. A refused request that was not journaled (it changed nothing) is
remembered only in memory: after a restart its retry is applied again, and refused again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from .._core import Disposition, Outcome
from .._errors import RunConflictError
from .._vocabulary import Event

REQUEST_PREFIX: Final = "request:"
# Requests remembered per conversation: retries come seconds after their first try, and a
# conversation rarely sees more than a few commands a minute, so 256 covers every realistic
# retry window while bounding what a busy conversation holds.
REMEMBERED: Final = 256


def request_event_id(request_id: str) -> str:
    """The event id of the command given `request_id`."""
    if type(request_id) is not str or not request_id:
        raise TypeError(f"request_id must be a non-empty string, got {request_id!r}")
    return REQUEST_PREFIX + request_id


class RequestMemory:
    """The first outcome of a conversation's latest requests, by event id."""

    __slots__ = ("_outcomes",)

    def __init__(self) -> None:
        self._outcomes: OrderedDict[str, tuple[Event, Outcome]] = OrderedDict()

    def remember(self, event: Event, outcome: Outcome) -> None:
        """Keep `outcome` as the answer to `event`, if it is a request's and the first one."""
        event_id = event.event_id
        if not event_id.startswith(REQUEST_PREFIX) or event_id in self._outcomes:
            return
        self._outcomes[event_id] = (event, outcome)
        if len(self._outcomes) > REMEMBERED:
            self._outcomes.popitem(last=False)

    def answer(self, event: Event) -> Outcome | None:
        """The first outcome of the request `event` repeats, if remembered; a request id used
        for another command is a `RunConflictError`."""
        found = self._outcomes.get(event.event_id)
        if found is None:
            return None
        first, outcome = found
        if first == event or _same_command(first, event):
            return outcome
        request_id = event.event_id[len(REQUEST_PREFIX) :]
        error = RunConflictError(
            f"request id {request_id!r} was used for another command ({first.kind} of run "
            f"{first.run_id!r}); give each command its own request id.",
            conversation_id=event.conversation_id,
            run_id=event.run_id,
            reason="request_id_reused",
        )
        return Outcome(outcome.state, (), Disposition.rejected, None, error)


def _same_command(first: Event, again: Event) -> bool:
    """Whether `again` is `first` retried: the same kind, run and arguments (its time, which
    the edge stamps on each try, may differ)."""
    if type(first) is not type(again):
        return False
    fields = first.__dataclass_fields__
    return all(
        getattr(first, name) == getattr(again, name) for name in fields if name not in ("at",)
    )
