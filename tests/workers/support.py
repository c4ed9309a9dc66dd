"""Worker processes under test: `interruptible worker` subprocesses on a schema of their own
(spec/workers.md), and a client `Runtime` in this process to send them requests."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from interruptible._journal import PostgresJournal
from interruptible._runtime import Runtime
from tests._postgres import POSTGRES

ROOT = Path(__file__).resolve().parents[2]
APP_MODES = "tests.workers.app:MODES"
APP_TOOLS = "tests.workers.app:TOOLS"


class Worker:
    """One `interruptible worker` process; `owner_id` read from its first line."""

    def __init__(self, process: subprocess.Popen[str], owner_id: str) -> None:
        self.process = process
        self.owner_id = owner_id

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


class Workers:
    """Worker processes on one fresh schema of the test database."""

    def __init__(
        self,
        *,
        modes: Sequence[str] = (APP_MODES,),
        tools: Sequence[str] = (APP_TOOLS,),
        functions: Sequence[str] = (),
        lease: float = 2.0,
        limit: int = 100,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dsn = POSTGRES.require()
        self.schema = POSTGRES.new_schema()
        self.modes = list(modes)
        self.tools = list(tools)
        self.functions = list(functions)
        self.migrations: list[str] = []  # `--migrations` specs (spec/upgrades.md)
        self.options: list[str] = []  # any other options, as given (`--tracing`)
        self.lease = lease
        self.limit = limit
        self.env = dict(env or {})
        self.started: list[Worker] = []
        self.journals: list[PostgresJournal] = []
        # Create the schema here, once, before any worker races to.
        self.journal().close()

    def journal(self, **options: Any) -> PostgresJournal:
        """A journal of this schema (closed at the end)."""
        journal = PostgresJournal(self.dsn, schema=self.schema, **options)
        self.journals.append(journal)
        return journal

    def client(self, modes: Sequence[Any], **options: Any) -> Runtime:
        """A client runtime of this schema (spec/workers.md, WRK-5)."""
        return Runtime(self.journal(), modes=modes, role="client", **options)

    def start(self, count: int = 1, *, limit: int | None = None) -> list[Worker]:
        """Start `count` workers and wait until each has claimed its lease."""
        command = [
            sys.executable,
            "-m",
            "interruptible",
            "worker",
            "--dsn",
            self.dsn,
            "--schema",
            self.schema,
            "--lease",
            f"{self.lease:g}",
            "--limit",
            str(limit if limit is not None else self.limit),
        ]
        for spec in self.modes:
            command += ["--modes", spec]
        for spec in self.tools:
            command += ["--tools", spec]
        for spec in self.functions:
            command += ["--functions", spec]
        for spec in self.migrations:
            command += ["--migrations", spec]
        command += self.options
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        processes = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=None,
                text=True,
            )
            for _ in range(count)
        ]
        workers = [Worker(process, _first_line_owner(process)) for process in processes]
        self.started.extend(workers)
        return workers

    def stop(self, worker: Worker, timeout: float = 20.0) -> str:
        """SIGTERM the worker (it drains) and return the rest of what it printed."""
        worker.process.send_signal(signal.SIGTERM)
        out, _ = worker.process.communicate(timeout=timeout)
        assert worker.process.returncode == 0, f"worker {worker.owner_id} exited with " + str(
            worker.process.returncode
        )
        return out

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker: its lease ends only when it expires."""
        worker.process.kill()
        worker.process.wait(timeout=20)

    def close(self) -> None:
        for worker in self.started:
            if worker.alive():
                worker.process.kill()
                worker.process.wait(timeout=20)
            if worker.process.stdout is not None:
                worker.process.stdout.close()
        for journal in self.journals:
            journal.close()
        POSTGRES.drop_schema(self.schema)


def _first_line_owner(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The owner id a worker prints on its first line, once it has started."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = process.stdout.readline()
                if not line:
                    break
                if line.startswith("worker "):
                    return line.split()[1]
            if process.poll() is not None:
                break
    finally:
        selector.unregister(process.stdout)
    process.kill()
    raise AssertionError(f"worker {process.pid} did not start (exit {process.poll()})")


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Worker processes on a fresh schema (started by the test), stopped and dropped after."""
    pool = Workers()
    try:
        yield pool
    finally:
        pool.close()


def read_ledger(path: Path) -> list[tuple[str, str, int, int, float]]:
    """The executions `tests.workers.app.work` noted: (run, step, attempt, pid, time)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        run_id, step_id, attempt, pid, at = line.split()
        rows.append((run_id, step_id, int(attempt), int(pid), float(at)))
    return rows


def kept_ran_again(
    kept: dict[tuple[str, str, str], int], ledger: list[tuple[str, str, int, int, float]]
) -> list[str]:
    """Executions of a step after the attempt whose result was kept (RT-4), and attempts that
    ran twice (an effect is started once per journaled start)."""
    kept_by_run = {(run_id, step_id): attempt for (_cid, run_id, step_id), attempt in kept.items()}
    problems = []
    seen: set[tuple[str, str, int]] = set()
    for run_id, step_id, attempt, pid, _at in ledger:
        if (run_id, step_id, attempt) in seen:
            problems.append(f"{run_id}/{step_id} attempt {attempt} ran twice (pid {pid})")
        seen.add((run_id, step_id, attempt))
        kept_attempt = kept_by_run.get((run_id, step_id))
        if kept_attempt is not None and attempt > kept_attempt:
            problems.append(f"{run_id}/{step_id} ran attempt {attempt} after kept {kept_attempt}")
    return problems
