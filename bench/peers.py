"""Ours against LangGraph and DBOS: the same pipeline and the same pause-then-resume, one process.

    .venv/bin/python bench/peers.py [--steps 1000] [--peer-steps N] [--rounds 7] [--cycles 30]
                                    [--dir DIR] [--quick]

The peers come from the optional `bench` extra (`pip install -e '.[bench]'`); a peer that is not
installed is skipped, with that said, and the script still exits 0. Every figure comes from this
one process, on fresh SQLite files in one temp dir, and all three call the same plain function
`step(i) -> i` as their step.

1. A pipeline of N trivial steps, wall time per step:
   - ours: a `Sequence` of N `tool` steps on `Runtime(<tmp>/runs.db)` (WAL, synchronous=FULL);
     the tool is registered as `inline(step)`, so it runs on the loop, as LangGraph and DBOS run
     their step in the caller's thread (RT-12). One commit per step. Printed for info: the same
     as a plain sync tool (run in a worker thread, the default for tools that may block) and as
     an async tool.
   - LangGraph: one node looping N times through a conditional edge (each superstep is one
     checkpoint: the idiomatic durable step, as in an agent loop), `SqliteSaver` (WAL; sqlite3's
     default synchronous=FULL), `invoke(..., durability="sync")`: the checkpoint is written
     before the next step starts. It commits twice per step (the task's writes, then the
     checkpoint). A linear graph of N nodes is measured once for info (it costs more per step).
     The sync saver is used: `AsyncSqliteSaver` with `ainvoke` is slower.
   - DBOS: a workflow of N `@DBOS.step()` calls, system database on SQLite
     (`system_database_url="sqlite:///..."`). DBOS leaves SQLite in its default rollback
     journal; the file is put in WAL mode before launch, so all three have the same durability
     (WAL + FULL: one fsync per write commit). The default journal's figure is printed for info.
2. Pause then resume (human in the loop), from the resume call to the run finished:
   - LangGraph: node `gate` calls `interrupt()`, then node `after` calls the step; `invoke`
     returns with `__interrupt__` (untimed); timed: `invoke(Command(resume=v))` until it returns
     the final state (LangGraph runs `gate` again from its top).
   - ours: a `human_gate` step then a `tool` step; the run waits at the gate (untimed); timed:
     `provide_input` until `wait()` returns the completed run. This is the fair match: both are a
     run paused for a value and continued with it, and both timings end with the next step done
     and the run finished. Our `interrupt_run`/`resume_run` (an external stop of a step in
     flight, which LangGraph has no equivalent of) is measured by bench_runtime.py.
   - DBOS: the workflow waits in `DBOS.recv`; timed: `DBOS.send` until `get_result()`. On SQLite
     recv learns of a message by polling; for this measure only, the poll interval is set to its
     minimum (`notification_listener_polling_interval_sec=0.001`; the default is 1 s) so the
     figure is DBOS's and not its sleep. For info: the goal names LangGraph only.

The fsync time of a shared disk drifts a lot (a bare commit took 0.1 ms and 5 ms in the same
minute on the machine this was written on), so the frameworks run in alternating rounds (their
order rotated each round) between two bare synced commits (the disk's state, printed), each ratio
is taken within its round and the median round is reported. `--peer-steps` runs the peers
shorter; their per-step cost is then extrapolated (said so). Printed for info too: CPU time per
step (process-wide: every thread, and the kernel's fsync work; other load skews it least), write
commits per step (DBOS: its transactions that changed rows; `strace -c` agrees: one fdatasync
per step for ours and DBOS-on-WAL, two for LangGraph), and the pipelines again on tmpfs
(`/dev/shm`, when there is one), where fsync is free: the frameworks' own cost. Goals (the
issue): per step, at least 3x faster than both; resume at least 2x faster than LangGraph's
interrupt()/Command(resume=...) cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import importlib.metadata
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from interruptible import Sequence, StepClass, StepDefinition, StepStatus
from interruptible._runtime import Runtime, inline

INSTALL = "pip install -e '.[bench]'"
ROWS: list[tuple[str, str, str, str]] = []


def report(name: str, measured: str, goal: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    ROWS.append((name, measured, goal, verdict))
    print(f"{name:<44} {measured:<62} {goal:<10} {verdict}", flush=True)


def step(i: int) -> int:
    """The step every framework runs: trivial, so what is measured is the framework."""
    return i


async def astep(i: int) -> int:
    return i


INLINE_STEP = inline(step)  # ours: the step on the loop, as the peers run it in their thread


@dataclass(frozen=True)
class Measure:
    """One pipeline run: wall and CPU microseconds per step, write commits per step."""

    wall_us: float
    cpu_us: float
    commits: float


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def per(self, steps: int, commits: int) -> Measure:
        return Measure(self.wall / steps * 1e6, self.cpu / steps * 1e6, commits / steps)


def fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def bare_commit_us(directory: Path, n: int = 200) -> float:
    """One synced commit of a ~300-byte row, WAL, synchronous=FULL: the disk's state now."""
    conn = sqlite3.connect(fresh(directory, "bare.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k TEXT, n INTEGER, body TEXT, PRIMARY KEY (k, n))")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", ("c", i, "x" * 300))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed / n * 1e6


# --- ours ---------------------------------------------------------------------------------------


def ours_pipeline(path: Path, steps: int, tool: Callable[..., Any] = INLINE_STEP) -> Measure:
    mode = Sequence(
        "pipeline",
        tuple(
            StepDefinition(f"s{i}", StepClass.tool, {"name": "step", "arguments": {"i": i}})
            for i in range(steps)
        ),
    )

    async def go() -> Measure:
        async with Runtime(path, modes=[mode], tools={"step": tool}) as rt:
            with Clock() as clock:
                handle = await rt.run("c", None, mode="pipeline")
                final = await handle.wait()
            assert final.status.value == "completed", final
            return clock.per(steps, rt.commits)

    return asyncio.run(go())


def ours_resume(path: Path, cycles: int) -> list[float]:
    """Seconds from `provide_input` at a waiting gate to the run completed, per cycle."""
    mode = Sequence(
        "gated",
        (
            StepDefinition("gate", StepClass.human_gate, {"question": "go on?"}),
            StepDefinition("after", StepClass.tool, {"name": "step", "arguments": {"i": 1}}),
        ),
    )

    async def go() -> list[float]:
        times = []
        async with Runtime(path, modes=[mode], tools={"step": step}) as rt:
            for k in range(cycles):
                handle = await rt.run(f"c{k}", None, mode="gated")
                while True:  # untimed: until the run waits at its gate
                    snapshot = rt.snapshot(f"c{k}")
                    current = snapshot.current_step
                    if current is not None and current.status is StepStatus.waiting_input:
                        break
                    assert not snapshot.is_terminal, snapshot
                    await asyncio.sleep(0)
                started = time.perf_counter()
                await handle.provide_input("gate", 5)
                final = await handle.wait()
                times.append(time.perf_counter() - started)
                assert final.status.value == "completed", final
        return times

    return asyncio.run(go())


# --- LangGraph ----------------------------------------------------------------------------------


class CountingConnection(sqlite3.Connection):
    commits = 0

    def commit(self) -> None:
        CountingConnection.commits += 1
        super().commit()


class State(TypedDict):
    i: int


def langgraph_available() -> str | None:
    try:
        for module in ("langgraph.graph", "langgraph.types", "langgraph.checkpoint.sqlite"):
            importlib.import_module(module)
    except ImportError:
        return None
    return (
        f"langgraph {importlib.metadata.version('langgraph')}, langgraph-checkpoint-sqlite "
        f"{importlib.metadata.version('langgraph-checkpoint-sqlite')}"
    )


def langgraph_saver(path: Path) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False, factory=CountingConnection)
    return SqliteSaver(conn)


