"""Who may interrupt, resume, cancel, supersede or answer a human gate of a run."""

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


@dataclass(frozen=True, slots=True)
class OwnerOrOperator:
    """The default: the run's own principal, or one of the configured operator principals."""

    operators: frozenset[str] = frozenset()

    def allows(self, action: AuditAction, principal: str | None, run: RunState) -> bool:
        """Whether `principal` started the run or is an operator.

        post: __return__ == (principal == run.principal or principal in self.operators)
        """
        return principal == run.principal or principal in self.operators
