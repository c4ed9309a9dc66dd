"""Worker processes sharing a PostgreSQL journal (spec/workers.md): throughput and latencies.

One command, one run; every figure beside a floor measured in the same run on the same server.

    .venv/bin/python bench/bench_workers.py [--quick]

1. Throughput by worker count: 1, 2 and 4 `interruptible worker` processes (`--lease 2 --limit
   100`, a fresh schema each) drive runs of mode `ten` (ten `tool` steps of tests/workers/app.py,
   instant: INTERRUPTIBLE_TEST_STEP_SECONDS=0). A client runtime in this process queues the runs
   first (`Runtime(role="client").run`, one waiting for its acceptance at a time, then let go:
   its request stays queued in the journal), then the workers start and drain them; completed
   steps per second from the first claim to the last step's completion, both read from the
   journal (the owner history's `taken_at`, the `effect_completed` events' `at`). Queuing
   first measures the workers, not one client's submissions (one synced commit each; printed).
   Printed: the rates, the scaling 2w/1w (goal >= 1.5x) and 4w/1w, and beside them the floor of
   the scaling this machine allows in this run: 1, 2 and 4 processes of CPU-only Python at once
   (the workers and PostgreSQL share these CPUs), and where the CPU went. 3 rounds, medians.
2. Cross-process interrupt latency: a run of `hold` (one step that waits until cancelled,
   bench/_workers_app.py) on one of 2 workers; from the `interrupt_run` call in this process to
   its answer here (the owner journals the interruption and the answer in one transaction; the
   answer's NOTIFY wakes this client), then resumed and interrupted again: median and p99 (goal
   p99 < 20 ms). Floor, sampled between the commands: the least such a command costs, two
   synced commits (the client's submission, the owner's write) and two NOTIFY -> LISTEN wakes,
   from a bare INSERT + COMMIT and a bare NOTIFY between two connections of this process.
3. Takeover: with 2 workers, the worker that owns a `hold` run is killed (SIGKILL); time from
   the kill until the other worker has claimed the conversation (its claim's `taken_at` in the
   owner history), goal within the lease + 1 s. Floor: what was left of the killed worker's
   lease at the kill (nobody may claim before it ends). The same after SIGTERM (a drain: the
   release notifies the other workers at once), goal under 0.5 s; floor: a NOTIFY wake and a
   synced commit. Kills and drains alternate, and a fresh worker replaces each one.
4. Resume from another process against DBOS: from `resume_run` in this process to its answer
   (the run is running again on a worker; the samples of 2), and to the resumed step's first
   action in the worker (its mark, the point `_dbos_resume.py` times for DBOS); beside it DBOS's
   `DBOSClient.resume_workflow` to the resumed workflow's next step in a DBOS worker process
   (bench/_dbos_resume.py): its default path (goal: ours at least 10x faster, medians), and a
   queue polled every 0.05 s (for reference). Without DBOS (pip install -e '.[bench]') it says
   so and skips only that comparison.

It needs a PostgreSQL server: `INTERRUPTIBLE_BENCH_POSTGRES` (a libpq connection string of a
user that may create databases; default: 127.0.0.1:5432, user postgres). It creates a database
with a random name and drops it at the end, and stops every worker it started, whatever happens
(SIGTERM included); with no server it says so and exits 0. Like every bench it exits 0: a MISS is
a finding.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "bench"
ADMIN_DSN = os.environ.get(
    "INTERRUPTIBLE_BENCH_POSTGRES",
    "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3",
)
LEASE = 2.0  # the workers' lease (seconds): a killed worker's runs move after it
LIMIT = 100  # live conversations per worker
APP_MODES = "tests.workers.app:MODES"
APP_TOOLS = "tests.workers.app:TOOLS"
HOLD_MODES = "_workers_app:MODES"
HOLD_TOOLS = "_workers_app:TOOLS"
MARKS_ENV = "INTERRUPTIBLE_BENCH_MARKS"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ROWS: list[tuple[str, str, str, str]] = []


def report(name: str, measured: str, goal: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    ROWS.append((name, measured, goal, verdict))
    print(f"{name:<44} {measured:<56} {goal:<22} {verdict}", flush=True)


def note(text: str) -> None:
    print(f"    {text}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def spread(values: list[float]) -> str:
    """`median X ms, p99 Y ms` of seconds."""
    return f"median {ms(statistics.median(values))}, p99 {ms(percentile(values, 0.99))}"


def load_modes() -> list[Any]:
    """The modes the workers run, for the client: `ten` (tests/workers/app.py) and `hold`."""
    import importlib

    for path in (str(ROOT), str(HERE)):
        if path not in sys.path:
            sys.path.append(path)
    app = importlib.import_module("tests.workers.app")
    hold = importlib.import_module("_workers_app")
    return [*app.MODES, *hold.MODES]


# --- worker processes ---------------------------------------------------------------------------


class Worker:
    """One `interruptible worker` process; `owner_id` read from its first line."""

    def __init__(self, process: subprocess.Popen[str], owner_id: str, log: Path) -> None:
        self.process = process
        self.owner_id = owner_id
        self.log = log

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.process.pid)


class Pool:
    """Worker processes on one schema; `close` ends every one still running (SIGKILL)."""

    def __init__(self, dsn: str, schema: str, logs: Path, *, marks: Path | None = None) -> None:
        from interruptible._journal import PostgresJournal

        self.dsn = dsn
        self.schema = schema
        self.logs = logs
        PostgresJournal(dsn, schema=schema).close()  # made once, before the workers race to
        path = os.pathsep.join(
            [str(ROOT / "src"), str(HERE)]
            + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        )
        self.env = {
            **os.environ,
            "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1",
            "INTERRUPTIBLE_TEST_STEP_SECONDS": "0",
        }
        if marks is not None:
            self.env[MARKS_ENV] = str(marks)
        self.workers: list[Worker] = []

    def start(self, count: int) -> list[Worker]:
        """Start `count` workers at once; return when each has printed its first line."""
        command = [
            sys.executable,
            "-m",
            "interruptible",
            "worker",
            "--dsn",
            self.dsn,
            "--schema",
            self.schema,
            "--modes",
            APP_MODES,
            "--modes",
            HOLD_MODES,
            "--tools",
            APP_TOOLS,
            "--tools",
            HOLD_TOOLS,
            "--lease",
            f"{LEASE:g}",
            "--limit",
            str(LIMIT),
        ]
        started: list[tuple[subprocess.Popen[str], Path]] = []
        for _ in range(count):
            log = self.logs / f"{self.schema}-{len(self.workers) + len(started)}.log"
            with log.open("w") as stderr:
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            started.append((process, log))
        fresh = []
        for process, log in started:
            worker = Worker(process, "", log)
            self.workers.append(worker)  # closed by `close` even if it never starts
            worker.owner_id = first_line_owner(process, log)
            fresh.append(worker)
        return fresh

    def by_owner(self, owner_id: str) -> Worker:
        for worker in self.workers:
            if worker.owner_id == owner_id:
                return worker
        raise RuntimeError(f"no worker of this bench is owner {owner_id}")

    def drain(self, worker: Worker, timeout: float = 10.0) -> int | None:
        """SIGTERM the worker (it drains); its exit status, or None (and SIGKILL) when it has not
        exited within `timeout` seconds."""
        worker.process.send_signal(signal.SIGTERM)
        return exit_status(worker, timeout)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=30)
            if worker.process.stdout is not None:
                worker.process.stdout.close()


def exit_status(worker: Worker, timeout: float = 10.0) -> int | None:
    """The worker's exit status; None, and SIGKILL, when it has not exited in `timeout` s."""
    try:
        worker.process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.communicate()
        return None
    return worker.process.returncode


