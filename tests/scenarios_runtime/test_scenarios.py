"""The phase plan's 3.4 scenarios, end to end: real asyncio effects on a SQLite journal."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from interruptible import (
    Backoff,
    EmitLifecycle,
    EmitOutput,
    FailureCategory,
    InterruptRequested,
    ResumeRequested,
    RunStatus,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
)
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Effect, EffectError, Runtime, ScriptedModel, StepSnapshot
from tests.runtime.support import (
    Ledger,
    arun,
    assert_upstream_down,
    check_journal,
    pipeline,
    system_step,
    tool_step,
    until,
)

FAST_RETRY = StepPolicy(
    max_attempts=2,
    backoff=Backoff(initial=0.01, multiplier=1.0, max_delay=0.01),
    retry_on=(FailureCategory.transient,),
)


ANSWERED = (StepStatus.completed, StepStatus.pending)


def _waiting(step: StepSnapshot | None) -> bool:
    return step is not None and step.status is StepStatus.waiting_input


def _answered(rt: Runtime, cid: str) -> bool:
    return rt.snapshot(cid).steps[0].status in ANSWERED


def _journal_types(path: Path, cid: str) -> list[str]:
    journal = SQLiteJournal(path)
    try:
        return [type(record.event).__name__ for record in journal.read(cid)]
    finally:
        journal.close()


def _check(path: Path, rt: Runtime, *, all_terminal: bool = True) -> None:
    journal = SQLiteJournal(path)
    try:
        check_journal(journal, rt.coordinator).assert_ok(all_terminal=all_terminal)
    finally:
        journal.close()


# --- 3.4.1 run orchestration ---------------------------------------------------------------------


def test_rt_3_multi_step_run_completes(tmp_path: Path) -> None:
    """3.4.1.1: an llm step, two tools, a human gate, a timer and a system step complete in
    order, each once, and the run ends `completed` with every step's output (RT-3, RT-11)."""
    db = tmp_path / "runs.db"
    ledger = Ledger()
    plan = {"content": "search then summarize", "tool_calls": []}

    def search(query: str) -> list[str]:
        ledger.record()
        return [f"{query}-1", f"{query}-2"]

    async def summarize(items: list[str]) -> str:
        ledger.record()
        await asyncio.sleep(0.01)
        return " + ".join(items)

    mode = pipeline(
        "research",
        [
            StepDefinition(
                "plan", StepClass.llm, {"messages": [{"role": "user", "content": "go"}]}
            ),
            tool_step("search", "search", query="cats"),
            tool_step("summarize", "summarize", items=["a", "b"]),
            StepDefinition("approve", StepClass.human_gate, {"question": "publish?"}),
            StepDefinition("cool_down", StepClass.timer, {"seconds": 0.05}),
            system_step("publish", "publish", channel="blog"),
        ],
    )

    async def scenario() -> None:
        async with Runtime(
            db,
            modes=[mode],
            model=ScriptedModel([plan]),
            tools={"search": search, "summarize": summarize},
            functions={"publish": lambda channel: {"published_to": channel}},
        ) as rt:
            subscription = rt.subscribe("c1")
            handle = await rt.run("c1", {"topic": "cats"}, mode="research")
            await until(lambda: _waiting(rt.snapshot("c1").current_step))
            await handle.provide_input("approve", {"approved": True})
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert [s.status for s in final.steps] == [StepStatus.completed] * 6
            outputs = final.output["outputs"]
            assert outputs["plan"]["content"] == "search then summarize"
            assert outputs["search"] == ["cats-1", "cats-2"]
            assert outputs["summarize"] == "a + b"
            assert outputs["approve"] == {"approved": True}
            assert outputs["publish"] == {"published_to": "blog"}
            assert all(n == 1 for n in ledger.keys.values()) and len(ledger.keys) == 2
            subscription.close()
            seen = [d async for d in subscription]
            names = [d.name for d in seen if isinstance(d, EmitLifecycle) and d.step_id is None]
            assert names == ["run.running", "run.completed"]
            assert sum(isinstance(d, EmitOutput) for d in seen) == 1
            state = rt.state("c1")
        # Replay parity: the fold of the journal is the state the live runtime held.
        async with Runtime(db, modes=[mode]) as again:
            assert again.state("c1") == state
            assert again.recovery.restarted_runs == []
        _check(db, rt)

    arun(scenario())


def test_rt_3_failure_terminalizes_with_the_error_envelope(tmp_path: Path) -> None:
    """3.4.1.2: a step that keeps failing spends its attempts, then fails the run once, with the
    normalized error envelope in the snapshot and in the one terminal `emit_output`."""
    db = tmp_path / "runs.db"
    ledger = Ledger()

    def flaky() -> None:
        ledger.record()
        raise EffectError(FailureCategory.transient, "upstream is down", details={"code": 503})

    mode = pipeline(
        "p",
        [
            system_step("first", "ok"),
            tool_step("flaky", "flaky", FAST_RETRY),
            system_step("never", "ok"),
        ],
    )

    async def scenario() -> None:
        async with Runtime(
            db, modes=[mode], tools={"flaky": flaky}, functions={"ok": lambda: 1}
        ) as rt:
            subscription = rt.subscribe("c1")
            handle = await rt.run("c1", None, mode="p")
            final = await handle.wait()
            assert_upstream_down(final)
            error = final.error
            assert sum(ledger.keys.values()) == 2  # max_attempts=2, then no more
            subscription.close()
            outputs = [d async for d in subscription if isinstance(d, EmitOutput)]
            assert len(outputs) == 1 and outputs[0].status == "failed" and outputs[0].error == error
        _check(db, rt)

    arun(scenario())


