"""`interruptible worker --tracing`: a worker process emits the trace of each run that ends there
through the global tracer provider its process configured (spec/observability.md)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from interruptible import RunStatus
from tests.runtime.support import arun
from tests.workers.app import MODES
from tests.workers.support import ROOT, Workers

# What `opentelemetry-instrument` would do: configure the global provider at start-up (here with
# an exporter that writes each finished span's name to a file).
SITECUSTOMIZE = """
import os
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

_out = open(os.environ["INTERRUPTIBLE_TEST_SPANS"], "a", encoding="utf-8")
_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(ConsoleSpanExporter(out=_out, formatter=lambda span: span.name + "\\n"))
)
trace.set_tracer_provider(_provider)
"""


def test_obs_5_a_worker_with_tracing_emits_through_the_providers_its_process_configured(
    tmp_path: Path,
) -> None:
    """OBS-5, OBS-1: `--tracing` uses the global provider the worker's process configured: the
    run that ends on the worker is one `run ten` span with a span per step attempt."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    spans = tmp_path / "spans.txt"
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "INTERRUPTIBLE_TEST_SPANS": str(spans),
    }
    workers = Workers(env=env)
    workers.options = ["--tracing"]
    try:
        workers.start()

        async def scenario() -> RunStatus:
            async with workers.client(MODES) as rt:
                handle = await rt.run("c", None, mode="ten", run_id="r")
                return (await handle.wait("terminal")).status

        assert arun(scenario(), timeout=60) is RunStatus.completed
        for _ in range(200):  # the trace is emitted right after the run's end is committed
            if spans.exists() and "run ten" in spans.read_text():
                break
            time.sleep(0.05)
        lines = spans.read_text().splitlines()
        assert lines.count("run ten") == 1
        assert sorted(line for line in lines if line.startswith("step ")) == sorted(
            f"step s{n}" for n in range(1, 11)
        )
    finally:
        workers.close()
