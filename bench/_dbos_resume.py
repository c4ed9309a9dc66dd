"""DBOS's cross-process resume latency on PostgreSQL, for the peers benchmark to print beside ours.

What is measured: a DBOS application process (the worker: this file run as a script) runs the
workflow `first step -> wait -> second step`. While it waits between the steps, the calling process
(acting as the client process) cancels it with `DBOSClient.cancel_workflow`; the worker's run stops
at its next step (DBOS raises `DBOSWorkflowCancelledError` there). Then the client calls
`DBOSClient(...).resume_workflow(workflow_id)`, and the latency is from `time.time()` taken by the
client just before that call to `time.time()` written by the second step as its first action once
it runs in the worker (one machine, one wall clock; the marks are small files in a temp dir).

How DBOS picks it up: `resume_workflow` sets the workflow ENQUEUED on DBOS's internal queue, which
the worker polls every `DEFAULT_QUEUE_POLLING_INTERVAL_SEC` (1.0 s, not configurable), so that poll
dominates the figure. The documented faster path is `resume_polling_sec`: the worker registers a
queue with `DBOS.register_queue(..., polling_interval_sec=...)` and the client resumes onto it with
`resume_workflow(workflow_id, queue_name=...)`. A random pause of up to one poll interval precedes
each resume so that the call does not phase-lock with the poll. Each sample is a fresh workflow,
enqueued by the client on a queue polled every 0.05 s (not part of the figure).

Run as `python bench/_dbos_resume.py [DSN] [SAMPLES] [RESUME_POLLING_SEC]` to print the figures.
"""

from __future__ import annotations

import importlib.metadata
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbos import EnqueueOptions

APP = "resume_bench"
WORKFLOW = "resume_bench_wf"
START_QUEUE = "resume_bench_start"
RESUME_QUEUE = "resume_bench_resume"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def dbos_available() -> str | None:
    """`"dbos X.Y.Z"`, or None when DBOS is not importable."""
    try:
        import dbos  # noqa: F401
    except ImportError:
        return None
    return f"dbos {importlib.metadata.version('dbos')}"


def _mark(marks: Path, wid: str, what: str, t: float) -> None:
    tmp = marks / f".{wid}.{what}.tmp"
    tmp.write_text(repr(t))
    os.replace(tmp, marks / f"{wid}.{what}")  # atomic: the reader never sees half a file


def _worker(system_url: str, marks: Path, resume_polling_sec: float | None) -> None:
    """The DBOS application process: launch, serve the queues until stdin closes, shut down."""
    from dbos import DBOS, DBOSConfig
    from dbos import error as dbos_error

    @DBOS.step(name="resume_bench_step")
    def step(wid: str, what: str) -> None:
        _mark(marks, wid, what, time.time())  # the step's first action: it has started

    @DBOS.workflow(name=WORKFLOW)
    def workflow() -> None:
        wid = DBOS.workflow_id or ""
        try:
            step(wid, "first")
            _mark(marks, wid, "waiting", time.time())  # the first step's output is recorded
            deadline = time.monotonic() + 600.0
            while not (marks / f"{wid}.gate").exists():  # the wait between the steps
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{wid}: gate never opened")
                time.sleep(0.001)
            step(wid, "second")
        except dbos_error.DBOSWorkflowCancelledError:
            _mark(marks, wid, "stopped", time.time())
            raise

    config: DBOSConfig = {"name": APP, "system_database_url": system_url, "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()
    try:
        DBOS.register_queue(START_QUEUE, polling_interval_sec=0.05)
        if resume_polling_sec is not None:
            DBOS.register_queue(RESUME_QUEUE, polling_interval_sec=resume_polling_sec)
        _mark(marks, "worker", "ready", time.time())
        sys.stdin.read()  # the client closes our stdin (or dies) to stop us
    finally:
        DBOS.destroy()


def _admin(dsn: str, sql: str) -> str:
    """Run one statement outside a transaction on the server's maintenance database."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.encode())
        v = conn.info.server_version
        return f"{v // 10000}.{v % 10000}"


def _wait(path: Path, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> float:
    """Poll for a mark file and return the time.time() written in it."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            exited = proc.returncode is not None
            why = "worker exited" if exited else f"no {path.name} after {timeout} s"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"DBOS resume bench: {why}; worker log tail:\n{tail}")
        time.sleep(0.0005)
    return float(path.read_text())