class _Stubborn:
    """An executor whose effect finishes even when cancelled: its result arrives late."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def execute(self, effect: Effect) -> Any:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            await asyncio.shield(self.release.wait())
        return {"late": True}


def test_rt_3_terminal_exclusivity_under_late_events(tmp_path: Path) -> None:
    """3.4.1.3: a run cancelled while its tool runs ends `canceled` exactly once; the tool's
    result, arriving after, is journaled and ignored (run_terminal), a second cancel and a resume
    change nothing, and no effect starts after the end (RT-3)."""
    db = tmp_path / "runs.db"
    stubborn = _Stubborn()
    mode = pipeline("p", [tool_step("slow", "x"), tool_step("after", "x")])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], executors={"tool": stubborn}) as rt:
            handle = await rt.run("c1", None, mode="p")
            await until(lambda: rt.snapshot("c1").steps[0].status is StepStatus.running)
            canceled = await handle.cancel()
            assert canceled.status is RunStatus.canceled
            stubborn.release.set()
            await until(lambda: "EffectCompleted" in _journal_types(db, "c1"))
            again = await handle.cancel()
            assert again.status is RunStatus.canceled
            with pytest.raises(Exception) as refused:
                await handle.resume()
            assert type(refused.value).__name__ == "ResumeNotAllowedError"
            await rt.interrupt_run("c1")  # ignored: run_terminal
            assert rt.snapshot("c1").status is RunStatus.canceled
        facts_journal = SQLiteJournal(db)
        try:
            facts = check_journal(facts_journal, rt.coordinator)
        finally:
            facts_journal.close()
        facts.assert_ok()
        assert facts.ignored["run_terminal"] >= 2  # the late completion and the second cancel
        assert len(facts.starts) == 1

    arun(scenario())


# --- 3.4.2 interruption and resume --------------------------------------------------------------


class _Watched:
    """A tool executor that records cancellation and its cancel hook."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.hooked: list[str] = []
        self.started = asyncio.Event()

    async def execute(self, effect: Effect) -> Any:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.append(effect.effect_id)
            raise
        return None

    def cancel(self, effect: Effect) -> None:
        self.hooked.append(effect.effect_id)


def test_rt_6_interrupt_cancels_active_effects_and_marks_the_run_interrupted(
    tmp_path: Path,
) -> None:
    """3.4.2.1: when `interrupt_run` returns, the run is `interrupted` in the journal with its
    reason, the in-flight effect's cancel hook ran and its task was cancelled at once, and the
    effect answered `effect_canceled`, leaving the step pending (RT-5, RT-6)."""
    db = tmp_path / "runs.db"
    watched = _Watched()
    mode = pipeline("p", [tool_step("long", "x"), tool_step("next", "x")])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], executors={"tool": watched}) as rt:
            handle = await rt.run("c1", None, mode="p")
            await watched.started.wait()
            loop = asyncio.get_running_loop()
            before = loop.time()
            snapshot = await rt.interrupt_run("c1", "user pressed stop")
            assert loop.time() - before < 0.5
            assert snapshot.status is RunStatus.interrupted
            assert snapshot.reason == "user pressed stop"
            assert snapshot.steps[0].status is StepStatus.cancelling
            assert watched.hooked == [f"{handle.run_id}/long/1"]
            await until(lambda: rt.snapshot("c1").steps[0].status is StepStatus.pending)
            assert watched.cancelled == watched.hooked
            assert rt.effects.live_effect_ids() == []
            assert (await handle.wait()).status is RunStatus.interrupted
        types = _journal_types(db, "c1")
        assert types[-2:] == ["InterruptRequested", "EffectCanceled"]
        _check(db, rt, all_terminal=False)

    arun(scenario())


