"""The Runtime's operations: typed errors, identity, supersede, authorization, wait, subscribe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interruptible import (
    AuditAction,
    EmitAudit,
    EmitLifecycle,
    EmitOutput,
    InterruptRequested,
    JournalError,
    NotAuthorizedError,
    OwnerOrOperator,
    ResumeNotAllowedError,
    RunConflictError,
    RunInProgressError,
    RunNotFoundError,
    RunStatus,
    StepClass,
    StepDefinition,
    StepStatus,
)
from interruptible._journal import MemoryJournal
from interruptible._runtime import RunSnapshot, Runtime
from interruptible._runtime._answers import read_answer, snapshot_answer
from tests.runtime.support import arun, pipeline, system_step, tool_step, until

GATED = pipeline(
    "gated",
    [system_step("before", "noop"), StepDefinition("ask", StepClass.human_gate, {"q": "?"})],
)


async def _forever() -> None:
    await asyncio.sleep(60)


def _runtime(**options: Any) -> Runtime:
    mode = pipeline("p", [tool_step("t", "forever")])
    return Runtime(
        options.pop("journal", "memory"),
        modes=[mode, GATED],
        tools={"forever": _forever},
        functions={"noop": lambda: None},
        **options,
    )


def test_rt_16_unknown_ids_fail_at_once_with_run_not_found() -> None:
    """Interrupting, resuming, cancelling, answering, waiting for or looking at a run of an
    unknown conversation, or an unknown run of a known one, raises `RunNotFoundError` at once."""

    async def scenario() -> None:
        async with _runtime() as rt:
            for call in (
                rt.interrupt_run("nope"),
                rt.resume_run("nope", "r"),
                rt.cancel_run("nope"),
                rt.provide_input("nope", "r", "s", 1),
                rt.wait("nope", "r"),
            ):
                with pytest.raises(RunNotFoundError):
                    await call
            with pytest.raises(RunNotFoundError):
                rt.snapshot("nope")
            await rt.run("c", None, mode="p")
            for call in (rt.resume_run("c", "other"), rt.wait("c", "other")):
                with pytest.raises(RunNotFoundError):
                    await call
            with pytest.raises(RunNotFoundError):
                rt.snapshot("c", "other")

    arun(scenario())


def test_rt_16_one_active_run_identity_and_supersede() -> None:
    """A second run in a busy conversation is `RunInProgressError`; the same run id with the same
    input returns the existing run (no new event), with other input `RunConflictError`;
    `supersede=True` cancels the interrupted run (reason `superseded`) and starts the new one."""

    async def scenario() -> None:
        async with _runtime() as rt:
            first = await rt.run("c", {"n": 1}, mode="p", run_id="r1")
            with pytest.raises(RunInProgressError):
                await rt.run("c", {"n": 2}, mode="p")
            events = rt.journal.last_sequence("c")
            again = await rt.run("c", {"n": 1}, mode="p", run_id="r1")
            assert again.run_id == "r1" and rt.snapshot("c").status is RunStatus.running
            assert rt.journal.last_sequence("c") == events + 1  # journaled, ignored
            with pytest.raises(RunConflictError):
                await rt.run("c", {"n": 9}, mode="p", run_id="r1")
            await first.interrupt()
            second = await rt.run("c", {"n": 2}, mode="p", run_id="r2", supersede=True)
            old = rt.snapshot("c", "r1")
            assert (old.status, old.reason) == (RunStatus.canceled, "superseded")
            assert rt.snapshot("c").run_id == second.run_id == "r2"

    arun(scenario())


def test_rt_13_refused_requests_are_audited_and_journaled() -> None:
    """An interrupt by a principal the authorizer refuses raises `NotAuthorizedError`, changes
    nothing, and its `emit_audit` reaches `on_audit`; the refused request is journaled so the
    audit trail survives and replays. Allowed actions are audited too."""
    audits: list[EmitAudit] = []

    async def scenario() -> None:
        async with _runtime(
            authorizer=OwnerOrOperator(frozenset({"ops"})), on_audit=audits.append
        ) as rt:
            handle = await rt.run("c", None, mode="p", principal="alice")
            with pytest.raises(NotAuthorizedError):
                await rt.interrupt_run("c", principal="mallory")
            assert rt.snapshot("c").status is RunStatus.running
            journal = rt.journal
            assert isinstance(journal, MemoryJournal)
            last = [r.event for r in journal.read("c")][-1]
            assert isinstance(last, InterruptRequested) and last.principal == "mallory"
            await handle.interrupt(principal="ops")

    arun(scenario())
    assert [(a.action, a.principal, a.allowed) for a in audits] == [
        (AuditAction.interrupt, "mallory", False),
        (AuditAction.interrupt, "ops", True),
    ]


def test_rt_14_wait_returns_when_interrupted_or_ended_and_subscribe_follows_the_run() -> None:
    """`wait` wakes when its run is interrupted (or at once if it already is) and when it ends;
    `subscribe` delivers the run's lifecycle directives in order and one terminal output."""

    async def scenario() -> None:
        async with _runtime() as rt:
            subscription = rt.subscribe("c")
            handle = await rt.run("c", None, mode="p")
            waiter = asyncio.ensure_future(handle.wait())
            await asyncio.sleep(0.01)
            assert not waiter.done()
            await handle.interrupt()
            assert (await waiter).status is RunStatus.interrupted
            assert (await handle.wait()).status is RunStatus.interrupted
            await handle.resume()
            waiter = asyncio.ensure_future(handle.wait())
            await handle.cancel()
            assert (await waiter).status is RunStatus.canceled
            subscription.close()
            seen = [d async for d in subscription]
        runs = [d.name for d in seen if isinstance(d, EmitLifecycle) and d.step_id is None]
        assert runs == ["run.running", "run.interrupted", "run.running", "run.canceled"]
        assert [d.status for d in seen if isinstance(d, EmitOutput)] == ["canceled"]

    arun(scenario())


