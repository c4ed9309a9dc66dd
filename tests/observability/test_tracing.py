"""Traces of settled runs (spec/observability.md, OBS-1..OBS-5): one OpenTelemetry span per run
and a child span per step attempt, built from the journal once, by the process that ended the
run, checked with the SDK's in-memory exporter over the 3.4 scenarios."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from interruptible import (
    Backoff,
    Coordinator,
    EffectStarted,
    EmitOutput,
    FailureCategory,
    RunStatus,
    StepClass,
    StepDefinition,
    StepPolicy,
    StepStatus,
)
from interruptible._journal import SQLiteJournal
from interruptible._runtime import EffectError, Runtime, ScriptedModel
from interruptible._runtime._tracing import RunTracer
from tests._postgres import POSTGRES
from tests.runtime.owner_child import OWNED, side_tool
from tests.runtime.support import arun, pipeline, system_step, tool_step, until

ROOT = Path(__file__).resolve().parents[2]
OWNER_CHILD = ROOT / "tests" / "runtime" / "owner_child.py"
P = "interruptible."


class Traces:
    """A tracer provider of its own (never the global one) with an in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def tree(self) -> tuple[ReadableSpan, list[ReadableSpan]]:
        """The one run span and its step spans; every span is in the run span's trace."""
        spans = self.spans()
        roots = [span for span in spans if span.parent is None]
        assert len(roots) == 1, [span.name for span in roots]
        root = roots[0]
        assert root.context is not None
        children = [span for span in spans if span is not root]
        for child in children:
            assert child.parent is not None and child.parent.span_id == root.context.span_id
            assert child.context is not None
            assert child.context.trace_id == root.context.trace_id
            assert root.start_time is not None and root.end_time is not None
            assert child.start_time is not None and child.end_time is not None
            assert root.start_time <= child.start_time <= child.end_time <= root.end_time
        return root, children


@pytest.fixture
def traces() -> Iterator[Traces]:
    collected = Traces()
    yield collected
    collected.provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return {key.removeprefix(P): value for key, value in (span.attributes or {}).items()}


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [
        (event.name, {k.removeprefix(P): v for k, v in (event.attributes or {}).items()})
        for event in span.events
    ]


def ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def test_obs_1_a_completed_run_is_one_span_with_a_child_per_attempt(
    tmp_path: Path, traces: Traces
) -> None:
    """OBS-1, 3.4.1.1: a six-step run (llm, two tools, a human gate, a timer, a system step)
    that completes is one run span with one child span per step attempt, each with the
    conversation, run, step, step class, attempt, idempotency key and outcome, at the journal's
    own times; the gate's answer is a `human_input` event with its principal (OBS-2)."""
    db = tmp_path / "runs.db"
    mode = pipeline(
        "research",
        [
            StepDefinition(
                "plan", StepClass.llm, {"messages": [{"role": "user", "content": "go"}]}
            ),
            tool_step("search", "search", query="cats"),
            tool_step("summarize", "summarize", items=["a", "b"]),
            StepDefinition("approve", StepClass.human_gate, {"question": "publish?"}),
            StepDefinition("cool_down", StepClass.timer, {"seconds": 0.02}),
            system_step("publish", "publish"),
        ],
    )

    async def scenario() -> str:
        async with Runtime(
            db,
            modes=[mode],
            model=ScriptedModel([{"content": "ok", "tool_calls": []}]),
            tools={"search": lambda query: [query], "summarize": lambda items: "+".join(items)},
            functions={"publish": lambda: "done"},
            tracer_provider=traces.provider,
        ) as rt:
            handle = await rt.run("c1", {"topic": "cats"}, mode="research", principal="alice")
            await until(lambda: rt.snapshot("c1").steps[-1].status is StepStatus.waiting_input)
            assert traces.spans() == []  # nothing is exported before the run ends
            await handle.provide_input("approve", {"ok": True}, principal="alice")
            final = await handle.wait()
            assert final.status is RunStatus.completed
            return handle.run_id

    run_id = arun(scenario())
    root, children = traces.tree()
    assert root.name == "run research"
    root_attributes = attrs(root)
    definition = root_attributes.pop("definition")  # the run's definition (UPG-1)
    assert root_attributes == {
        "conversation_id": "c1",
        "run_id": run_id,
        "mode": "research",
        "principal": "alice",
        "outcome": "completed",
    }
    assert root.status.status_code is StatusCode.UNSET
    journal = SQLiteJournal(db, readonly=True)
    try:
        recorded = [record.event for record in journal.read("c1")]
        assert definition == recorded[0].fingerprint
    finally:
        journal.close()
    assert root.start_time == ns(recorded[0].at)
    assert root.end_time == ns(recorded[-1].at)
    starts = {e.step_id: e.at for e in recorded if isinstance(e, EffectStarted)}
    classes = ["llm", "tool", "tool", "human_gate", "timer", "system"]
    assert [attrs(span) for span in children] == [
        {
            "conversation_id": "c1",
            "run_id": run_id,
            "step_id": step_id,
            "step_class": step_class,
            "attempt": 1,
            "idempotency_key": f"{run_id}:{step_id}:1",
            "effect_id": f"{run_id}/{step_id}/1",
            "outcome": "completed",
        }
        for step_id, step_class in zip(starts, classes, strict=True)
    ]
    assert [span.name for span in children] == [f"step {step_id}" for step_id in starts]
    assert [span.start_time for span in children] == [ns(at) for at in starts.values()]
    assert events(root) == [("human_input", {"step_id": "approve", "principal": "alice"})]


