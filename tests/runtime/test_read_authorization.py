"""Who may read: reads that name a principal are decided by the authorizer, like commands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interruptible import (
    AuditAction,
    EmitLifecycle,
    NotAuthorizedError,
    OwnerOrOperator,
    RunState,
    RunStatus,
)
from interruptible._runtime import Runtime
from tests.runtime.support import arun, pipeline, tool_step


async def _forever() -> None:
    await asyncio.sleep(60)


MODE = pipeline("p", [tool_step("t", "forever")])


def _runtime(authorizer: Any) -> Runtime:
    return Runtime("memory", modes=[MODE], tools={"forever": _forever}, authorizer=authorizer)


def test_rt_20_a_read_with_a_principal_is_decided_by_the_authorizer() -> None:
    """RT-20: `snapshot`, `wait` and `subscribe` given `principal=` ask the authorizer; the
    default (`OwnerOrOperator`) lets the run's principal and the operators read it and refuses
    anyone else, `principal=None` (anonymous) included, with `NotAuthorizedError`, changing
    nothing; without `principal=` (a caller in this process) nothing is checked."""

    async def scenario() -> None:
        async with _runtime(OwnerOrOperator(frozenset({"ops"}))) as rt:
            handle = await rt.run("c", None, mode="p", run_id="r1", principal="alice")
            state, journaled = rt.state("c"), len(list(rt.journal.read("c")))
            assert rt.snapshot("c").run_id == "r1"
            for reader in ("alice", "ops"):
                assert rt.snapshot("c", "r1", principal=reader).run_id == "r1"
                assert rt.snapshot("c", principal=reader).run_id == "r1"
            for intruder in ("mallory", None):
                with pytest.raises(NotAuthorizedError) as info:
                    rt.snapshot("c", "r1", principal=intruder)
                error = info.value
                assert (error.conversation_id, error.run_id) == ("c", "r1")
                assert error.reason == "not_authorized" and "read" in error.message
                with pytest.raises(NotAuthorizedError):
                    rt.snapshot("c", principal=intruder)
                with pytest.raises(NotAuthorizedError):
                    await rt.wait("c", "r1", principal=intruder)
            assert rt.state("c") == state and len(list(rt.journal.read("c"))) == journaled
            waiter = asyncio.ensure_future(rt.wait("c", "r1", principal="alice"))
            await handle.interrupt(principal="alice")
            assert (await waiter).status is RunStatus.interrupted

    arun(scenario())


def test_rt_20_a_subscription_with_a_principal_sees_only_runs_it_may_read() -> None:
    """RT-20: a subscription made with `principal=` delivers only the directives of runs the
    authorizer lets that principal read (decided run by run: a conversation's runs may belong
    to different principals); one without a principal sees every run."""

    async def scenario() -> dict[str, list[str]]:
        async with _runtime(OwnerOrOperator(frozenset({"ops"}))) as rt:
            subscriptions = {
                "alice": rt.subscribe("c", principal="alice"),
                "bob": rt.subscribe(principal="bob"),
                "ops": rt.subscribe("c", principal="ops"),
                "local": rt.subscribe("c"),
            }
            first = await rt.run("c", None, mode="p", run_id="r1", principal="alice")
            await first.cancel(principal="alice")
            second = await rt.run("c", None, mode="p", run_id="r2", principal="bob")
            await second.cancel(principal="bob")
            seen = {}
            for who, subscription in subscriptions.items():
                subscription.close()
                seen[who] = sorted({d.run_id async for d in subscription})
            return seen

    seen = arun(scenario())
    assert seen == {"alice": ["r1"], "bob": ["r2"], "ops": ["r1", "r2"], "local": ["r1", "r2"]}


def test_rt_20_a_refused_subscription_is_not_made() -> None:
    """RT-20: an authorizer's read decision about a whole conversation (`run` None) refuses
    `subscribe` with `NotAuthorizedError`, and no subscription is registered."""

    class OnlyOps:
        def allows(self, action: AuditAction, principal: str | None, run: RunState) -> bool:
            return principal == "ops"

        def allows_read(
            self, principal: str | None, conversation_id: str | None, run: RunState | None
        ) -> bool:
            return principal == "ops"

    async def scenario() -> None:
        async with _runtime(OnlyOps()) as rt:
            with pytest.raises(NotAuthorizedError):
                rt.subscribe("c", principal="mallory")
            with pytest.raises(NotAuthorizedError):
                rt.subscribe(principal="mallory")
            subscription = rt.subscribe("c", principal="ops")
            await rt.run("c", None, mode="p", run_id="r1", principal="ops")
            subscription.close()
            assert [d async for d in subscription if isinstance(d, EmitLifecycle)]
            assert rt._publisher.subscribers == {}

    arun(scenario())


def test_rt_20_an_authorizer_without_a_read_decision_allows_every_read() -> None:
    """RT-20: an authorizer written before reads were decided (only `allows`) keeps working:
    it still decides commands, and every read is allowed, as reads were before."""

    class CommandsOnly:
        def allows(self, action: AuditAction, principal: str | None, run: RunState) -> bool:
            return principal == "ops"

    async def scenario() -> None:
        async with _runtime(CommandsOnly()) as rt:
            subscription = rt.subscribe("c", principal="anyone")
            handle = await rt.run("c", None, mode="p", run_id="r1", principal="alice")
            assert rt.snapshot("c", "r1", principal="anyone").run_id == "r1"
            with pytest.raises(NotAuthorizedError):
                await handle.interrupt(principal="alice")
            await handle.interrupt(principal="ops")
            subscription.close()
            assert {d.run_id async for d in subscription} == {"r1"}

    arun(scenario())
