"""Who may read (RT-20): the authorizer's read decision, as the runtime's reads apply it.

Theory of operation
-------------------
Inside one process every caller is one trust domain: `snapshot`, `wait` and `subscribe` called
without `principal=` check nothing, as before. A read on behalf of someone else (a client in
another process, a stream served by offset) passes the principal it acts for, `None` for an
anonymous one; the reading call then asks the authorizer (`read_allowed`) and refuses with
`NotAuthorizedError`, changing nothing. "Not given" is therefore a value of its own,
`IN_PROCESS`, and not `None`, which is a principal like any other (commands take it so too).

A subscription lives longer than one decision: the conversation's later runs may belong to
someone else. So a subscription with a principal is asked once for the conversation as a whole
(`run` None), then filters what it delivers run by run, each directive by the authorizer's
decision on the run it is about.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Final

from .._core import Authorizer, RunState, read_allowed
from .._errors import NotAuthorizedError
from ._subscription import Published

audit_log: Final = logging.getLogger("interruptible.audit")


class Caller(enum.Enum):
    """Who reads when no principal is given: a caller in this process (nothing is checked)."""

    in_process = "in_process"


IN_PROCESS: Final = Caller.in_process

Principal = str | None | Caller


def check_read(
    authorizer: Authorizer,
    principal: str | None,
    conversation_id: str | None,
    run: RunState | None,
) -> None:
    """Raise `NotAuthorizedError` unless `principal` may read `run` (or the conversation)."""
    if read_allowed(authorizer, principal, conversation_id, run):
        return
    if conversation_id is None:
        what = "every conversation"
    else:
        what = f"conversation {conversation_id!r}"
        if run is not None:
            what = f"run {run.run_id!r} of {what}"
    audit_log.info("refused a read of %s by %r", what, principal)
    raise NotAuthorizedError(
        f"principal {principal!r} may not read {what}; ask the run's principal or an operator.",
        conversation_id=conversation_id,
        run_id=run.run_id if run is not None else None,
        status=run.status.value if run is not None else None,
        reason="not_authorized",
    )


def run_filter(
    authorizer: Callable[[], Authorizer],
    principal: str | None,
    run_of: Callable[[str, str], RunState | None],
) -> Callable[[Published], bool]:
    """Whether a subscription for `principal` may deliver a directive: the run it is about is
    one the authorizer lets `principal` read (a run no longer held is not delivered)."""

    def admits(directive: Published) -> bool:
        run = run_of(directive.conversation_id, directive.run_id)
        return run is not None and read_allowed(
            authorizer(), principal, directive.conversation_id, run
        )

    return admits
