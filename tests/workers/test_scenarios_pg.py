"""The phase plan's 3.4 scenarios on PostgreSQL, across processes: two `interruptible worker`
processes drive the runs (tests/workers/scenario_app.py), and every request comes from this
process through a client runtime, which owns nothing and sends each one to the owning worker
(spec/workers.md). The same scenarios run in one process on SQLite in
tests/scenarios_runtime/test_scenarios.py; here the tools run in the workers, and what they did
is read back from their ledger file and from the journal."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from interruptible import (
    Coordinator,
    EffectCompleted,
    EmitLifecycle,
    EmitOutput,
    InterruptRequested,
    ResumeNotAllowedError,
    ResumeRequested,
    RunStatus,
    StepStatus,
    initial_state,
)
from interruptible._runtime import Runtime
from tests.runtime.support import JournalFacts, assert_upstream_down, check_journal
from tests.workers import scenario_app
from tests.workers.support import Worker, Workers

T = TypeVar("T")

APP = "tests.workers.scenario_app"
# Every await of a test is bounded: a stuck scenario fails in seconds, not at CI's limit.
STEP_TIMEOUT = 15.0
SCENARIO_TIMEOUT = 60.0


class Scenario:
    """Two workers on a fresh schema, their ledger, and this process's view of the journal."""

    def __init__(self, workers: Workers, directory: Path) -> None:
        self.workers = workers
        self.directory = directory
        self.coordinator = Coordinator(scenario_app.MODES)
        self.started = workers.start(2)
        self.journal = workers.journal()

    def client(self) -> Runtime:
        """A client runtime: every request goes to the owning worker (WRK-5)."""
        return self.workers.client(scenario_app.MODES, command_timeout=STEP_TIMEOUT)

    # --- the tools' ledger --------------------------------------------------------------------

    def ledger(self) -> list[tuple[str, str, int, int, str]]:
        """(run_id, step_id, attempt, pid, what) for each line the tools wrote."""
        path = self.directory / "ledger"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            run_id, step_id, attempt, pid, what = line.split()
            rows.append((run_id, step_id, int(attempt), int(pid), what))
        return rows

    def noted(self, what: str) -> Counter[tuple[str, str, int]]:
        """How many times each (run, step, attempt) noted `what` (`start`, `cancelled`, ...)."""
        return Counter((r, s, a) for r, s, a, _, w in self.ledger() if w == what)

    def executions(self) -> Counter[tuple[str, str]]:
        """Tool executions per (run, step), all attempts."""
        return Counter((r, s) for r, s, _, _, w in self.ledger() if w == "start")

    def pids(self) -> set[int]:
        """The processes that ran a tool."""
        return {pid for _, _, _, pid, _ in self.ledger()}

    def release(self, run_id: str, step_id: str) -> None:
        """Let a holding tool of the run's step return."""
        (self.directory / f"release-{run_id}-{step_id}").touch()

    # --- the workers and the journal ----------------------------------------------------------

    def owner(self, conversation_id: str) -> Worker:
        """The worker that owns the conversation, as the journal records it."""
        record = self.journal.owner(conversation_id)
        assert record is not None, conversation_id
        by_id = {worker.owner_id: worker for worker in self.started}
        assert record.owner_id in by_id, (record.owner_id, list(by_id))
        return by_id[record.owner_id]

    def events(self, conversation_id: str) -> list[Any]:
        return [record.event for record in self.journal.read(conversation_id)]

    def directives(self, conversation_id: str) -> list[Any]:
        """Every directive that folding the conversation's journal gives, in order: what the
        owner carried out and published (the core is pure, so the fold gives the same)."""
        state = initial_state(conversation_id)
        found: list[Any] = []
        for event in self.events(conversation_id):
            outcome = self.coordinator.reduce(state, event)
            found.extend(outcome.directives)
            state = outcome.state
        return found

    def facts(self) -> JournalFacts:
        """RT-3 and RT-4 over the whole journal (tests/runtime/support.py)."""
        return check_journal(self.journal, self.coordinator)


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    """Two workers of the scenario application, sharing `tmp_path` with the test."""
    workers = Workers(
        modes=[f"{APP}:MODES"],
        tools=[f"{APP}:TOOLS"],
        functions=[f"{APP}:FUNCTIONS"],
        env={scenario_app.DIR_ENV: str(tmp_path)},
    )
    try:
        yield Scenario(workers, tmp_path)
    finally:
        workers.close()