def exits(codes: list[int | None]) -> str:
    """`exit 0` or what else the drained workers did."""
    if all(code == 0 for code in codes):
        return "every one exited 0"
    return "exits " + ", ".join("none within 10 s (killed)" if c is None else str(c) for c in codes)


def first_line_owner(process: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> str:
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
        selector.close()
    process.kill()
    process.wait()
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"a worker did not start (exit {process.returncode}); its stderr:\n{tail}")


# --- CPU accounting (Linux /proc) ---------------------------------------------------------------


def proc_cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def server_cpu_seconds() -> float:
    """CPU seconds of every live `postgres` process on this machine (0 if none can be read)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += proc_cpu_seconds(entry.name)
    return total


CPU_PROBE = """
import sys, time
start, duration = float(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    time.sleep(0.0005)
n, end = 0, start + duration
while time.time() < end:
    sum(range(400))
    n += 1
print(n)
"""


def cpu_ceiling(processes: int, seconds: float) -> float:
    """Loops per second of `processes` CPU-only Python processes running at once."""
    start = time.time() + 0.3 + 0.05 * processes  # after every one has started
    probes = [
        subprocess.Popen(
            [sys.executable, "-c", CPU_PROBE, repr(start), repr(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    total = 0
    for probe in probes:
        out, _ = probe.communicate(timeout=60)
        total += int(out)
    return total / seconds


# --- floors: a bare round trip, a bare synced commit, a bare NOTIFY -> LISTEN wake ---------------


class Floors:
    """Bare PostgreSQL operations of this process, sampled between the measured commands."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.round_trips: list[float] = []
        self.commits: list[float] = []
        self.wakes: list[float] = []
        self._conn: Any = None
        self._key = ""
        self._listener: Any = None
        self._heard: asyncio.Queue[str] | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self.dsn, autocommit=True)
        self._conn.execute(b"SET synchronous_commit TO on")
        self._conn.execute(
            b"CREATE TABLE IF NOT EXISTS bare_commit (k text, n bigint, body text, "
            b"PRIMARY KEY (k, n))"
        )
        self._key = secrets.token_hex(4)
        self._listener = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await self._listener.execute(b"LISTEN bench_floor")
        self._heard = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        assert self._heard is not None
        async for message in self._listener.notifies():
            self._heard.put_nowait(message.payload)

    async def sample(self) -> None:
        """One of each: a SELECT 1, an INSERT + COMMIT of a record-sized row, a NOTIFY heard."""
        assert self._heard is not None
        clock = time.perf_counter
        conn = self._conn
        start = clock()
        conn.execute(b"SELECT 1").fetchone()
        self.round_trips.append(clock() - start)
        n = len(self.commits)
        start = clock()
        conn.execute(b"INSERT INTO bare_commit VALUES (%s, %s, %s)", (self._key, n, "x" * 300))
        self.commits.append(clock() - start)
        payload = str(n)
        start = clock()
        conn.execute(b"SELECT pg_notify('bench_floor', %s)", (payload,))
        while await self._heard.get() != payload:
            pass
        self.wakes.append(clock() - start)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()
        if self._conn is not None:
            self._conn.close()

    def path(self) -> list[float]:
        """Per sample: two synced commits and two wakes (the least a cross-process command
        costs: the sender's commit, the owner's, a wake each way)."""
        return [2 * c + 2 * w for c, w in zip(self.commits, self.wakes, strict=True)]