def test_rt_7_resume_picks_up_from_the_expected_step(tmp_path: Path) -> None:
    """3.4.2.2: a run interrupted during its third step resumes at that step (same run id, a
    new attempt and effect id); the first two steps never run again, and the run completes."""
    db = tmp_path / "runs.db"
    ledger = Ledger()
    gate = asyncio.Event()

    async def work(n: int) -> int:
        ledger.record()
        if n == 3 and current_attempt() == 1:
            await gate.wait()
        return n * 10

    from interruptible._runtime import current_effect

    def current_attempt() -> int:
        return current_effect().attempt

    mode = pipeline("p", [tool_step(f"s{n}", "work", n=n) for n in range(1, 6)])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], tools={"work": work}) as rt:
            handle = await rt.run("c1", None, mode="p", run_id="run-1")
            await until(lambda: ledger.keys["run-1:s3:1"] == 1)
            interrupted = await handle.interrupt()
            assert [s.status for s in interrupted.steps] == [
                StepStatus.completed,
                StepStatus.completed,
                StepStatus.cancelling,
            ]
            await until(lambda: rt.snapshot("c1").steps[2].status is StepStatus.pending)
            resumed = await handle.resume()
            assert resumed.run_id == "run-1" and resumed.status is RunStatus.running
            assert resumed.steps[2].attempt == 2
            final = await handle.wait()
            assert final.status is RunStatus.completed
            assert final.output["outputs"] == {f"s{n}": n * 10 for n in range(1, 6)}
        assert ledger.steps() == {
            "run-1:s1": 1,
            "run-1:s2": 1,
            "run-1:s3": 2,
            "run-1:s4": 1,
            "run-1:s5": 1,
        }
        assert ledger.keys["run-1:s3:2"] == 1
        _check(db, rt)

    arun(scenario())


def test_rt_9_duplicate_interrupt_and_resume_are_idempotent(tmp_path: Path) -> None:
    """3.4.2.3: a second interrupt of an interrupted run and a second resume of a running run
    return the snapshot (no error), change nothing and start nothing; they are journaled and
    ignored as duplicates."""
    db = tmp_path / "runs.db"
    watched = _Watched()
    mode = pipeline("p", [tool_step("long", "x")])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], executors={"tool": watched}) as rt:
            handle = await rt.run("c1", None, mode="p")
            await watched.started.wait()
            first = await handle.interrupt()
            second = await handle.interrupt()
            third = await rt.interrupt_run("c1", "again")
            assert first.status is second.status is third.status is RunStatus.interrupted
            assert second.reason == first.reason  # the duplicate's own reason changed nothing
            await until(lambda: rt.snapshot("c1").steps[0].status is StepStatus.pending)
            resumed = await handle.resume()
            state = rt.state("c1")
            again = await handle.resume()
            assert resumed.status is again.status is RunStatus.running
            assert rt.state("c1") == state
            assert len(watched.hooked) == 1
            await handle.cancel()
        journal = SQLiteJournal(db)
        try:
            facts = check_journal(journal, rt.coordinator)
            events = [r.event for r in journal.read("c1")]
        finally:
            journal.close()
        facts.assert_ok()
        assert facts.ignored["duplicate_request"] == 3
        assert sum(isinstance(e, InterruptRequested) for e in events) == 3
        assert sum(isinstance(e, ResumeRequested) for e in events) == 2
        assert len(facts.starts) == 2  # the first attempt and the resumed one, nothing more

    arun(scenario())


def test_rt_5_interrupt_racing_a_finishing_tool_has_one_answer(tmp_path: Path) -> None:
    """A real timing race: an interrupt lands while a tool (in a worker thread) is finishing.
    Whichever answer the journal holds first decides: either the result crossed the cancel and
    is kept (the step is never run again), or the effect was cancelled and the resume runs it
    with a new attempt. Either way the run completes once and no kept result is re-executed.
    (A thread that began is waited for, RT-24: only an effect cancelled before its thread began
    answers canceled.)"""
    db = tmp_path / "runs.db"
    ledger = Ledger()
    import time as _time

    def finishing(ms: float) -> str:
        ledger.record()
        _time.sleep(ms / 1000)
        return "done"

    mode = pipeline("p", [tool_step("race", "finishing", ms=3.0), system_step("tail", "ok")])
    outcomes: dict[str, int] = {"kept": 0, "rerun": 0}

    async def scenario() -> None:
        async with Runtime(
            db, modes=[mode], tools={"finishing": finishing}, functions={"ok": lambda: 0}
        ) as rt:
            for i in range(40):
                cid = f"c{i}"
                handle = await rt.run(cid, None, mode="p")
                await asyncio.sleep((i % 8) * 0.0008)  # land before, during and after the finish
                snapshot = await handle.interrupt()
                if snapshot.status is RunStatus.completed:
                    continue  # the whole run finished first: the interrupt was late
                await until(functools.partial(_answered, rt, cid))
                kept = rt.snapshot(cid).steps[0].status is StepStatus.completed
                outcomes["kept" if kept else "rerun"] += 1
                await handle.resume()
                final = await handle.wait()
                assert final.status is RunStatus.completed
                prefix = f"{handle.run_id}:race:"
                ran = {k: n for k, n in ledger.keys.items() if k.startswith(prefix)}
                assert all(n == 1 for n in ran.values()), (i, ran)  # no attempt ran twice
                if kept:  # the kept result is never run again
                    assert set(ran) == {prefix + "1"}, (i, ran)
                else:  # attempt 2 ran; attempt 1 ran only if its thread began before the cancel
                    assert prefix + "2" in ran and set(ran) <= {prefix + "1", prefix + "2"}, (
                        i,
                        ran,
                    )
        _check(db, rt)

    arun(scenario(), timeout=60)
    print("race outcomes", outcomes)
    # Most interrupts land before the run ends (the per-run checks above are the property).
    assert outcomes["kept"] + outcomes["rerun"] >= 10, outcomes
