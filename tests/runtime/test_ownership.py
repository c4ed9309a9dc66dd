"""Ownership across runtimes on one journal (spec/ownership.md): who drives, takeovers, commands.

Two runtimes in one process on one SQLite file, or one PostgreSQL schema, behave as two
processes do: each has its own connection and owner id, and the pid check cannot tell them
apart, so only leases decide. Every test runs on both journals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interruptible import (
    NotAuthorizedError,
    ResumeNotAllowedError,
    RunNotFoundError,
    RunStatus,
    StepClass,
    StepDefinition,
    StepStatus,
)
from interruptible._errors import OwnedElsewhereError
from interruptible._journal import Journal, SQLiteJournal
from interruptible._runtime import Runtime
from tests._postgres import POSTGRES
from tests.runtime.support import arun, pipeline, tool_step, until


class Shared:
    """One journal that several runtimes open, each with its own connection."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.schema = POSTGRES.new_schema() if kind == "postgres" else None
        self.opened: list[Journal] = []

    def open(self) -> Journal:
        """A new connection to the journal (closed after the test)."""
        if self.schema is None:
            journal: Journal = SQLiteJournal(self.path)
        else:
            journal = POSTGRES.journal(self.schema)
        self.opened.append(journal)
        return journal

    def spec(self) -> Path | Journal:
        """What a `Runtime` is opened on: the file, or a connection of its own."""
        return self.path if self.schema is None else self.open()

    def close(self) -> None:
        for journal in self.opened:
            journal.close()
        if self.schema is not None:
            POSTGRES.drop_schema(self.schema)


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    """The journal the test's runtimes share: a SQLite file, or a PostgreSQL schema."""
    if request.param == "postgres":
        POSTGRES.require()
    journal = Shared(request.param, tmp_path / "j.db")
    yield journal
    journal.close()


class Gate:
    """A tool that blocks until released, counting its calls by attempt."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self) -> str:
        from interruptible._runtime import current_effect

        self.calls.append(current_effect().idempotency_key)
        await self.release.wait()
        return "done"


def gate_waits(snapshot: Any) -> bool:
    return any(s.step_id == "ask" and s.status is StepStatus.waiting_input for s in snapshot.steps)


def options(tool: Gate, **extra: Any) -> dict[str, Any]:
    mode = pipeline(
        "p",
        [
            tool_step("t", "tool"),
            StepDefinition("ask", StepClass.human_gate, {"question": "go?"}),
        ],
    )
    return {"modes": [mode], "tools": {"tool": tool}, **extra}


def test_own_7_a_run_on_a_live_owners_conversation_is_refused_naming_it(shared: Shared) -> None:
    """`run` in a process that does not own the conversation raises `OwnedElsewhereError`
    with the owner's id, host and pid, and writes nothing."""
    tool = Gate()

    async def scenario() -> None:
        async with Runtime(shared.spec(), **options(tool)) as first:
            await first.run("c", None, mode="p", run_id="r1")
            async with Runtime(shared.spec(), **options(tool)) as second:
                before = second.journal.last_sequence("c")
                with pytest.raises(OwnedElsewhereError) as caught:
                    await second.run("c", None, mode="p", run_id="r2")
                assert caught.value.owner_id == first.owner_id
                assert caught.value.pid == first.journal.owner("c").pid  # type: ignore[union-attr]
                assert str(caught.value.pid) in caught.value.message
                assert second.journal.last_sequence("c") == before
            await first.cancel_run("c")
            tool.release.set()

    arun(scenario())


def test_own_4_a_live_owners_effects_are_left_alone(shared: Shared) -> None:
    """A runtime opened while another drives a conversation does not restart its in-flight
    effect: the tool runs once, and the second runtime reports the conversation left alone."""
    tool = Gate()

    async def scenario() -> None:
        async with Runtime(shared.spec(), **options(tool)) as first:
            await first.run("c", None, mode="p", run_id="r")
            await until(lambda: len(tool.calls) == 1)
            async with Runtime(shared.spec(), **options(tool)) as second:
                assert second.recovery.left_alone == [("c", first.owner_id)]
                assert second.recovery.restarted_runs == []
                assert second.snapshot("c").steps[0].status is StepStatus.running
                await asyncio.sleep(0.05)
            tool.release.set()
            await until(lambda: first.snapshot("c").steps[0].status is StepStatus.completed)
        assert tool.calls == ["r:t:1"]

    arun(scenario())


def test_own_6_commands_from_another_runtime_are_applied_by_the_owner(shared: Shared) -> None:
    """Interrupt, resume, answer and cancel called on a runtime that does not own the
    conversation are applied by its owner, and the caller gets the owner's snapshot; the
    owner's typed errors reach the caller as the same class and fields."""
    tool = Gate()

    async def scenario() -> None:
        async with Runtime(shared.spec(), **options(tool)) as first:
            await first.run("c", None, mode="p", run_id="r")
            await until(lambda: len(tool.calls) == 1)
            async with Runtime(shared.spec(), **options(tool)) as second:
                seen = await second.interrupt_run("c", "stop from elsewhere")
                assert seen.status is RunStatus.interrupted
                assert seen.reason == "stop from elsewhere"
                assert first.snapshot("c").status is RunStatus.interrupted
                assert first.journal.owner("c").owner_id == first.owner_id  # type: ignore[union-attr]
                again = await second.interrupt_run("c", "stop from elsewhere")
                assert again.status is RunStatus.interrupted  # the duplicate: a snapshot
                with pytest.raises(NotAuthorizedError):
                    await second.resume_run("c", "r", principal="bob")
                with pytest.raises(RunNotFoundError):
                    await second.resume_run("c", "nope")
                resumed = await second.resume_run("c", "r")
                assert resumed.status is RunStatus.running
                await until(lambda: len(tool.calls) == 2)
                tool.release.set()
                await until(lambda: gate_waits(first.snapshot("c")))
                answered = await second.provide_input("c", "r", "ask", "yes")
                assert answered.steps[1].step_id == "ask"
                final = await second.wait("c", "r")
                assert final.status is RunStatus.completed
                with pytest.raises(ResumeNotAllowedError):
                    await second.resume_run("c", "r")
            assert (await first.wait("c", "r")).status is RunStatus.completed

    arun(scenario())
    with shared.open() as journal:
        assert journal.pending_commands() == []
        assert [r.owner_id for r in journal.ownership_history("c")] == [
            journal.ownership_history("c")[0].owner_id
        ]