FAST_RETRY = StepPolicy(
    max_attempts=2,
    backoff=Backoff(initial=0.01, multiplier=1.0, max_delay=0.01),
    retry_on=(FailureCategory.transient,),
)


def test_obs_1_a_failed_run_carries_its_failure_category(tmp_path: Path, traces: Traces) -> None:
    """OBS-1, 3.4.1.2: a step that fails twice (transient) fails the run: each attempt is a
    span with outcome `failed` and its failure category and an error status, and the run span
    has outcome `failed`, the category and an error status with the message."""

    def flaky() -> None:
        raise EffectError(FailureCategory.transient, "upstream is down")

    mode = pipeline("p", [system_step("first", "ok"), tool_step("flaky", "flaky", FAST_RETRY)])

    async def scenario() -> None:
        async with Runtime(
            tmp_path / "j.db",
            modes=[mode],
            tools={"flaky": flaky},
            functions={"ok": lambda: 1},
            tracer_provider=traces.provider,
        ) as rt:
            final = await (await rt.run("c1", None, mode="p")).wait()
            assert final.status is RunStatus.failed

    arun(scenario())
    root, children = traces.tree()
    assert attrs(root)["outcome"] == "failed"
    assert attrs(root)["failure_category"] == "transient"
    assert root.status.status_code is StatusCode.ERROR
    assert "upstream is down" in str(root.status.description)
    assert [(attrs(s)["step_id"], attrs(s)["attempt"], attrs(s)["outcome"]) for s in children] == [
        ("first", 1, "completed"),
        ("flaky", 1, "failed"),
        ("flaky", 2, "failed"),
    ]
    assert [attrs(s).get("failure_category") for s in children] == [None, "transient", "transient"]
    assert [s.status.status_code for s in children][1:] == [StatusCode.ERROR] * 2


class _Gate:
    """A tool that waits until released (so a test can interrupt or cancel it mid-step)."""

    def __init__(self) -> None:
        self.entered = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.entered += 1
        await self.release.wait()
        return "done"


