"""Who may interrupt, resume, cancel, supersede or answer a human gate of a run, and who may
read it from another process (RT-20)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._vocabulary import AuditAction
from ._state import RunState


@runtime_checkable
class Authorizer(Protocol):
    """Decides whether `principal` may perform `action` on `run`; must be pure."""

    def allows(self, action: AuditAction, principal: str | None, run: RunState) -> bool:
        """Whether the action is allowed."""
        ...


@runtime_checkable
class ReadAuthorizer(Protocol):
    """An authorizer that also decides reads (RT-20); one without `allows_read` allows every
    read, as every read was allowed before reads were decided."""

    def allows_read(
        self, principal: str | None, conversation_id: str | None, run: RunState | None
    ) -> bool:
        """Whether `principal` may read `run` of the conversation; `run` None: the conversation
        as a whole (its runs are then decided one by one), and `conversation_id` None: every
        conversation."""
        ...


def read_allowed(
    authorizer: Authorizer,
    principal: str | None,
    conversation_id: str | None,
    run: RunState | None,
) -> bool:
    """The authorizer's read decision (RT-20); True for an authorizer without one."""
    decide = getattr(authorizer, "allows_read", None)
    return True if decide is None else bool(decide(principal, conversation_id, run))


@dataclass(frozen=True, slots=True)
class OwnerOrOperator:
    """The default: the run's own principal, or one of the configured operator principals."""

    operators: frozenset[str] = frozenset()

    def allows(self, action: AuditAction, principal: str | None, run: RunState) -> bool:
        """Whether `principal` started the run or is an operator.

        post: __return__ == (principal == run.principal or principal in self.operators)
        """
        return principal == run.principal or principal in self.operators

    def allows_read(
        self, principal: str | None, conversation_id: str | None, run: RunState | None
    ) -> bool:
        """Whether `principal` started the run or is an operator; anyone may ask for a whole
        conversation, whose runs are then decided one by one.

        post: __return__ == (run is None or principal in (run.principal, *self.operators))
        """
        return run is None or principal == run.principal or principal in self.operators