# --- a client runtime, closed even where its close hangs ------------------------------------------

# Where `Runtime.close()` of a client did not return in `CLOSE_WAIT` seconds (a regression: the
# runtime once lost a cancellation in `asyncio.wait_for` on Python 3.11, and the task that
# `close` cancels went on for ever). The bench gets it out with a second cancel, counts it, and
# says so at the end.
CLOSE_WAIT = 5.0
STUCK: list[str] = []


@contextlib.asynccontextmanager
async def client(journal: Any, modes: list[Any]) -> AsyncIterator[Any]:
    """A started client `Runtime` on `journal`; closed at the end (see `STUCK`)."""
    from interruptible._runtime import Runtime

    rt = Runtime(journal, modes=modes, role="client")
    await rt.start()
    try:
        yield rt
    finally:
        closing = asyncio.ensure_future(rt.close())
        await stop_task(closing, "Runtime.close() of a client")


async def stop_task(
    task: asyncio.Future[Any], what: str, *, cancel: bool = False, wait: float = CLOSE_WAIT
) -> None:
    """Wait for `task` (cancelled first when `cancel`); cancel it again while it will not end."""
    if cancel:
        task.cancel()
    for _ in range(5):
        done, _pending = await asyncio.wait({task}, timeout=wait)
        if done:
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
            return
        STUCK.append(what)
        task.cancel()
    raise RuntimeError(f"{what} would not end")