def arun(coro: Awaitable[T]) -> T:
    """Run a scenario on a fresh loop, failing after `SCENARIO_TIMEOUT` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, SCENARIO_TIMEOUT)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait, re-checking every 5 ms, until `predicate()` holds; fail after `STEP_TIMEOUT`."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {STEP_TIMEOUT:g} s: {what}")
        await asyncio.sleep(0.005)


async def bounded(awaitable: Awaitable[T]) -> T:
    """One request or wait, failing after `STEP_TIMEOUT` seconds."""
    return await asyncio.wait_for(awaitable, STEP_TIMEOUT)


def _worker_pids(scenario: Scenario) -> set[int]:
    return {worker.pid for worker in scenario.started}


# --- 3.4.1 run orchestration ---------------------------------------------------------------------


def test_rt_3_multi_step_run_completes_on_workers(scenario: Scenario) -> None:
    """3.4.1.1 across processes: two tools (one threaded, one async), a human gate answered from
    this process, a timer and a system step complete in order, each once, in a worker, and the
    run ends `completed` with every step's output; folding the journal gives the one terminal
    output and the run's lifecycle `running` then `completed` (RT-3). The gate's answer sent
    again after the end is answered from the worker's live state with the very run this process
    folded from the journal (RT-9, RT-11). Every request went through the client to the owning
    worker and came back as its answer (WRK-5)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", {"topic": "cats"}, mode="research", run_id="r1"))
            await until(
                lambda: rt.snapshot("c1", "r1").steps[-1].status is StepStatus.waiting_input,
                "the gate waits for its answer",
            )
            answered = await bounded(handle.provide_input("approve", {"approved": True}))
            assert answered.run_id == "r1" and answered.status is RunStatus.running
            assert answered.steps[2].step_id == "approve"
            assert answered.steps[2].status is StepStatus.completed
            assert answered.steps[2].output == {"approved": True}
            final = await bounded(handle.wait("terminal"))
            # The same answer again: the owner answers with the run as its live state holds it,
            # which is the run this process folded from the journal (RT-9, RT-11).
            again = await bounded(handle.provide_input("approve", {"approved": True}))
            assert again == final
        assert final.status is RunStatus.completed
        assert [s.step_id for s in final.steps] == [
            "search",
            "summarize",
            "approve",
            "cool_down",
            "publish",
        ]
        assert [s.status for s in final.steps] == [StepStatus.completed] * 5
        outputs = final.output["outputs"]
        assert outputs["search"] == ["cats-1", "cats-2"]
        assert outputs["summarize"] == "a + b"
        assert outputs["approve"] == {"approved": True}
        assert outputs["cool_down"]["seconds"] == 0.05
        assert outputs["publish"] == {"published_to": "blog"}
        # Each tool ran once, in the worker that owns the conversation, not in this process.
        assert scenario.noted("start") == {("r1", "search", 1): 1, ("r1", "summarize", 1): 1}
        assert scenario.pids() == {scenario.owner("c1").pid}
        assert os.getpid() not in scenario.pids()
        directives = scenario.directives("c1")
        names = [d.name for d in directives if isinstance(d, EmitLifecycle) and d.step_id is None]
        assert names == ["run.running", "run.completed"]
        assert sum(isinstance(d, EmitOutput) for d in directives) == 1
        scenario.facts().assert_ok()

    arun(main())


