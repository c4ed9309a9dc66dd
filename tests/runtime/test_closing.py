"""Closing the runtime: nothing that waits on it is left waiting."""

from __future__ import annotations

import asyncio

import pytest

from interruptible import RunStatus, RuntimeClosedError
from interruptible._journal import MemoryJournal
from interruptible._runtime import Runtime
from tests.runtime.support import arun, pipeline, tool_step


async def _forever() -> None:
    await asyncio.sleep(60)


MODE = pipeline("p", [tool_step("t", "forever")])


def test_rt_18_close_wakes_a_pending_wait_with_runtime_closed() -> None:
    """RT-18: a `wait` pending when the runtime closes is woken by `close()` with
    `RuntimeClosedError` naming the conversation, the run and its status (the run goes on in
    the next runtime on the journal), never left waiting; every waiter of the run is woken."""

    async def scenario() -> None:
        journal = MemoryJournal()
        rt = Runtime(journal, modes=[MODE], tools={"forever": _forever})
        await rt.start()
        handle = await rt.run("c", None, mode="p", run_id="r1")
        waiters = [asyncio.ensure_future(handle.wait()) for _ in range(2)]
        await asyncio.sleep(0)  # let both waits register
        assert not any(waiter.done() for waiter in waiters)
        await rt.close()
        done, _ = await asyncio.wait(waiters, timeout=5)
        assert done == set(waiters), "a wait was left hanging by close()"
        for waiter in waiters:
            with pytest.raises(RuntimeClosedError) as info:
                waiter.result()
            error = info.value
            assert (error.conversation_id, error.run_id, error.status) == ("c", "r1", "running")
            assert error.reason == "runtime_closed"
            assert "r1" in error.message and "journal" in error.message
        # The run was left running, and the next runtime on the journal continues it.
        async with Runtime(journal, modes=[MODE], tools={"forever": _forever}) as again:
            assert again.snapshot("c", "r1").status is RunStatus.running
            assert again.recovery.restarted_runs == [("c", "r1")]

    arun(scenario())


def test_rt_18_a_run_that_settles_while_closing_gives_its_snapshot() -> None:
    """RT-18: a `wait` whose run is interrupted before `close()` returns gets the snapshot (the
    settled run), not an error: only waits still pending at the end are told the runtime
    closed."""

    async def scenario() -> None:
        async with Runtime("memory", modes=[MODE], tools={"forever": _forever}) as rt:
            handle = await rt.run("c", None, mode="p")
            waiter = asyncio.ensure_future(handle.wait())
            await asyncio.sleep(0)
            interrupted = asyncio.ensure_future(handle.interrupt())
            await asyncio.sleep(0)  # the interrupt is queued before close() begins
        assert (await interrupted).status is RunStatus.interrupted
        assert (await waiter).status is RunStatus.interrupted

    arun(scenario())