def test_rt_16_human_gate_answers_early_late_and_conflicting() -> None:
    """An answer given before the gate opens is kept and completes the gate when it opens; the
    same answer again is a no-op; a different one is `RunConflictError`; a resume of a running
    run is a no-op but of an ended one `ResumeNotAllowedError`."""

    async def scenario() -> None:
        release = asyncio.Event()
        running = asyncio.Event()

        async def hold() -> None:
            running.set()
            await release.wait()

        early = pipeline(
            "early",
            [tool_step("before", "hold"), StepDefinition("ask", StepClass.human_gate, {"q": "?"})],
        )
        journal = MemoryJournal()
        async with Runtime(journal, modes=[early], tools={"hold": hold}) as rt:
            handle = await rt.run("c", None, mode="early")
            await running.wait()
            await handle.provide_input("ask", "yes")  # the gate is not planned yet
            assert [step.step_id for step in rt.snapshot("c").steps] == ["before"]
            release.set()
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert final.output["outputs"]["ask"] == "yes"
            kinds = [
                (type(r.event).__name__, getattr(r.event, "step_id", None))
                for r in journal.read("c")
            ]
            assert kinds.index(("HumanInputReceived", "ask")) < kinds.index(
                ("EffectStarted", "ask")
            )
        async with _runtime() as rt:
            handle = await rt.run("c", None, mode="gated")
            await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.waiting_input)
            await handle.provide_input("ask", "yes")
            assert (await handle.wait()).status is RunStatus.completed
            await handle.provide_input("ask", "yes")
            with pytest.raises(RunConflictError):
                await handle.provide_input("ask", "no")
            with pytest.raises(ResumeNotAllowedError):
                await handle.resume()
            handle = await rt.run("c", None, mode="gated")
            await until(lambda: rt.snapshot("c").steps[-1].status is StepStatus.waiting_input)
            assert (await handle.resume()).status is RunStatus.running
            await handle.provide_input("ask", {"ok": True})
            assert (await handle.wait()).status is RunStatus.completed

    arun(scenario())


def test_rt_16_a_closed_runtime_refuses_calls() -> None:
    """Operations on a runtime that is not open raise `JournalError` saying so."""

    async def scenario() -> None:
        rt = _runtime()
        with pytest.raises(JournalError, match="open it first"):
            await rt.run("c", None, mode="p")
        async with rt:
            await rt.run("c", None, mode="p")
        with pytest.raises(JournalError):
            rt.snapshot("c")

    arun(scenario())


def test_rt_30_resume_run_defaults_to_the_interrupted_run() -> None:
    """RT-30: `resume_run(cid)` resumes the conversation's interrupted run, as `interrupt_run`
    and `cancel_run` default to the active run; with no run at all, `RunNotFoundError`."""

    async def scenario() -> None:
        async with _runtime() as rt:
            with pytest.raises(RunNotFoundError):
                await rt.resume_run("c")
            handle = await rt.run("c", None, mode="p", run_id="r1")
            assert (await rt.interrupt_run("c")).status is RunStatus.interrupted
            resumed = await rt.resume_run("c")
            assert (resumed.run_id, resumed.status) == ("r1", RunStatus.running)
            await handle.cancel()
            with pytest.raises(ResumeNotAllowedError):
                await rt.resume_run("c")

    arun(scenario())