def langgraph_pipeline(path: Path, steps: int, linear: bool = False) -> Measure:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    if linear:
        previous = START
        for k in range(steps):
            graph.add_node(f"s{k}", lambda s: {"i": step(s["i"] + 1)})
            graph.add_edge(previous, f"s{k}")
            previous = f"s{k}"
        graph.add_edge(previous, END)
    else:
        graph.add_node("step", lambda s: {"i": step(s["i"] + 1)})
        graph.add_edge(START, "step")
        graph.add_conditional_edges("step", lambda s: "step" if s["i"] < steps else END)
    saver = langgraph_saver(path)
    app = graph.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "t"}, "recursion_limit": steps + 10}
    CountingConnection.commits = 0
    with Clock() as clock:
        out = app.invoke({"i": 0}, config, durability="sync")
    assert out["i"] == steps, out
    commits = CountingConnection.commits
    saver.conn.close()
    return clock.per(steps, commits)


def langgraph_resume(path: Path, cycles: int) -> list[float]:
    """Seconds of `invoke(Command(resume=v))` on a thread paused in `interrupt()`, per cycle."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    def gate(state: State) -> dict[str, int]:
        return {"i": interrupt("go on?")}

    graph = StateGraph(State)
    graph.add_node("gate", gate)
    graph.add_node("after", lambda s: {"i": step(s["i"] + 1)})
    graph.add_edge(START, "gate")
    graph.add_edge("gate", "after")
    graph.add_edge("after", END)
    saver = langgraph_saver(path)
    app = graph.compile(checkpointer=saver)
    times = []
    for k in range(cycles):
        config: Any = {"configurable": {"thread_id": f"t{k}"}}
        paused = app.invoke({"i": 0}, config, durability="sync")
        assert "__interrupt__" in paused, paused
        started = time.perf_counter()
        out = app.invoke(Command(resume=5), config, durability="sync")
        times.append(time.perf_counter() - started)
        assert out["i"] == 6, out
    saver.conn.close()
    return times


# --- DBOS ---------------------------------------------------------------------------------------


def dbos_available() -> str | None:
    try:
        importlib.import_module("dbos")
    except ImportError:
        return None
    return f"dbos {importlib.metadata.version('dbos')}"


@functools.cache
def dbos_functions() -> dict[str, Any]:
    """The workflows, registered once (DBOS keeps its registry across `destroy`)."""
    from dbos import DBOS

    waiting = threading.Event()
    dbos_step = DBOS.step(name="step")(step)

    @DBOS.workflow(name="pipeline")
    def pipeline(steps: int) -> int:
        for i in range(steps):
            dbos_step(i)
        return steps

    @DBOS.workflow(name="gated")
    def gated() -> int:
        waiting.set()
        value = DBOS.recv("answer", timeout_seconds=60)
        return int(dbos_step(value + 1))

    return {"pipeline": pipeline, "gated": gated, "waiting": waiting}


class DBOSSession:
    """A launched DBOS on a fresh SQLite system database, destroyed on exit (so its background
    threads do not run while the others are measured). Counts its write commits."""

    def __init__(self, path: Path, wal: bool = True, poll: float | None = None) -> None:
        self.path, self.wal, self.poll, self.commits = path, wal, poll, 0

    def __enter__(self) -> DBOSSession:
        import sqlalchemy as sa
        from dbos import DBOS
        from dbos._dbos import _get_dbos_instance

        dbos_functions()
        if self.wal:  # journal_mode=WAL is kept in the file
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.close()
        config: Any = {
            "name": "peers-bench",
            "system_database_url": f"sqlite:///{self.path}",
            "log_level": "WARNING",
        }
        if self.poll is not None:
            config["notification_listener_polling_interval_sec"] = self.poll
        DBOS(config=config)
        DBOS.launch()
        changes: dict[int, int] = {}

        def on_commit(connection: Any) -> None:
            raw = connection.connection.dbapi_connection
            total = raw.total_changes
            if changes.get(id(raw)) != total:
                changes[id(raw)] = total
                self.commits += 1

        sa.event.listen(_get_dbos_instance()._sys_db.engine, "commit", on_commit)
        return self

    def __exit__(self, *exc: object) -> None:
        from dbos import DBOS

        DBOS.destroy()


def dbos_pipeline(path: Path, steps: int, wal: bool = True) -> Measure:
    pipeline = dbos_functions()["pipeline"]
    with DBOSSession(path, wal) as session:
        session.commits = 0
        with Clock() as clock:
            assert pipeline(steps) == steps
        return clock.per(steps, session.commits)


def dbos_resume(path: Path, cycles: int) -> list[float]:
    """Seconds from `DBOS.send` to `get_result()` of a workflow waiting in `DBOS.recv`."""
    from dbos import DBOS

    functions = dbos_functions()
    times = []
    with DBOSSession(path, poll=0.001):
        for _ in range(cycles):
            functions["waiting"].clear()
            handle = DBOS.start_workflow(functions["gated"])
            functions["waiting"].wait(10)
            time.sleep(0.005)  # untimed: recv registers its wait
            started = time.perf_counter()
            DBOS.send(handle.workflow_id, 5, "answer")
            assert handle.get_result() == 6
            times.append(time.perf_counter() - started)
    return times


# --- main ---------------------------------------------------------------------------------------


def fmt(m: Measure) -> str:
    return f"{m.wall_us:,.0f} us/step (CPU {m.cpu_us:,.0f} us), {m.commits:.2f} commits/step"


def middle(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="pipeline length (ours)")
    parser.add_argument("--peer-steps", type=int, help="the peers' pipeline length (def. --steps)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (median kept)")
    parser.add_argument("--cycles", type=int, default=30, help="resume cycles per round")
    parser.add_argument("--quick", action="store_true", help="200 steps, 1 round, 10 cycles")
    parser.add_argument("--dir", help="parent of the temp dir (the fsync cost is its disk's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.cycles = 200, 1, 10
    steps = args.steps
    peer_steps = args.peer_steps or steps
    logging.getLogger("dbos").setLevel(logging.WARNING)

    print(
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    )
    peers: dict[str, str] = {}
    for name, probe in (("LangGraph", langgraph_available), ("DBOS", dbos_available)):
        version = probe()
        if version is None:
            print(f"{name}: not installed, skipped (install the peers with `{INSTALL}`)")
        else:
            peers[name] = version
            print(f"{name}: {version}")
    if peer_steps != steps:
        print(f"the peers run {peer_steps} steps: their per-step cost is extrapolated to {steps}")

    pipelines: dict[str, Callable[[Path, int], Measure]] = {"ours": ours_pipeline}
    resumes: dict[str, Callable[[Path, int], list[float]]] = {"ours": ours_resume}
    if "LangGraph" in peers:
        pipelines["LangGraph"], resumes["LangGraph"] = langgraph_pipeline, langgraph_resume
    if "DBOS" in peers:
        pipelines["DBOS"], resumes["DBOS"] = dbos_pipeline, dbos_resume
    names = list(pipelines)

    def length(name: str) -> int:
        return steps if name == "ours" else peer_steps

    per_round: list[dict[str, Measure]] = []
    resume_round: list[dict[str, float]] = []
    bare: list[float] = []
    shm_round: list[dict[str, Measure]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        for name in names:  # warm-up: imports, first-call caches (untimed)
            pipelines[name](fresh(directory, f"warm-{name}.db"), 20)
            resumes[name](fresh(directory, f"warm-r-{name}.db"), 2)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            before = bare_commit_us(directory)
            measures = {}
            for name in order:
                measures[name] = pipelines[name](fresh(directory, f"{name}-{r}.db"), length(name))
            bare.append((before + bare_commit_us(directory)) / 2)
            per_round.append(measures)
            cycles = {}
            for name in order:
                times = resumes[name](fresh(directory, f"r-{name}-{r}.db"), args.cycles)
                cycles[name] = middle(times)
            resume_round.append(cycles)
            print(
                f"  round {r + 1}: bare commit {bare[-1]:,.0f} us; "
                + ", ".join(f"{k} {v.wall_us:,.0f}" for k, v in measures.items())
                + " us/step; resume "
                + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in cycles.items())
                + " ms",
                flush=True,
            )
        extra_ours_threaded = ours_pipeline(fresh(directory, "ours-thread.db"), steps, step)
        extra_ours_async = ours_pipeline(fresh(directory, "ours-async.db"), steps, astep)
        extra_lg_linear = (
            langgraph_pipeline(fresh(directory, "lg-linear.db"), peer_steps, linear=True)
            if "LangGraph" in peers
            else None
        )
        extra_dbos_default = (
            dbos_pipeline(fresh(directory, "dbos-default.db"), min(peer_steps, 200), wal=False)
            if "DBOS" in peers
            else None
        )
    if Path("/dev/shm").is_dir():  # the frameworks' own cost: a tmpfs makes fsync free
        with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
            directory = Path(tmp)
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                shm_round.append(
                    {
                        name: pipelines[name](fresh(directory, f"{name}-{r}.db"), length(name))
                        for name in order
                    }
                )

    print(
        f"\n{'measure':<44} {'measured (median of ' + str(args.rounds) + ' rounds)':<62} "
        f"{'goal':<10} result"
    )
    bare_us = middle(bare)
    report(
        "the disk: a bare synced commit (WAL, FULL)",
        f"median {bare_us:,.0f} us (rounds: {' / '.join(f'{b:,.0f}' for b in bare)})",
    )

    def median_measure(rounds: list[dict[str, Measure]], name: str) -> Measure:
        return Measure(
            middle([m[name].wall_us for m in rounds]),
            middle([m[name].cpu_us for m in rounds]),
            middle([m[name].commits for m in rounds]),
        )

    report(f"ours: {steps}-step pipeline, inline tool", fmt(median_measure(per_round, "ours")))
    report("    the same, sync tool in a thread (info, one run)", fmt(extra_ours_threaded))
    report("    the same, async tool (info, one run)", fmt(extra_ours_async))
    for name in names[1:]:
        report(f"{name}: {peer_steps}-step pipeline", fmt(median_measure(per_round, name)))
        if name == "LangGraph" and extra_lg_linear is not None:
            report(f"    linear graph of {peer_steps} nodes (info)", fmt(extra_lg_linear))
        if name == "DBOS" and extra_dbos_default is not None:
            report(
                f"    default journal, {min(peer_steps, 200)} steps (info)", fmt(extra_dbos_default)
            )
        ratio = middle([m[name].wall_us / m["ours"].wall_us for m in per_round])
        cpu_ratio = middle([m[name].cpu_us / m["ours"].cpu_us for m in per_round])
        report(
            f"speed-up per step over {name}",
            f"{ratio:.2f}x wall (CPU {cpu_ratio:.2f}x)",
            ">= 3x",
            ratio >= 3,
        )
    if shm_round:
        print("  the frameworks' own cost, on tmpfs (/dev/shm: fsync is free; info):")
        for name in names:
            report(f"    {name}", fmt(median_measure(shm_round, name)))
        for name in names[1:]:
            ratio = middle([m[name].wall_us / m["ours"].wall_us for m in shm_round])
            report(f"    speed-up over {name} on tmpfs", f"{ratio:.2f}x wall")

    ours_cycle = middle([c["ours"] for c in resume_round])
    report("ours: provide_input -> run completed", f"median {ours_cycle * 1e3:.2f} ms")
    for name in names[1:]:
        cycle = middle([c[name] for c in resume_round])
        what = "Command(resume=...)" if name == "LangGraph" else "send -> recv"
        report(f"{name}: {what} -> completed", f"median {cycle * 1e3:.2f} ms")
        ratio = middle([c[name] / c["ours"] for c in resume_round])
        if name == "LangGraph":
            report("resume speed-up over LangGraph", f"{ratio:.2f}x", ">= 2x", ratio >= 2)
        else:
            report(f"resume speed-up over {name} (info)", f"{ratio:.2f}x")

    misses = sum(1 for row in ROWS if row[3] == "MISS")
    passes = sum(1 for row in ROWS if row[3] == "PASS")
    skipped = [name for name in ("LangGraph", "DBOS") if name not in peers]
    tail = f" ({', '.join(skipped)} skipped: `{INSTALL}`)" if skipped else ""
    print(f"\n{passes} PASS, {misses} MISS{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