def _options(wid: str) -> EnqueueOptions:
    return {"workflow_name": WORKFLOW, "queue_name": START_QUEUE, "workflow_id": wid}


def measure_dbos_resume(
    dsn: str,
    samples: int = 20,
    timeout: float = 60.0,
    *,
    resume_polling_sec: float | None = None,
) -> tuple[list[float], str]:
    """Seconds from `DBOSClient.resume_workflow` in this process to the resumed workflow's next
    step starting in a separate DBOS worker process, `samples` times, and a one-line description.

    `dsn` names a PostgreSQL server (any database on it): a fresh database is created there for
    DBOS's system tables and dropped afterwards. `timeout` bounds each wait (the worker's start, a
    step, a stop). `resume_polling_sec=None` keeps DBOS's default path (the internal queue, polled
    every 1.0 s); a number resumes onto a queue registered with that `polling_interval_sec`.
    """
    import sqlalchemy as sa
    from dbos import DBOSClient

    try:
        from dbos._queue import DEFAULT_QUEUE_POLLING_INTERVAL_SEC as default_poll
    except ImportError:  # private name; 1.0 s is the value DBOS 3.x documents
        default_poll = 1.0
    poll = default_poll if resume_polling_sec is None else resume_polling_sec
    db_name = f"dbos_resume_{secrets.token_hex(6)}"
    url = sa.make_url(dsn)
    system_url = url.set(database=db_name).render_as_string(hide_password=False)
    rng = random.Random()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dbos_resume_") as tmp:
        marks, log = Path(tmp), Path(tmp) / "worker.log"
        pg_version = _admin(dsn, f'CREATE DATABASE "{db_name}"')
        try:
            with log.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--worker", system_url, tmp]
                    + ([] if resume_polling_sec is None else [repr(resume_polling_sec)]),
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait(marks / "worker.ready", timeout, proc, log)
                client = DBOSClient(system_database_url=system_url, application_name=APP)
                try:
                    for i in range(samples):
                        wid = f"resume-{i}-{secrets.token_hex(4)}"
                        client.enqueue(_options(wid))
                        _wait(marks / f"{wid}.waiting", timeout, proc, log)
                        client.cancel_workflow(wid)  # while it waits between the steps
                        (marks / f"{wid}.gate").touch()  # let it reach its next step and stop
                        _wait(marks / f"{wid}.stopped", timeout, proc, log)
                        time.sleep(rng.uniform(0.0, poll))  # a random phase against the poll
                        queue = None if resume_polling_sec is None else RESUME_QUEUE
                        t0 = time.time()
                        client.resume_workflow(wid, queue_name=queue)
                        latencies.append(_wait(marks / f"{wid}.second", timeout, proc, log) - t0)
                finally:
                    client.destroy()
            finally:
                if proc.stdin is not None:
                    proc.stdin.close()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            _admin(dsn, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    path = (
        "default internal queue"
        if resume_polling_sec is None
        else f"queue_name={RESUME_QUEUE!r} (register_queue polling_interval_sec)"
    )
    info = (
        f"{dbos_available()} on PostgreSQL {pg_version}: worker subprocess, DBOSClient in caller;"
        f" cancel while waiting between steps, then resume_workflow -> {path}"
        f" polled every {poll:g} s{' (DBOS default)' if resume_polling_sec is None else ''};"
        f" {len(latencies)} samples, each after a random 0-{poll:g} s pause"
    )
    return latencies, info


def _main(argv: list[str]) -> None:
    if argv[:1] == ["--worker"]:
        _worker(argv[1], Path(argv[2]), float(argv[3]) if len(argv) > 3 else None)
        return
    dsn = argv[0] if argv else DEFAULT_DSN
    samples = int(argv[1]) if len(argv) > 1 else 20
    polling = float(argv[2]) if len(argv) > 2 else None
    if dbos_available() is None:
        print("dbos is not installed: pip install -e '.[bench]'")
        return
    lat, info = measure_dbos_resume(dsn, samples, resume_polling_sec=polling)
    ordered = sorted(lat)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(info)
    print(
        f"resume latency: median {statistics.median(lat) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms,"
        f" min {ordered[0] * 1e3:.1f} ms, max {ordered[-1] * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