def test_own_5_own_8_an_abandoned_conversation_is_taken_over_and_journaled(
    shared: Shared,
) -> None:
    """When the owner's lease lapses, a runtime that opens takes the conversation over (epoch
    2, previous owner and reason journaled), restarts the lost effect once, and finishes it."""
    tool = Gate()

    async def scenario() -> None:
        first = Runtime(shared.spec(), **options(tool))
        await first.start()
        await first.run("c", None, mode="p", run_id="r")
        await until(lambda: len(tool.calls) == 1)
        first.journal.renew(first.owner_id, 1.0)  # its lease lapsed: a paused process
        async with Runtime(shared.spec(), **options(tool)) as second:
            (taken,) = second.recovery.taken_over
            assert taken == ("c", first.owner_id, 2, "lease_expired")
            history = second.journal.ownership_history("c")
            assert [(r.epoch, r.previous_owner) for r in history] == [
                (1, None),
                (2, first.owner_id),
            ]
            await until(lambda: len(tool.calls) == 2)
            assert tool.calls == ["r:t:1", "r:t:2"]
            tool.release.set()
            await until(lambda: gate_waits(second.snapshot("c")))
            await second.provide_input("c", "r", "ask", "ok")
            assert (await second.wait("c", "r")).status is RunStatus.completed
        await first.close()

    arun(scenario())


def test_own_6_a_command_pending_when_its_owner_dies_is_applied_once_by_the_taker(
    shared: Shared,
) -> None:
    """A command accepted while its owner stops answering is applied once, by the runtime
    that takes the conversation over when the owner's lease ends (here the sender itself)."""
    tool = Gate()

    async def scenario() -> None:
        first = Runtime(shared.spec(), **options(tool))
        await first.start()
        await first.run("c", None, mode="p", run_id="r")
        await until(lambda: len(tool.calls) == 1)
        assert first._owner is not None
        await first._owner.stop()  # the owner stops reading commands and renewing its lease
        async with Runtime(shared.spec(), **options(tool, adopt=False)) as second:
            sent = asyncio.ensure_future(second.cancel_run("c", "r", reason="stop it"))
            await until(lambda: bool(second.journal.pending_commands()))
            first.journal.renew(first.owner_id, 1.0)  # then its lease runs out
            canceled = await sent
            assert canceled.status is RunStatus.canceled
            assert second.journal.owner("c").owner_id == second.owner_id  # type: ignore[union-attr]
            assert second.journal.pending_commands() == []
        tool.release.set()
        await first.close()

    arun(scenario())
    with shared.open() as journal:
        events = [type(r.event).__name__ for r in journal.read("c")]
    assert events.count("CancelRequested") == 1


def test_own_6_an_owner_reads_only_the_commands_not_yet_answered(shared: Shared) -> None:
    """The owner's command scan starts after the commands already answered, however many
    there were (it does not rescan the table)."""
    tool = Gate()

    async def scenario() -> None:
        async with Runtime(shared.spec(), **options(tool)) as first:
            await first.run("c", None, mode="p", run_id="r")
            async with Runtime(shared.spec(), **options(tool)) as second:
                for _ in range(3):
                    await second.interrupt_run("c", "pause")
                    await second.resume_run("c", "r")
                assert first._owner is not None
                await until(lambda: first._owner._low == 6)  # type: ignore[union-attr]
                assert first.journal.pending_commands(after=first._owner._low) == []
            await first.cancel_run("c")
            tool.release.set()

    arun(scenario())


def _requests(rt: Runtime, cid: str) -> list[str]:
    """The event ids of the journaled commands that carry a request id."""
    return [
        r.event.event_id for r in rt.journal.read(cid) if r.event.event_id.startswith("request:")
    ]


def test_rt_34_a_retry_is_answered_by_the_owner_and_after_a_restart(tmp_path: Path) -> None:
    """RT-34 with OWN-6: a command with a request id sent from another runtime is applied by the
    owner; its retry, from either runtime and from a runtime opened after both closed, gets the
    first answer, after the run has ended too, and journals nothing."""
    db = tmp_path / "j.db"
    tool = Gate()

    async def scenario() -> None:
        async with Runtime(db, **options(tool)) as first:
            await first.run("c", None, mode="p", run_id="r")
            await until(lambda: len(tool.calls) == 1)
            async with Runtime(db, **options(tool)) as second:
                await second.interrupt_run("c", request_id="stop")
                resumed = await second.resume_run("c", "r", request_id="go")
                assert resumed.status is RunStatus.running
                await first.cancel_run("c", request_id="end")
                assert await second.resume_run("c", "r", request_id="go") == resumed
                assert await first.resume_run("c", "r", request_id="go") == resumed
                assert _requests(first, "c") == ["request:stop", "request:go", "request:end"]
        async with Runtime(db, **options(tool)) as third:
            assert await third.resume_run("c", "r", request_id="go") == resumed
            with pytest.raises(ResumeNotAllowedError):
                await third.resume_run("c", "r")

    arun(scenario())