def test_obs_2_interrupt_resume_and_cancel_are_span_events_with_reason_and_principal(
    tmp_path: Path, traces: Traces
) -> None:
    """OBS-2, 3.4.2 and 3.4.1.3: an interrupt (reason, principal) and a resume are events of the
    run span at their journaled times; the interrupted attempt is a span with outcome
    `canceled` and the resumed one a new attempt. A run cancelled mid-step has outcome
    `canceled`, a `cancel` event with its reason and principal, and its attempt, which had not
    answered when the run ended, ends with the run (outcome `open`). A refused request
    (journaled for its audit) is no event."""
    gate = _Gate()
    mode = pipeline("p", [tool_step("slow", "slow"), tool_step("next", "slow")])

    async def scenario() -> None:
        async with Runtime(
            tmp_path / "j.db", modes=[mode], tools={"slow": gate}, tracer_provider=traces.provider
        ) as rt:
            handle = await rt.run("c1", None, mode="p", principal="alice")
            await until(lambda: gate.entered == 1)
            with pytest.raises(Exception, match="may not interrupt"):
                await rt.interrupt_run("c1", "nosy", principal="mallory")
            await rt.interrupt_run("c1", "user pressed stop", principal="alice")
            await until(lambda: rt.snapshot("c1").steps[0].status is StepStatus.pending)
            await rt.resume_run("c1", principal="alice")
            await until(lambda: gate.entered == 2)
            gate.release.set()
            assert (await handle.wait()).status is RunStatus.completed
            root, children = traces.tree()
            assert [(attrs(s)["step_id"], attrs(s)["attempt"], attrs(s)["outcome"])
                    for s in children] == [("slow", 1, "canceled"), ("slow", 2, "completed"),
                                           ("next", 1, "completed")]  # fmt: skip
            assert events(root) == [
                ("interrupt", {"reason": "user pressed stop", "principal": "alice"}),
                ("resume", {"principal": "alice"}),
            ]
            traces.exporter.clear()
            gate.release.clear()
            gate.entered = 0
            second = await rt.run("c2", None, mode="p", principal="bob")
            await until(lambda: gate.entered == 1)
            await rt.cancel_run("c2", principal="bob", reason="not needed")
            assert (await second.wait()).status is RunStatus.canceled
            root, children = traces.tree()
            assert attrs(root)["outcome"] == "canceled"
            assert events(root) == [("cancel", {"reason": "not needed", "principal": "bob"})]
            assert [(attrs(s)["step_id"], attrs(s)["outcome"]) for s in children] == [
                ("slow", "open")
            ]
            assert children[0].end_time == root.end_time
            gate.release.set()

    arun(scenario())


def _asks(rt: Runtime) -> bool:
    step = rt.snapshot("c1").step("ask")
    return step is not None and step.status is StepStatus.waiting_input