def test_rt_3_failure_terminalizes_with_the_error_envelope_on_workers(scenario: Scenario) -> None:
    """3.4.1.2 across processes: a tool that keeps failing in a worker spends its two attempts,
    then fails the run once (CORE-14), with the normalized error envelope in the snapshot this
    process reads and in the one terminal `emit_output` the journal folds to (RT-3); the step
    after it never starts. The run request went through the client to a worker (WRK-5)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", None, mode="failing", run_id="r1"))
            final = await bounded(handle.wait("terminal"))
        assert_upstream_down(final)
        error = final.error
        assert [s.step_id for s in final.steps] == ["first", "flaky"]
        assert final.steps[1].failure == error
        # max_attempts=2, then no more; both in the owning worker.
        assert scenario.noted("start") == {("r1", "flaky", 1): 1, ("r1", "flaky", 2): 1}
        assert scenario.pids() == {scenario.owner("c1").pid}
        outputs = [d for d in scenario.directives("c1") if isinstance(d, EmitOutput)]
        assert len(outputs) == 1
        assert outputs[0].status == "failed" and outputs[0].error == error
        facts = scenario.facts()
        facts.assert_ok()
        assert [(s, a) for _, _, s, a in facts.starts] == [("first", 1), ("flaky", 1), ("flaky", 2)]

    arun(main())


def test_rt_3_terminal_exclusivity_under_late_events_on_workers(scenario: Scenario) -> None:
    """3.4.1.3 across processes: a run cancelled from this process while its tool runs in a
    worker ends `canceled` exactly once; the tool, which cannot be stopped, returns after the
    cancel and its result is journaled and ignored (`run_terminal`); a second cancel and an
    interrupt change nothing, a resume is refused with the owner's typed error raised here
    (WRK-5), and no effect starts after the end (RT-3)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", None, mode="late", run_id="r1"))
            await until(
                lambda: scenario.noted("start")[("r1", "slow", 1)] == 1, "the slow tool started"
            )
            canceled = await bounded(handle.cancel())
            assert canceled.status is RunStatus.canceled
            assert canceled.steps[0].status is StepStatus.canceled
            assert not scenario.noted("returned")  # the tool still runs: its answer comes late
            scenario.release("r1", "slow")
            await until(
                lambda: any(isinstance(e, EffectCompleted) for e in scenario.events("c1")),
                "the late result is journaled",
            )
            again = await bounded(handle.cancel())
            assert again.status is RunStatus.canceled
            with pytest.raises(ResumeNotAllowedError) as refused:
                await bounded(handle.resume())
            assert refused.value.run_id == "r1"
            interrupted = await bounded(rt.interrupt_run("c1", run_id="r1"))
            assert interrupted.status is RunStatus.canceled
            assert rt.snapshot("c1", "r1").status is RunStatus.canceled
        assert scenario.noted("returned") == {("r1", "slow", 1): 1}
        assert scenario.executions() == {("r1", "slow"): 1}  # `after` never ran
        facts = scenario.facts()
        facts.assert_ok()
        # The late completion, the second cancel and the interrupt.
        assert facts.ignored["run_terminal"] == 3, facts.ignored
        assert len(facts.starts) == 1
        assert facts.runs == {("c1", "r1"): RunStatus.canceled}

    arun(main())


# --- 3.4.2 interruption and resume --------------------------------------------------------------


def test_rt_6_interrupt_cancels_the_active_effect_and_marks_the_run_interrupted_on_workers(
    scenario: Scenario,
) -> None:
    """3.4.2.1 across processes: when `interrupt_run`, sent from this process, returns, the run
    is `interrupted` in the journal with its reason and the step is `cancelling` (the owner
    answered without waiting for the effect, RT-6); the tool in the worker is told to stop
    (RT-5), the effect answers `effect_canceled` and the step is `pending`; the next step never
    starts. The interrupt went through the client to the owning worker (WRK-5)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", None, mode="long", run_id="r1"))
            await until(
                lambda: scenario.noted("start")[("r1", "long", 1)] == 1, "the long tool started"
            )
            snapshot = await bounded(rt.interrupt_run("c1", "user pressed stop", run_id="r1"))
            assert snapshot.status is RunStatus.interrupted
            assert snapshot.reason == "user pressed stop"
            assert [s.status for s in snapshot.steps] == [StepStatus.cancelling]
            await until(
                lambda: rt.snapshot("c1", "r1").steps[0].status is StepStatus.pending,
                "the cancelled effect answered",
            )
            settled = await bounded(handle.wait())
            assert settled.status is RunStatus.interrupted
            assert settled.reason == "user pressed stop"
        # The tool was told to stop, once, in the worker that ran it.
        assert scenario.noted("cancelled") == {("r1", "long", 1): 1}
        assert scenario.pids() == {scenario.owner("c1").pid}
        assert scenario.executions() == {("r1", "long"): 1}
        types = [type(e).__name__ for e in scenario.events("c1")]
        assert types[-2:] == ["InterruptRequested", "EffectCanceled"]
        facts = scenario.facts()
        facts.assert_ok(all_terminal=False)
        assert facts.runs == {("c1", "r1"): RunStatus.interrupted}

    arun(main())


def test_rt_7_resume_picks_up_from_the_expected_step_in_the_other_worker(
    scenario: Scenario,
) -> None:
    """3.4.2.2 across processes: a run interrupted during its third step in one worker, which
    then drains (SIGTERM), is resumed from this process and driven by the other worker from the
    journal: it resumes at that step (same run id, attempt 2), the first two steps never run
    again, and the run completes (RT-7, RT-4). Both requests went through the client to the
    owner of the moment (WRK-5)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", None, mode="five", run_id="r1"))
            await until(lambda: scenario.noted("start")[("r1", "s3", 1)] == 1, "step 3 started")
            interrupted = await bounded(handle.interrupt())
            assert [s.status for s in interrupted.steps] == [
                StepStatus.completed,
                StepStatus.completed,
                StepStatus.cancelling,
            ]
            await until(
                lambda: rt.snapshot("c1", "r1").steps[2].status is StepStatus.pending,
                "step 3's effect answered its cancel",
            )
            first = scenario.owner("c1")
            scenario.workers.stop(first)  # drains: its lease is released at once
            resumed = await bounded(handle.resume())
            assert resumed.run_id == "r1" and resumed.status is RunStatus.running
            assert resumed.steps[2].attempt == 2
            final = await bounded(handle.wait("terminal"))
            assert final.status is RunStatus.completed
            assert final.output["outputs"] == {f"s{n}": n * 10 for n in range(1, 6)}
        second = scenario.owner("c1")
        assert second is not first and second.alive()
        assert scenario.executions() == {
            ("r1", "s1"): 1,
            ("r1", "s2"): 1,
            ("r1", "s3"): 2,
            ("r1", "s4"): 1,
            ("r1", "s5"): 1,
        }
        assert scenario.noted("cancelled") == {("r1", "s3", 1): 1}
        where = {(r, s, a): pid for r, s, a, pid, w in scenario.ledger() if w == "start"}
        assert where == {
            ("r1", "s1", 1): first.pid,
            ("r1", "s2", 1): first.pid,
            ("r1", "s3", 1): first.pid,
            ("r1", "s3", 2): second.pid,
            ("r1", "s4", 1): second.pid,
            ("r1", "s5", 1): second.pid,
        }
        facts = scenario.facts()
        facts.assert_ok()
        assert [(s, a) for _, _, s, a in facts.starts] == [
            ("s1", 1),
            ("s2", 1),
            ("s3", 1),
            ("s3", 2),
            ("s4", 1),
            ("s5", 1),
        ]

    arun(main())


