"""`RunHandle`: a run started by `Runtime.run`, with shortcuts to the runtime's operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from .._vocabulary import JsonValue
from ._snapshot import RunSnapshot

if TYPE_CHECKING:
    from ._runtime import Runtime

# What `wait` waits for: "settled" (interrupted or ended) or "terminal" (ended, RT-31).
Until: TypeAlias = Literal["settled", "terminal"]


class RunHandle:
    """A run started by `Runtime.run`: its ids, and shortcuts to the runtime's operations."""

    __slots__ = ("conversation_id", "run_id", "runtime")

    def __init__(self, runtime: Runtime, conversation_id: str, run_id: str) -> None:
        self.runtime = runtime
        self.conversation_id = conversation_id
        self.run_id = run_id

    def snapshot(self) -> RunSnapshot:
        """The run now."""
        return self.runtime.snapshot(self.conversation_id, self.run_id)

    async def wait(self, until: Until = "settled") -> RunSnapshot:
        """Until the run is interrupted or has ended; `until="terminal"`: until it has ended."""
        return await self.runtime.wait(self.conversation_id, self.run_id, until=until)

    async def interrupt(
        self,
        reason: str = "interrupt_requested",
        *,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """Interrupt the run (it may be resumed)."""
        return await self.runtime.interrupt_run(
            self.conversation_id,
            reason,
            run_id=self.run_id,
            principal=principal,
            request_id=request_id,
        )

    async def resume(
        self, *, principal: str | None = None, request_id: str | None = None
    ) -> RunSnapshot:
        """Resume the interrupted run."""
        return await self.runtime.resume_run(
            self.conversation_id, self.run_id, principal=principal, request_id=request_id
        )

    async def cancel(
        self,
        reason: str = "cancel_requested",
        *,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """End the run for good."""
        return await self.runtime.cancel_run(
            self.conversation_id,
            self.run_id,
            principal=principal,
            reason=reason,
            request_id=request_id,
        )

    async def provide_input(
        self,
        step_id: str,
        value: JsonValue,
        *,
        principal: str | None = None,
        request_id: str | None = None,
    ) -> RunSnapshot:
        """Answer the human gate `step_id`."""
        return await self.runtime.provide_input(
            self.conversation_id,
            self.run_id,
            step_id,
            value,
            principal=principal,
            request_id=request_id,
        )

    def __repr__(self) -> str:
        return f"RunHandle({self.conversation_id!r}, {self.run_id!r})"
