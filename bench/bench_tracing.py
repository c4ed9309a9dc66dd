"""What tracing costs a run, against the same run untraced, in the same process run.

    .venv/bin/python bench/bench_tracing.py [--quick]

A 1,000-step run of trivial steps, per step, with tracing on (the OpenTelemetry SDK's
`TracerProvider`, a `SimpleSpanProcessor` and an exporter that drops every span: the whole cost
of building and ending the spans, exported on the loop) against tracing off, under
synchronous=FULL (the default) and NORMAL. Off and on alternate in rounds (the disk's fsync time
drifts), and the median of the rounds' ratios is kept. Then the emission alone (building the
trace of the 1,000-step run from its journal), and `import interruptible` with the
opentelemetry packages importable and with them hidden (as if the `otel` extra were not
installed): the same modules, the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from interruptible import Sequence, StepClass, StepDefinition
from interruptible._journal import SQLiteJournal
from interruptible._runtime import Runtime

ROWS: list[tuple[str, str, str, str]] = []


def report(name: str, measured: str, goal: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    ROWS.append((name, measured, goal, verdict))
    print(f"{name:<44} {measured:<52} {goal:<10} {verdict}", flush=True)


class Dropping(SpanExporter):
    """An exporter that drops every span: what remains is the cost of making them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Seq[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def trivial_mode(steps: int) -> Sequence:
    return Sequence(
        "trivial",
        tuple(
            StepDefinition(f"s{i}", StepClass.system, {"name": "noop", "arguments": {}})
            for i in range(steps)
        ),
    )


def fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


async def one_run(path: Path, synchronous: str, steps: int, provider: Any) -> tuple[float, float]:
    """Microseconds per step of one run (from the request to the settled snapshot, the trace
    emitted in between when traced), and the milliseconds the emission took."""
    mode = trivial_mode(steps)
    journal = SQLiteJournal(path, synchronous=synchronous)
    emission = 0.0
    try:
        async with Runtime(
            journal, modes=[mode], functions={"noop": lambda: None}, tracer_provider=provider
        ) as rt:
            if rt.tracer is not None:
                settled = rt.tracer.settled

                def timed(*args: Any) -> None:
                    nonlocal emission
                    started = time.perf_counter()
                    settled(*args)
                    emission = time.perf_counter() - started

                rt.tracer.settled = timed  # type: ignore[method-assign]
            gc.collect()
            started = time.perf_counter()
            handle = await rt.run("c", None, mode=mode.name)
            final = await handle.wait()
            elapsed = time.perf_counter() - started
            assert final.status.value == "completed", final
            if rt.tracer is not None:
                assert rt.tracer.emitted == 1
    finally:
        journal.close()
    return elapsed / steps * 1e6, emission * 1e3


def sdk_floor_us(provider: TracerProvider, spans: int) -> float:
    """Microseconds per span of the SDK alone: a parent and `spans` children with a step span's
    attributes and explicit times, ended at once (what one attempt's span cannot cost less than)."""
    from opentelemetry import trace

    tracer = provider.get_tracer("floor")
    keys = ("conversation_id", "run_id", "step_id", "step_class", "idempotency_key", "effect_id")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        root = tracer.start_span("run", start_time=1)
        context = trace.set_span_in_context(root)
        for i in range(spans):
            attributes: dict[str, Any] = {f"interruptible.{key}": f"{key}-{i}" for key in keys}
            attributes["interruptible.attempt"] = 1
            attributes["interruptible.outcome"] = "completed"
            span = tracer.start_span("step", context=context, start_time=i, attributes=attributes)
            span.end(end_time=i + 1)
        root.end(end_time=spans + 1)
        best = min(best, (time.perf_counter() - started) / spans * 1e6)
    return best


def import_ms(hidden: bool, runs: int = 7) -> tuple[float, list[str]]:
    """Median wall time of `import interruptible` in a fresh interpreter, and the opentelemetry
    modules it imported; `hidden`: with opentelemetry made unimportable first."""
    hide = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'opentelemetry': raise ImportError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    code = (
        (hide if hidden else "import sys\n")
        + "import time; t = time.perf_counter(); import interruptible; "
        + "d = time.perf_counter() - t\n"
        + "print(d, *sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    times, modules = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        modules = out[1:]
    return statistics.median(times) * 1000, modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args(argv)
    steps = 200 if args.quick else 1000
    rounds = 3 if args.quick else 5
    exporter = Dropping()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    print(f"{'benchmark':<44} {'measured (vs the same run untraced)':<52} {'goal':<10} result")
    emissions: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for synchronous in ("FULL", "NORMAL"):
            ratios = []
            for r in range(rounds):
                off, _ = asyncio.run(
                    one_run(fresh(directory, f"off{r}.db"), synchronous, steps, None)
                )
                on, emitted = asyncio.run(
                    one_run(fresh(directory, f"on{r}.db"), synchronous, steps, provider)
                )
                emissions.append(emitted)
                ratios.append((on / off, on, off))
            ratio, on, off = sorted(ratios)[len(ratios) // 2]
            report(
                f"{steps}-step run, {synchronous}, per step",
                f"traced {on:.1f} us / untraced {off:.1f} us = {ratio:.2f}x",
                "<= 1.3x",
                ratio <= 1.3,
            )
    assert exporter.spans == 2 * rounds * (steps + 1), exporter.spans
    floor = sdk_floor_us(provider, steps)
    report(
        "the SDK alone, per span (the floor)",
        f"{floor:.1f} us per span (a NORMAL step above: {off:.1f} us)",
        "",
        None,
    )
    report(
        f"emitting the trace of a {steps}-step run",
        f"{statistics.median(emissions):.1f} ms ({statistics.median(emissions) * 1e3 / steps:.1f}"
        " us per span: the run's events, the SDK's spans)",
        "",
        None,
    )
    shown, shown_modules = import_ms(hidden=False)
    hidden, hidden_modules = import_ms(hidden=True)
    report(
        "import interruptible: otel importable / hidden",
        f"{shown:.1f} ms / {hidden:.1f} ms = {shown / hidden:.2f}x; otel modules: "
        f"{len(shown_modules)} / {len(hidden_modules)}",
        "none",
        not shown_modules and not hidden_modules,
    )
    misses = sum(row[3] == "MISS" for row in ROWS)
    print(f"\n{len(ROWS) - misses - sum(row[3] == '' for row in ROWS)} PASS, {misses} MISS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