# --- 1. throughput ------------------------------------------------------------------------------


async def submit_backlog(journal: Any, modes: list[Any], runs: int) -> float:
    """Submit `runs` runs of `ten` from a client runtime, none awaited to its acceptance (no
    worker runs yet: each request stays queued in the journal until one claims it); seconds
    per submission."""
    async with client(journal, modes) as rt:
        elapsed = 0.0
        for i in range(runs):
            start = time.perf_counter()
            call = asyncio.ensure_future(rt.run(f"c{i}", None, mode="ten", run_id=f"r{i}"))
            await asyncio.sleep(0)  # it submits (one commit), looks for its answer, waits
            elapsed += time.perf_counter() - start
            # One waiter at a time (the command stays queued): cancelled, not awaited.
            await stop_task(call, "a cancelled Runtime.run", cancel=True, wait=0.5)
        if journal.last_command_id() != runs:
            raise RuntimeError(f"{journal.last_command_id()} runs submitted of {runs}")
    return elapsed / runs


WORK_LEFT = (
    "SELECT EXISTS (SELECT 1 FROM {s}.commands WHERE NOT answered) "
    "OR EXISTS (SELECT 1 FROM {s}.conversations WHERE active)"
)
WINDOW = (
    "SELECT (SELECT min(taken_at) FROM {s}.owners), "
    "max((body->>'at')::float8), count(*) FROM {s}.events WHERE type = 'effect_completed'"
)


class Throughput:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.rate = 0.0
        self.elapsed = 0.0  # from the first claim to the last step's completion
        self.submit = 0.0  # seconds per submission, one client
        self.busy = 0.0  # seconds CPU measured over
        self.worker_cpu = 0.0
        self.server_cpu = 0.0
        self.exits: list[int | None] = []
        self.skew = 0.0  # between the workers' first claims


def throughput(
    dsn: str, logs: Path, modes: list[Any], workers: int, runs: int, round_: int
) -> Throughput:
    """Steps/s of `workers` workers draining a backlog of `runs` runs of `ten`."""
    import psycopg

    from interruptible._journal import PostgresJournal

    result = Throughput(workers)
    schema = f"bench_steps_{workers}w_{round_}"
    pool = Pool(dsn, schema, logs)
    try:
        journal = PostgresJournal(dsn, schema=schema)
        try:
            result.submit = asyncio.run(submit_backlog(journal, modes, runs))
        finally:
            journal.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = pool.start(workers)
            cpu = sum(w.cpu_seconds() for w in started)
            server = server_cpu_seconds()
            wall = time.perf_counter()
            left = WORK_LEFT.format(s=schema).encode()
            while conn.execute(left).fetchone() != (False,):
                time.sleep(0.01)
            result.busy = time.perf_counter() - wall
            result.worker_cpu = sum(w.cpu_seconds() for w in started) - cpu
            result.server_cpu = server_cpu_seconds() - server
            first, last, steps = conn.execute(WINDOW.format(s=schema).encode()).fetchone() or (
                0.0,
                0.0,
                0,
            )
            firsts = [
                float(row[0])
                for row in conn.execute(
                    f"SELECT min(taken_at) FROM {schema}.owners GROUP BY owner_id".encode()
                ).fetchall()
            ]
            result.skew = max(firsts) - min(firsts)
        if steps != runs * 10:
            raise RuntimeError(f"{workers} worker(s): {steps} steps completed of {runs * 10}")
        result.elapsed = last - first
        result.rate = steps / result.elapsed
        result.exits = [pool.drain(w) for w in started]
    finally:
        pool.close()
    return result


# --- 2 and 4. interrupt and resume across processes ---------------------------------------------


class Marks:
    """The `hold` step's start marks, written by the workers (bench/_workers_app.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.path.read_text().splitlines() if line.strip()]

    async def next_start(self, seen: int, timeout: float = 30.0) -> tuple[float, int]:
        """The time of the first mark after the first `seen` ones (and the pid that wrote it)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if len(lines) > seen:
                return float(lines[seen][4]), int(lines[seen][3])
            if time.monotonic() > deadline:
                raise RuntimeError(f"no step start marked in {timeout:g} s")
            await asyncio.sleep(0.0005)