def _child(db: Path, side: Path, conversation: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    proc = subprocess.Popen(
        [sys.executable, str(OWNER_CHILD), str(db), str(side), conversation, "1.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline().split()
    assert ready and ready[0] == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def test_obs_3_interrupted_in_one_process_resumed_in_another_is_one_trace(
    tmp_path: Path, traces: Traces
) -> None:
    """OBS-3, 3.4.2 across processes: a run started in another process and interrupted there
    (this process's request, delivered to its owner), that process then killed, is resumed and
    finished here: one trace, emitted here, holding the other process's attempt (`canceled`),
    the interrupt with its principal, the takeover with both owners, the resume and the
    gate's answer, at their journaled times."""
    db, side = tmp_path / "j.db", tmp_path / "side"
    proc = _child(db, side, "c1")
    try:

        async def scenario() -> None:
            async with Runtime(
                db, modes=[OWNED], tools={"work": side_tool(str(side))}, lease=1.0,
                tracer_provider=traces.provider,
            ) as rt:  # fmt: skip
                owner = rt.owner("c1")
                assert owner is not None and owner.owner_id != rt.owner_id
                snapshot = await rt.interrupt_run("c1", "stop here", principal=None)
                assert snapshot.status is RunStatus.interrupted
                while rt.snapshot("c1").steps[0].status is StepStatus.cancelling:
                    await asyncio.sleep(0.01)
                proc.kill()
                proc.wait(timeout=20)
                await rt.resume_run("c1")
                await until(lambda: _asks(rt), 10)
                await rt.provide_input("c1", "c1-r", "ask", "yes")
                final = await rt.wait("c1", "c1-r", until="terminal")
                assert final.status is RunStatus.completed
                root, children = traces.tree()
                assert [
                    (attrs(s)["step_id"], attrs(s)["attempt"], attrs(s)["outcome"])
                    for s in children
                ] == [
                    ("slow", 1, "canceled"),
                    ("slow", 2, "completed"),
                    ("ask", 1, "completed"),
                    ("last", 1, "completed"),
                ]
                names = [name for name, _ in events(root)]
                # the resume is stamped when asked, then routing it takes the conversation over
                assert names == ["interrupt", "resume", "takeover", "human_input"]
                takeover = dict(events(root))["takeover"]
                assert takeover["owner"] == rt.owner_id
                assert takeover["previous_owner"] == owner.owner_id
                assert dict(events(root))["interrupt"] == {"reason": "stop here"}

        arun(scenario(), timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)


def test_obs_4_recovery_and_replay_never_emit_a_span_again(tmp_path: Path, traces: Traces) -> None:
    """OBS-4: a process SIGKILLed mid-step leaves its run to the next runtime, which journals the
    lost effect, takes the conversation over, finishes the run and emits its one trace (with
    the `effect_lost` and `takeover` events, and the lost attempt's span, outcome `lost`).
    Opening the journal again (restore, replay) and running another run emits that run's trace
    alone: no span of history is ever emitted twice."""
    db, side = tmp_path / "j.db", tmp_path / "side"
    proc = _child(db, side, "c1")
    proc.kill()
    proc.wait(timeout=20)

    async def first() -> None:
        async with Runtime(
            db, modes=[OWNED], tools={"work": side_tool(str(side))}, tracer_provider=traces.provider
        ) as rt:
            await until(lambda: _asks(rt), 10)
            await rt.provide_input("c1", "c1-r", "ask", "yes")
            await rt.wait("c1", "c1-r", until="terminal")

    arun(first(), timeout=30)
    root, children = traces.tree()
    assert [(attrs(s)["step_id"], attrs(s)["attempt"], attrs(s)["outcome"]) for s in children][
        :2
    ] == [("slow", 1, "lost"), ("slow", 2, "completed")]
    marks = dict(events(root))
    assert marks["effect_lost"] == {"step_id": "slow", "attempt": 1, "reason": "process_restart"}
    assert marks["takeover"]["reason"] == "owner_gone"  # its pid is dead on this host
    assert len(traces.spans()) == 5
    traces.exporter.clear()

    async def again() -> None:
        for _ in range(2):
            async with Runtime(db, modes=[OWNED], tracer_provider=traces.provider) as rt:
                assert rt.snapshot("c1").status is RunStatus.completed
        assert traces.spans() == []
        gate_free = pipeline("quick", [system_step("one", "one")])
        async with Runtime(
            db, modes=[OWNED, gate_free], functions={"one": lambda: 1},
            tracer_provider=traces.provider,
        ) as rt:  # fmt: skip
            await (await rt.run("c1", None, mode="quick", run_id="c1-q")).wait()

    arun(again())
    root, children = traces.tree()
    assert attrs(root)["run_id"] == "c1-q" and len(children) == 1


def test_obs_5_the_host_provider_is_used_as_configured_and_never_replaced(
    tmp_path: Path, traces: Traces, caplog: pytest.LogCaptureFixture
) -> None:
    """OBS-5: a runtime given a provider emits to it and leaves the global provider as it was;
    a provider that fails is logged on `interruptible.tracing` and the run is not disturbed;
    without tracing nothing is emitted."""
    before = trace.get_tracer_provider()
    mode = pipeline("p", [system_step("one", "one")])

    class Broken:
        def get_tracer(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("exporter down")

    async def scenario() -> None:
        async with Runtime(
            tmp_path / "a.db", modes=[mode], functions={"one": lambda: 1},
            tracer_provider=traces.provider,
        ) as rt:  # fmt: skip
            await (await rt.run("c1", None, mode="p")).wait()
            assert rt.tracer is not None and rt.tracer.emitted == 1
        async with Runtime(
            tmp_path / "b.db", modes=[mode], functions={"one": lambda: 1},
            tracer_provider=Broken(),
        ) as rt:  # fmt: skip
            with caplog.at_level(logging.ERROR, "interruptible.tracing"):
                final = await (await rt.run("c1", None, mode="p")).wait()
            assert final.status is RunStatus.completed
            assert rt.snapshot("c1").status is RunStatus.completed
        async with Runtime(tmp_path / "c.db", modes=[mode], functions={"one": lambda: 1}) as rt:
            assert rt.tracer is None
            await (await rt.run("c1", None, mode="p")).wait()

    arun(scenario())
    assert len(traces.spans()) == 2
    assert trace.get_tracer_provider() is before
    assert any("was not emitted" in record.getMessage() for record in caplog.records)


GLOBAL_SCRIPT = """
import asyncio, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import interruptible
from interruptible import Runtime, Sequence, StepClass, StepDefinition

async def main():
    mode = Sequence("p", (StepDefinition("one", StepClass.system, {"name": "one"}),))
    async with Runtime("memory", modes=[mode], functions={"one": lambda: 1}, tracing=True) as rt:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # the application's, set after the runtime opened
        await (await rt.run("c", None, mode="p")).wait()
        print(len(exporter.get_finished_spans()), trace.get_tracer_provider() is provider)

asyncio.run(main())
"""


def test_obs_5_tracing_on_uses_the_global_provider_at_emission_and_import_stays_light() -> None:
    """OBS-5: `tracing=True` without a provider emits to the global provider the application
    set, looked up when the trace is emitted (set after the runtime opened here); and
    `import interruptible` (and its runtime) imports no `opentelemetry` module."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "True"]
    check = (
        "import sys, interruptible; from interruptible import Runtime, follow; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    light = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=60
    )
    assert light.returncode == 0, light.stderr
    assert light.stdout.strip() == "[]"


def test_obs_3_the_worker_that_ends_a_run_emits_its_trace() -> None:
    """OBS-3 on workers: a run a client sends to a worker (`role="worker"`, PostgreSQL) is
    emitted once, by that worker, when it ends; a second worker opened on the journal
    afterwards emits nothing."""
    from interruptible._journal import PostgresJournal
    from tests.workers.app import MODES, TOOLS

    dsn = POSTGRES.require()
    schema = POSTGRES.new_schema()
    traces = Traces()
    journals: list[PostgresJournal] = []

    def journal() -> PostgresJournal:
        journals.append(PostgresJournal(dsn, schema=schema))
        return journals[-1]

    async def scenario() -> None:
        async with Runtime(
            journal(), modes=MODES, tools=TOOLS, role="worker", tracer_provider=traces.provider
        ):
            async with Runtime(journal(), modes=MODES, role="client") as client:
                handle = await client.run("w1", None, mode="ten", principal="alice")
                final = await client.wait("w1", handle.run_id, until="terminal")
                assert final.status is RunStatus.completed
            await until(lambda: len(traces.spans()) == 11, 10)
        root, children = traces.tree()
        assert attrs(root)["conversation_id"] == "w1" and len(children) == 10
        traces.exporter.clear()
        async with Runtime(
            journal(), modes=MODES, tools=TOOLS, role="worker", tracer_provider=traces.provider
        ):
            await asyncio.sleep(0.3)
        assert traces.spans() == []

    try:
        arun(scenario(), timeout=60)
    finally:
        for opened in journals:
            opened.close()
        traces.provider.shutdown()
        POSTGRES.drop_schema(schema)


def shape(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """What a trace says, without its ids: names, parents' names, times, attributes, events."""
    names = {span.context.span_id: span.name for span in spans if span.context is not None}
    return [
        (
            span.name,
            None if span.parent is None else names[span.parent.span_id],
            span.start_time,
            span.end_time,
            attrs(span),
            events(span),
            span.status.status_code,
        )
        for span in spans
    ]


def test_obs_1_the_trace_of_committed_events_is_the_trace_read_back_from_the_journal(
    tmp_path: Path, traces: Traces
) -> None:
    """OBS-1: a run this process saw start is traced from the events its writer committed (not
    read back); the same run traced from the journal alone (a tracer that saw nothing, as in
    another process) is the same trace: the same spans, times, attributes and events."""

    def flaky() -> None:
        raise EffectError(FailureCategory.transient, "try again")

    mode = pipeline("p", [system_step("one", "ok"), tool_step("flaky", "flaky", FAST_RETRY)])
    db = tmp_path / "j.db"

    async def traced_here() -> tuple[EmitOutput, Any]:
        async with Runtime(
            db, modes=[mode], tools={"flaky": flaky}, functions={"ok": lambda: 1},
            tracer_provider=traces.provider,
        ) as rt:  # fmt: skip
            handle = await rt.run("c1", None, mode="p", principal="alice")
            assert (await handle.wait()).status is RunStatus.failed
            assert rt.tracer is not None and (rt.tracer.emitted, rt.tracer.read_back) == (1, 0)
            stream = rt.subscribe("c1", after=0)
            async for item in stream:
                if isinstance(item.directive, EmitOutput):
                    stream.close()
                    return item.directive, rt.state("c1").run(handle.run_id)
        raise AssertionError("no output")

    output, run = arun(traced_here())
    here = shape(traces.spans())
    again = Traces()
    tracer = RunTracer(again.provider)
    journal = SQLiteJournal(db, readonly=True)
    try:
        tracer.settled(journal, Coordinator([mode]), "c1", output, run)
    finally:
        journal.close()
    assert (tracer.emitted, tracer.read_back) == (1, 1)
    assert shape(again.spans()) == here
    assert len(here) == 4