def test_rt_9_duplicate_interrupt_and_resume_are_idempotent_on_workers(
    scenario: Scenario,
) -> None:
    """3.4.2.3 across processes: a second interrupt of an interrupted run and a second resume of
    a running run, sent from this process, return the owner's snapshot (no error), change
    nothing and start nothing; they are journaled and ignored as duplicates (RT-9). A retry
    with the same request id gets the first answer and journals nothing (RT-34). Every request
    went through the client to the owning worker (WRK-5)."""

    async def main() -> None:
        async with scenario.client() as rt:
            handle = await bounded(rt.run("c1", None, mode="long", run_id="r1"))
            await until(
                lambda: scenario.noted("start")[("r1", "long", 1)] == 1, "the long tool started"
            )
            first = await bounded(handle.interrupt(request_id="stop-1"))
            retry = await bounded(handle.interrupt(request_id="stop-1"))
            second = await bounded(handle.interrupt())
            third = await bounded(rt.interrupt_run("c1", "again", run_id="r1"))
            assert first.status is RunStatus.interrupted
            assert retry == first
            assert second.status is third.status is RunStatus.interrupted
            assert second.reason == third.reason == first.reason == "interrupt_requested"
            await until(
                lambda: rt.snapshot("c1", "r1").steps[0].status is StepStatus.pending,
                "the cancelled effect answered",
            )
            resumed = await bounded(handle.resume())
            assert resumed.status is RunStatus.running and resumed.steps[0].attempt == 2
            await until(
                lambda: scenario.noted("start")[("r1", "long", 2)] == 1, "attempt 2 started"
            )
            await until(
                lambda: rt.snapshot("c1", "r1").steps[0].status is StepStatus.running,
                "attempt 2's start is journaled",
            )
            state = rt.state("c1")
            length = len(scenario.events("c1"))
            again = await bounded(handle.resume())
            assert again.status is RunStatus.running and again.steps[0].attempt == 2
            assert len(scenario.events("c1")) == length + 1  # journaled, and ignored
            assert rt.state("c1") == state
            assert scenario.noted("cancelled") == {("r1", "long", 1): 1}
            canceled = await bounded(handle.cancel())
            assert canceled.status is RunStatus.canceled
        events = scenario.events("c1")
        facts = scenario.facts()
        facts.assert_ok()
        assert facts.ignored["duplicate_request"] == 3, facts.ignored
        assert sum(isinstance(e, InterruptRequested) for e in events) == 3
        assert sum(isinstance(e, ResumeRequested) for e in events) == 2
        # The first attempt and the resumed one, nothing more.
        assert [(s, a) for _, _, s, a in facts.starts] == [("long", 1), ("long", 2)]
        assert scenario.executions() == {("r1", "long"): 2}
        assert scenario.pids() == {scenario.owner("c1").pid}

    arun(main())