class Latencies:
    def __init__(self) -> None:
        self.interrupt: list[float] = []  # call -> answer here
        self.interrupt_journaled: list[float] = []  # call -> the owner's write of the answer
        self.resume: list[float] = []  # call -> answer here
        self.resume_started: list[float] = []  # call -> the resumed step's first action
        self.floors: Floors | None = None


async def interrupt_resume(
    dsn: str, schema: str, modes: list[Any], marks: Marks, cycles: int
) -> Latencies:
    from interruptible._journal import PostgresJournal

    result = Latencies()
    floors = result.floors = Floors(dsn)
    await floors.open()
    journal = PostgresJournal(dsn, schema=schema)
    try:
        async with client(journal, modes) as rt:
            cid, rid = "held", "held-run"
            await rt.run(cid, None, mode="hold", run_id=rid)
            seen = 0
            await marks.next_start(seen)
            seen += 1
            for _ in range(cycles):
                await floors.sample()
                wall, start = time.time(), time.perf_counter()
                snapshot = await rt.interrupt_run(cid, "bench", run_id=rid)
                result.interrupt.append(time.perf_counter() - start)
                assert snapshot.status.value == "interrupted", snapshot
                answer = journal.answer(journal.last_command_id())
                assert answer is not None
                result.interrupt_journaled.append(answer.answered_at - wall)
                wall, start = time.time(), time.perf_counter()
                snapshot = await rt.resume_run(cid, rid)
                result.resume.append(time.perf_counter() - start)
                assert snapshot.status.value == "running", snapshot
                started, _ = await marks.next_start(seen)
                seen += 1
                result.resume_started.append(started - wall)
            await rt.cancel_run(cid, rid)
    finally:
        journal.close()
        await floors.close()
    return result


# --- 3. takeover --------------------------------------------------------------------------------


class Takeovers:
    def __init__(self) -> None:
        self.killed: list[float] = []  # kill -> the other worker's claim
        self.lease_left: list[float] = []  # what was left of the killed worker's lease
        self.killed_running: list[float] = []  # kill -> the step running again elsewhere
        self.drained: list[float] = []  # SIGTERM -> the other worker's claim
        self.drained_running: list[float] = []
        self.reasons: set[str] = set()
        self.exits: list[int | None] = []
        self.wakes: list[float] = []
        self.commits: list[float] = []


async def takeovers(
    dsn: str, pool: Pool, modes: list[Any], marks: Marks, samples: int
) -> Takeovers:
    from interruptible._journal import PostgresJournal

    result = Takeovers()
    floors = Floors(dsn)
    await floors.open()
    journal = PostgresJournal(dsn, schema=pool.schema)
    try:
        async with client(journal, modes) as rt:
            for k in range(2 * samples):
                kill = k % 2 == 0  # alternate: SIGKILL, SIGTERM, ...
                await floors.sample()
                cid, rid = f"take{k}", f"take{k}-run"
                seen = len(marks.lines())
                await rt.run(cid, None, mode="hold", run_id=rid)
                await marks.next_start(seen)
                record = journal.owner(cid)
                assert record is not None
                victim = pool.by_owner(record.owner_id)
                wall = time.time()
                if kill:
                    victim.process.kill()
                else:
                    victim.process.send_signal(signal.SIGTERM)
                while True:
                    now = journal.owner(cid)
                    if now is not None and now.owner_id != record.owner_id:
                        break
                    if time.time() - wall > 10 * LEASE + 10:
                        raise RuntimeError(f"conversation {cid} was not taken over")
                    await asyncio.sleep(0.002)
                restarted, pid = await marks.next_start(seen + 1)
                assert pid != victim.process.pid
                result.reasons.add(now.reason)
                if kill:
                    result.killed.append(now.taken_at - wall)
                    result.lease_left.append(record.expires - wall)
                    result.killed_running.append(restarted - wall)
                    victim.process.wait(timeout=30)
                else:
                    result.drained.append(now.taken_at - wall)
                    result.drained_running.append(restarted - wall)
                    result.exits.append(await asyncio.to_thread(exit_status, victim))
                await rt.cancel_run(cid, rid)
                await asyncio.to_thread(pool.start, 1)  # two workers again
    finally:
        journal.close()
        await floors.close()
    result.wakes, result.commits = floors.wakes, floors.commits
    return result


