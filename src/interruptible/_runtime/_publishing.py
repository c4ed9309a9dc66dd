"""Where a runtime's published directives go, once their events are committed (RT-1).

`emit_audit` goes to the audit log and the application's `on_audit`; a run's `emit_output` has
the run's trace emitted, when tracing is on (OBS-1); every other published directive wakes the
conversation's rejoinable streams (OBS-8) and goes to the subscriptions of the conversation and
of every conversation (RT-14). The writer calls `publish` for each, in event order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from .._core import Coordinator
from .._journal import Journal
from .._vocabulary import Directive, EmitAudit, EmitLifecycle, EmitOutput, EmitProgress
from ._stream import Streams
from ._subscription import Published, Subscription
from ._tracing import RunTracer
from ._writer import Conversation

audit_log: Final = logging.getLogger("interruptible.audit")


class Publisher:
    """A runtime's audit hook, tracer, streams and subscriptions."""

    __slots__ = ("coordinator", "journal", "on_audit", "streams", "subscribers", "tracer")

    def __init__(
        self,
        on_audit: Callable[[EmitAudit], None] | None,
        tracer: RunTracer | None,
        journal: Callable[[], Journal],
        coordinator: Callable[[], Coordinator],
    ) -> None:
        self.on_audit = on_audit
        self.tracer = tracer
        self.journal = journal
        self.coordinator = coordinator
        self.subscribers: dict[str | None, list[Subscription]] = {}
        self.streams = Streams()  # woken after a commit publishes for them (OBS-8)

    def publish(self, conv: Conversation, directive: Directive) -> None:
        """Carry out one published directive of a committed event."""
        if type(directive) is EmitAudit:
            assert isinstance(directive, EmitAudit)
            audit_log.info(
                "%s %s run %s by %r: %s",
                "allowed" if directive.allowed else "refused",
                directive.action.value,
                directive.run_id,
                directive.principal,
                directive.reason,
            )
            if self.on_audit is not None:
                self.on_audit(directive)
            return
        if self.tracer is not None and type(directive) is EmitOutput:
            assert isinstance(directive, EmitOutput)
            run = conv.state.run(directive.run_id)
            cid = conv.conversation_id
            self.tracer.settled(self.journal(), self.coordinator(), cid, directive, run)
        if self.streams:
            self.streams.wake(conv.conversation_id)
        subscribers = self.subscribers
        if not subscribers:
            return
        assert isinstance(directive, EmitLifecycle | EmitProgress | EmitOutput)
        for key in (conv.conversation_id, None):
            for subscription in subscribers.get(key, ()):
                subscription.put(directive)

    def subscribe(
        self, conversation_id: str | None, admits: Callable[[Published], bool] | None
    ) -> Subscription:
        """A new subscription to the conversation (None: to every conversation)."""
        subscription = Subscription(conversation_id, self.unsubscribe, admits)
        self.subscribers.setdefault(conversation_id, []).append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a closed subscription."""
        subscriptions = self.subscribers.get(subscription.conversation_id)
        if subscriptions is not None and subscription in subscriptions:
            subscriptions.remove(subscription)
            if not subscriptions:
                del self.subscribers[subscription.conversation_id]

    def close(self) -> None:
        """End every subscription and stream (the runtime is closing)."""
        for subscriptions in list(self.subscribers.values()):
            for subscription in list(subscriptions):
                subscription.close()
        self.streams.close()
        if self.tracer is not None:
            self.tracer.forget()