def test_rt_31_wait_until_terminal_waits_past_interruptions() -> None:
    """RT-31: `wait(until="terminal")` returns only when the run has ended, past an interrupt
    and a resume; the default (`"settled"`) returns at the interrupt; another value is a
    `ValueError`."""

    async def scenario() -> None:
        async with _runtime() as rt:
            handle = await rt.run("c", None, mode="p", run_id="r1")
            terminal = asyncio.ensure_future(handle.wait(until="terminal"))
            settled = asyncio.ensure_future(handle.wait())
            await handle.interrupt()
            assert (await asyncio.wait_for(settled, 5)).status is RunStatus.interrupted
            await asyncio.sleep(0.05)
            assert not terminal.done()
            await handle.resume()
            await asyncio.sleep(0.05)
            assert not terminal.done()
            await handle.cancel()
            assert (await asyncio.wait_for(terminal, 5)).status is RunStatus.canceled
            done = await rt.wait("c", "r1", until="terminal")
            assert done.status is RunStatus.canceled
            with pytest.raises(ValueError):
                await rt.wait("c", "r1", until="forever")  # type: ignore[arg-type]

    arun(scenario())


def test_rt_32_snapshot_lists_the_upcoming_steps() -> None:
    """RT-32: a snapshot's `upcoming` lists a `Sequence`'s declared steps that are not planned
    yet (`pending`, attempt 0), `steps` and `current_step` show only planned steps, `step()`
    finds either, and an ended run has nothing upcoming; an owner's answer carries them."""
    mode = pipeline(
        "three",
        [
            tool_step("work", "forever"),
            StepDefinition("ask", StepClass.human_gate, {"q": "?"}, label="the gate"),
            system_step("after", "noop"),
        ],
    )

    async def scenario() -> None:
        async with _runtime() as rt:
            handle = await rt.run("c", None, mode=mode, run_id="r1")
            snap = await handle.interrupt()
            assert [s.step_id for s in snap.steps] == ["work"]
            assert snap.current_step is not None and snap.current_step.step_id == "work"
            assert [(s.step_id, s.status, s.attempt) for s in snap.upcoming] == [
                ("ask", StepStatus.pending, 0),
                ("after", StepStatus.pending, 0),
            ]
            gate = rt.snapshot("c").step("ask")
            assert gate is not None and (gate.step_class, gate.label) == (
                StepClass.human_gate,
                "the gate",
            )
            assert read_answer(snapshot_answer(snap)) == snap
            ended = await handle.cancel()
            assert ended.upcoming == () and ended.step("ask") is None

    arun(scenario())


def test_rt_32_a_mode_that_cannot_tell_shows_nothing_upcoming() -> None:
    """RT-32: a mode without `upcoming_steps`, or whose `upcoming_steps` raises, shows no
    upcoming step; the run's planned steps are shown as before."""
    mode = pipeline("two", [tool_step("work", "forever"), system_step("after", "noop")])

    class Silent:
        pass

    class Broken:
        def upcoming_steps(self, context: Any) -> Any:
            raise KeyError("next")

    async def scenario() -> None:
        async with _runtime() as rt:
            await rt.run("c", None, mode=mode, run_id="r1")
            run = rt.state("c").run("r1")
            assert run is not None
            assert [s.step_id for s in RunSnapshot.of("c", run, mode).upcoming] == ["after"]
            for other in (None, Silent(), Broken()):
                shown = RunSnapshot.of("c", run, other)  # type: ignore[arg-type]
                assert shown.upcoming == () and [s.step_id for s in shown.steps] == ["work"]

    arun(scenario())


def _requests(rt: Runtime, cid: str) -> list[str]:
    """The event ids of the journaled commands that carry a request id."""
    return [
        r.event.event_id for r in rt.journal.read(cid) if r.event.event_id.startswith("request:")
    ]


def test_rt_34_a_retried_command_gets_its_first_answer() -> None:
    """RT-34: a command retried with the same `request_id` gets the first answer, journals
    nothing, and never races into `ResumeNotAllowedError`, also after the run ended; the same
    request id for another command is a `RunConflictError`."""

    async def scenario() -> None:
        async with _runtime() as rt:
            await rt.run("c", None, mode="p", run_id="r1")
            await rt.interrupt_run("c", request_id="stop-1")
            first = await rt.resume_run("c", request_id="go-1")
            assert first.status is RunStatus.running
            await rt.interrupt_run("c", request_id="stop-2")
            again = await rt.resume_run("c", request_id="go-1")
            assert again == first  # the first answer, though the run is interrupted now
            assert _requests(rt, "c") == ["request:stop-1", "request:go-1", "request:stop-2"]
            await rt.cancel_run("c", request_id="end-1")
            assert (await rt.resume_run("c", "r1", request_id="go-1")) == first
            with pytest.raises(ResumeNotAllowedError):
                await rt.resume_run("c", "r1")  # without a request id: a new command
            with pytest.raises(RunConflictError):
                await rt.cancel_run("c", "r1", request_id="go-1")

    arun(scenario())