# --- 4. DBOS ------------------------------------------------------------------------------------


def sqlalchemy_url(dsn: str) -> str:
    """The libpq connection string as a `postgresql://` URL (what `_dbos_resume` takes)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    auth = quote(str(params.get("user", "postgres")), safe="")
    if params.get("password"):
        auth += ":" + quote(str(params["password"]), safe="")
    host = str(params.get("host", "localhost"))
    port = params.get("port", 5432)
    database = quote(str(params.get("dbname", "postgres")), safe="")
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{auth}@/{database}?host={quote(host, safe='')}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{database}"


# --- main ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str] | str]:
    """A fresh database (its DSN and the server's version), dropped at the end; or why not."""
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo
    except ImportError:
        yield "psycopg is not installed (pip install -e '.[postgres]')"
        return
    name = f"interruptible_bench_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} ENCODING 'UTF8'".encode())
            version = admin.info.parameter_status("server_version") or "?"
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [repr(exc)])[0]
        yield f"no PostgreSQL server ({first}); set INTERRUPTIBLE_BENCH_POSTGRES"
        return
    try:
        yield make_conninfo(ADMIN_DSN, dbname=name), f"database {name}, PostgreSQL {version}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args(argv)
    runs = 200 if args.quick else 1000
    rounds = 1 if args.quick else 3
    cycles = 40 if args.quick else 200
    kills = 2 if args.quick else 5
    dbos_samples = 5 if args.quick else 20
    probe_seconds = 0.5 if args.quick else 1.0
    signal.signal(signal.SIGTERM, interrupted)  # clean up (the finally blocks) on SIGTERM too

    with database() as opened:
        if isinstance(opened, str):
            print(f"skipped: {opened}")
            return 0
        dsn, where = opened
        print(f"{where}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print(f"{'benchmark':<44} {'measured':<56} {'goal':<22} result", flush=True)
        modes = load_modes()
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            logs = Path(tmp)
            run_throughput(dsn, logs, modes, runs, rounds, probe_seconds)
            ours = run_latencies(dsn, logs, modes, cycles)
            run_takeovers(dsn, logs, modes, kills)
    run_dbos(ours, dbos_samples)
    if STUCK:
        print(
            f"\nnote: {len(STUCK)} close(s) or cancel(s) did not end in time (a run 0.5 s, a "
            f"close {CLOSE_WAIT:g} s) and took a second cancel ({', '.join(sorted(set(STUCK)))}): "
            "a regression: a close or cancel must end at once, see bench/README.md"
        )
    passed = sum(1 for row in ROWS if row[3] == "PASS")
    misses = sum(1 for row in ROWS if row[3] == "MISS")
    print(f"\n{passed} PASS, {misses} MISS")
    return 0


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_throughput(
    dsn: str, logs: Path, modes: list[Any], runs: int, rounds: int, probe: float
) -> None:
    # The CPUs are shared (with the server, and on a busy machine with others): each round
    # measures the machine's own scaling next to the workers', and the scaling figures are the
    # medians of the rounds' ratios (a ratio of one round is taken under one load).
    per_round: list[dict[int, Throughput]] = []
    machine: list[dict[int, float]] = []
    for round_ in range(rounds):
        measured: dict[int, Throughput] = {}
        ceiling: dict[int, float] = {}
        for n in (1, 2, 4):
            ceiling[n] = cpu_ceiling(n, probe)
            measured[n] = throughput(dsn, logs, modes, n, runs, round_)
        per_round.append(measured)
        machine.append(ceiling)
    results = {  # the round with the median rate, for each count
        n: sorted((m[n] for m in per_round), key=lambda r: r.rate)[len(per_round) // 2]
        for n in (1, 2, 4)
    }
    for n, r in results.items():
        report(
            f"{n} worker{'s' if n > 1 else ''}, {runs} runs x 10 steps queued",
            f"{r.rate:,.0f} steps/s ({r.elapsed:.2f} s from the first claim)"
            + (f", median of {rounds}" if rounds > 1 else ""),
            "",
            None,
        )
        busy = r.busy
        note(
            f"CPU meanwhile: workers {r.worker_cpu / busy:.2f} + PostgreSQL "
            f"{r.server_cpu / busy:.2f} cores of {os.cpu_count()}; worker CPU "
            f"{r.worker_cpu / (runs * 10) * 1e6:.0f} us/step; first claims "
            f"{ms(r.skew)} apart; drained (SIGTERM): "
            + exits([code for m in per_round for code in m[n].exits])
        )
    two, four = (statistics.median(m[n].rate / m[1].rate for m in per_round) for n in (2, 4))
    allows = {n: statistics.median(c[n] / c[1] for c in machine) for n in (2, 4)}
    each = "; ".join(
        f"{m[2].rate / m[1].rate:.2f}x / {m[4].rate / m[1].rate:.2f}x" for m in per_round
    )
    report("scaling 2 workers / 1", f"{two:.2f}x", ">= 1.5x", two >= 1.5)
    report("scaling 4 workers / 1", f"{four:.2f}x", "", None)
    if rounds > 1:
        note(f"the medians of {rounds} rounds: 2w/1w / 4w/1w {each}")
    note(
        f"floor: this machine's own scaling in the same rounds, 2 / 4 CPU-only processes at "
        f"once against one: {allows[2]:.2f}x / {allows[4]:.2f}x ({os.cpu_count()} CPUs, shared by "
        "the workers and the server)"
    )
    submit = statistics.median(r.submit for r in results.values())
    note(
        f"the runs were queued first by one client runtime, {ms(submit)} a run (one synced "
        f"commit each): a stream from one client would cap at {10 / submit:,.0f} steps/s"
    )
    one = results[1]
    busy_one = (one.worker_cpu + one.server_cpu) / one.busy
    if two > allows[2]:
        note(
            f"above the CPU-only scaling: one worker kept only {busy_one:.2f} cores busy (itself "
            "and the server), since its journal calls are synchronous on its event loop (it "
            "computes or waits on a commit, never both); a second worker fills those waits"
        )
    if two < 1.5:
        if allows[2] < 1.5:
            note(
                f"MISS: this machine itself scaled 2 CPU-bound processes only {allows[2]:.2f}x "
                "in this run (its CPUs are busy with other work): more free cores would move it"
            )
        else:
            note(
                f"MISS: the machine allows {allows[2]:.2f}x; one worker kept {busy_one:.2f} cores "
                "busy (itself and the server). A worker's journal calls are synchronous on its "
                "event loop, so it computes or waits on a commit, never both: less CPU per step "
                "(the worker's us/step above), or more workers per free core, would move it"
            )


def run_latencies(dsn: str, logs: Path, modes: list[Any], cycles: int) -> Latencies:
    marks = Marks(logs / "marks-latency")
    pool = Pool(dsn, "bench_latency", logs, marks=marks.path)
    try:
        pool.start(2)
        result = asyncio.run(interrupt_resume(dsn, pool.schema, modes, marks, cycles))
    finally:
        pool.close()
    floors = result.floors
    assert floors is not None
    p99 = percentile(result.interrupt, 0.99)
    report(
        f"interrupt_run across processes, {cycles} calls",
        spread(result.interrupt),
        "p99 < 20 ms",
        p99 < 0.020,
    )
    note(f"call -> the owner's write of the answer: {spread(result.interrupt_journaled)}")
    floor = floors.path()
    times = statistics.median(result.interrupt) / statistics.median(floor)
    note(
        f"floor: two synced commits + two NOTIFY wakes {spread(floor)} (bare INSERT + COMMIT "
        f"{spread(floors.commits)}; NOTIFY -> LISTEN {spread(floors.wakes)}; SELECT 1 "
        f"{spread(floors.round_trips)}); ours = {times:.1f}x it (medians)"
    )
    if p99 >= 0.020:
        note(
            "MISS: the floor's p99 is "
            f"{ms(percentile(floor, 0.99))}: "
            + (
                "the server's commits are the cost (a faster disk, or synchronous_commit=off "
                "for the journal, would move it)"
                if percentile(floor, 0.99) >= 0.015
                else "the rest is the owner's and the client's own work per command"
            )
        )
    return result


def run_takeovers(dsn: str, logs: Path, modes: list[Any], samples: int) -> None:
    marks = Marks(logs / "marks-takeover")
    pool = Pool(dsn, "bench_takeover", logs, marks=marks.path)
    try:
        pool.start(2)
        result = asyncio.run(takeovers(dsn, pool, modes, marks, samples))
    finally:
        pool.close()
    worst = max(result.killed)
    report(
        f"takeover after kill -9, lease {LEASE:g} s, {samples} kills",
        f"median {statistics.median(result.killed):.2f} s, max {worst:.2f} s",
        f"<= lease + 1 s = {LEASE + 1:g} s",
        worst <= LEASE + 1,
    )
    after = [t - left for t, left in zip(result.killed, result.lease_left, strict=True)]
    note(
        f"floor: the killed worker's lease had {statistics.median(result.lease_left):.2f} s "
        f"left at the kill (median; max {max(result.lease_left):.2f} s): the claim came "
        f"{ms(statistics.median(after))} after the lease ended (median; max {ms(max(after))}); "
        f"the step ran again on the other worker {statistics.median(result.killed_running):.2f} s"
        " after the kill"
    )
    if worst > LEASE + 1:
        note(
            "MISS: a worker looks for expired leases every 0.5 s (SWEEP); a shorter lease or "
            "sweep would move it"
        )
    worst = max(result.drained)
    report(
        f"handover after SIGTERM (drain), {samples} drains",
        f"median {ms(statistics.median(result.drained))}, max {ms(worst)}",
        "< 0.5 s",
        worst < 0.5,
    )
    note(
        f"floor: a NOTIFY wake ({ms(statistics.median(result.wakes))}) + a synced commit "
        f"({ms(statistics.median(result.commits))}), medians; the step ran again "
        f"{ms(statistics.median(result.drained_running))} after the signal (median); drained "
        f"workers: {exits(result.exits)}; claim reasons {sorted(result.reasons)}"
    )
    if worst >= 0.5:
        note(
            "MISS: the drain stops the worker's tasks and effects, then releases the lease; a "
            "drain that hangs (see the exits) leaves the conversation until the lease expires"
        )


def run_dbos(ours: Latencies, samples: int) -> None:
    sys.path.insert(0, str(HERE))
    from _dbos_resume import dbos_available, measure_dbos_resume

    answer = statistics.median(ours.resume)
    started = statistics.median(ours.resume_started)
    report(
        f"resume_run across processes, {len(ours.resume)} calls",
        f"{spread(ours.resume)} (answer)",
        "",
        None,
    )
    note(f"call -> the resumed step's first action in the worker: {spread(ours.resume_started)}")
    version = dbos_available()
    if version is None:
        note("DBOS comparison skipped: dbos is not installed (pip install -e '.[bench]')")
        return
    url = sqlalchemy_url(ADMIN_DSN)
    for polling, label in ((None, "default resume_workflow"), (0.05, "queue polled every 0.05 s")):
        try:
            latencies, info = measure_dbos_resume(url, samples, resume_polling_sec=polling)
        except Exception as exc:  # a peer's failure is reported, not raised
            note(f"DBOS ({label}) failed: {type(exc).__name__}: {exc}")
            continue
        theirs = statistics.median(latencies)
        ratio = theirs / answer
        report(
            f"  vs DBOS, {label}",
            f"{spread(latencies)} = {ratio:.0f}x ours",
            ">= 10x" if polling is None else "(for reference)",
            ratio >= 10 if polling is None else None,
        )
        note(f"to the step's first action, like for like: {theirs / started:.0f}x ours; {info}")
        if polling is None and ratio < 10:
            note(
                "MISS: DBOS's default waits for its queue's next poll (1 s); ours is a NOTIFY "
                "wake and two commits: see the interrupt floor above for what would move ours"
            )


if __name__ == "__main__":
    sys.exit(main())
