"""Two real processes on one SQLite journal, or one PostgreSQL schema (spec/ownership.md): the
first owns a conversation, the second (this test's own process) sends it commands, and takes it
over only once the first is gone (`kill -9`: at once, its pid is dead) or stalled past its lease
(`SIGSTOP`: then the first, woken, is fenced). The tools write a side file themselves, which
says what really ran, where and when."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from interruptible import EffectCompleted, RunStatus, StepStatus
from interruptible._errors import OwnedElsewhereError
from interruptible._journal import Journal, SQLiteJournal
from tests._postgres import POSTGRES
from tests.runtime.owner_child import runtime
from tests.runtime.support import arun, until

CHILD = Path(__file__).with_name("owner_child.py")
ROOT = Path(__file__).parents[2]
LEASE = 1.0


@dataclass(frozen=True)
class Line:
    what: str  # start, end or cancel
    pid: int
    key: str  # run:step:attempt
    at: float

    @property
    def step(self) -> str:
        return self.key.rsplit(":", 1)[0]


def lines(side: Path) -> list[Line]:
    if not side.exists():
        return []
    out = []
    for text in side.read_text().splitlines():
        what, pid, key, at = text.split()
        out.append(Line(what, int(pid), key, float(at)))
    return out


def seen(side: Path, what: str, key: str, pid: int | None = None) -> bool:
    return any(
        line.what == what and line.key == key and (pid is None or line.pid == pid)
        for line in lines(side)
    )


class Child:
    """The first process: owns `conversation` until killed."""

    def __init__(self, db: str, side: Path, conversation: str) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), db, str(side), conversation, str(LEASE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        assert ready and ready[0] == "ready", self.proc.stderr.read() if self.proc.stderr else ""
        self.owner_id = ready[1]
        self.pid = int(ready[2])

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=10)
        return err


class Store:
    """The journal both processes open: a SQLite file, or a PostgreSQL schema."""

    def __init__(self, kind: str, path: Path) -> None:
        self.schema = POSTGRES.new_schema() if kind == "postgres" else None
        self.db = (
            str(path) if self.schema is None else f"postgres:{self.schema}:{POSTGRES.require()}"
        )

    def open(self) -> Journal:
        if self.schema is None:
            return SQLiteJournal(self.db)
        return POSTGRES.journal(self.schema)

    def event_epochs(self) -> list[int | None]:
        """The epoch of every event row, in sequence order (one conversation in the journal)."""
        if self.schema is None:
            with sqlite3.connect(self.db) as conn:
                rows = conn.execute("SELECT epoch FROM events ORDER BY sequence").fetchall()
            conn.close()
        else:
            import psycopg

            with psycopg.connect(POSTGRES.require()) as pg:
                rows = pg.execute(
                    f'SELECT epoch FROM "{self.schema}".events ORDER BY sequence'.encode()
                ).fetchall()
        return [epoch for (epoch,) in rows]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The shared journal of each kind (a PostgreSQL schema is dropped after the test)."""
    shared = Store(request.param, tmp_path / "j.db")
    yield shared
    if shared.schema is not None:
        POSTGRES.drop_schema(shared.schema)


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def gate_waits(rt: object, cid: str) -> bool:
    snapshot = rt.snapshot(cid)  # type: ignore[attr-defined]
    return any(s.step_id == "ask" and s.status is StepStatus.waiting_input for s in snapshot.steps)


def assert_no_overlap_and_no_rerun(side: Path, dead: dict[int, float]) -> None:
    """Per step: no two attempts live at once (an attempt of a killed process ends at the
    kill), and nothing starts after an attempt completed."""
    by_step: dict[str, dict[str, list[float]]] = {}
    pids: dict[str, int] = {}
    for line in lines(side):
        attempts = by_step.setdefault(line.step, {})
        attempts.setdefault(line.key, []).append(line.at)
        pids[line.key] = line.pid
    for step, attempts in by_step.items():
        spans = []
        for key, times in attempts.items():
            end = times[1] if len(times) > 1 else dead.get(pids[key], float("inf"))
            spans.append((times[0], end, key))
        spans.sort()
        for (_, end, key), (start, _, later) in itertools.pairwise(spans):
            assert end <= start, f"{key} and {later} of {step} were live at once"
    completed = [line for line in lines(side) if line.what == "end"]
    for done in completed:
        later = [
            line
            for line in lines(side)
            if line.step == done.step and line.what == "start" and line.at > done.at
        ]
        assert not later, f"{done.step} ran again after it completed: {later}"


def test_own_6_own_7_commands_from_a_second_process_take_effect_in_the_first(
    tmp_path: Path, store: Store
) -> None:
    """The second process may not start a run on the first's conversation (a typed error
    naming the owner, no takeover); its interrupt, resume, gate answer and cancel are applied
    by the first, where every attempt runs."""
    db, side = store.db, tmp_path / "side.txt"
    child = Child(db, side, "c1")
    try:
        wait_for(lambda: seen(side, "start", "c1-r:slow:1", child.pid))

        async def second() -> None:
            async with runtime(db, str(side), LEASE) as rt:
                with pytest.raises(OwnedElsewhereError) as caught:
                    await rt.run("c1", None, mode="owned", run_id="other")
                assert (caught.value.pid, caught.value.owner_id) == (child.pid, child.owner_id)
                duplicate = await rt.resume_run("c1", "c1-r")
                assert duplicate.status is RunStatus.running  # answered by the owner
                stopped = await rt.interrupt_run("c1", "from the second process")
                assert stopped.status is RunStatus.interrupted
                await until(lambda: seen(side, "cancel", "c1-r:slow:1", child.pid))
                assert (await rt.resume_run("c1", "c1-r")).status is RunStatus.running
                await until(lambda: gate_waits(rt, "c1"), timeout=10)
                await rt.provide_input("c1", "c1-r", "ask", "yes")
                await until(lambda: seen(side, "start", "c1-r:last:1", child.pid), timeout=10)
                assert (await rt.cancel_run("c1", "c1-r")).status is RunStatus.canceled
                await until(lambda: seen(side, "cancel", "c1-r:last:1", child.pid))
                assert [r.owner_id for r in rt.journal.ownership_history("c1")] == [child.owner_id]

        arun(second(), timeout=40)
        assert {line.pid for line in lines(side)} == {child.pid}
        assert_no_overlap_and_no_rerun(side, {})
    finally:
        err = child.stop()
    assert "Traceback" not in err


def test_own_4_own_8_after_kill_9_the_second_process_takes_over_at_once_and_finishes(
    tmp_path: Path, store: Store
) -> None:
    """While the first lives, the second leaves its in-flight step alone; after `kill -9` the
    second takes over at once (the pid is gone on this host), runs the lost step again as a new
    attempt, and finishes the run; no step had two live attempts, no kept step ran again."""
    db, side = store.db, tmp_path / "side.txt"
    child = Child(db, side, "c2")
    try:
        wait_for(lambda: seen(side, "start", "c2-r:slow:1", child.pid))

        async def second() -> float:
            async with runtime(db, str(side), LEASE) as rt:
                assert rt.recovery.left_alone == [("c2", child.owner_id)]
                os.kill(child.pid, signal.SIGKILL)
                child.proc.wait(timeout=10)
                killed = time.time()
                await until(lambda: bool(rt.recovery.taken_over), timeout=LEASE)
                assert rt.recovery.taken_over == [("c2", child.owner_id, 2, "owner_gone")]
                await until(lambda: gate_waits(rt, "c2"), timeout=10)
                await rt.provide_input("c2", "c2-r", "ask", "yes")
                final = await rt.wait("c2", "c2-r")
                assert final.status is RunStatus.completed
                return killed

        killed = arun(second(), timeout=40)
        me = os.getpid()
        assert [(line.what, line.pid, line.key) for line in lines(side)] == [
            ("start", child.pid, "c2-r:slow:1"),
            ("start", me, "c2-r:slow:2"),
            ("end", me, "c2-r:slow:2"),
            ("start", me, "c2-r:last:1"),
            ("end", me, "c2-r:last:1"),
        ]
        assert_no_overlap_and_no_rerun(side, {child.pid: killed})
    finally:
        child.stop()


def test_own_3_own_4_a_stalled_owner_is_taken_over_after_its_lease_and_fenced_on_waking(
    tmp_path: Path, store: Store
) -> None:
    """A first process stopped (`SIGSTOP`: alive, silent) loses its conversation once its
    lease expires; woken, it lets the conversation go at its first heartbeat (its effect is
    stopped) or, if its effect ends first, has the late result refused by the epoch fence:
    either way nothing of it is journaled, and it goes on living; the run ends once, with the
    new owner's result."""
    db, side = store.db, tmp_path / "side.txt"
    child = Child(db, side, "c3")
    try:
        wait_for(lambda: seen(side, "start", "c3-r:slow:1", child.pid))

        async def second() -> None:
            async with runtime(db, str(side), LEASE) as rt:
                os.kill(child.pid, signal.SIGSTOP)
                try:
                    await until(lambda: bool(rt.recovery.taken_over), timeout=4 * LEASE)
                    assert rt.recovery.taken_over == [("c3", child.owner_id, 2, "lease_expired")]
                    await until(lambda: seen(side, "start", "c3-r:slow:2", os.getpid()))
                finally:
                    os.kill(child.pid, signal.SIGCONT)
                await until(
                    lambda: (
                        seen(side, "end", "c3-r:slow:1", child.pid)
                        or seen(side, "cancel", "c3-r:slow:1", child.pid)
                    ),
                    timeout=5,
                )
                await until(lambda: gate_waits(rt, "c3"), timeout=10)
                await rt.provide_input("c3", "c3-r", "ask", "yes")
                assert (await rt.wait("c3", "c3-r")).status is RunStatus.completed
                await asyncio.sleep(0.2)
                assert child.proc.poll() is None  # the woken owner was fenced, not crashed

        arun(second(), timeout=40)
    finally:
        err = child.stop()
    assert "Traceback" not in err
    with store.open() as journal:
        completed = [r.event for r in journal.read("c3") if isinstance(r.event, EffectCompleted)]
        assert [(e.step_id, e.attempt) for e in completed] == [("slow", 2), ("last", 1)]
        assert [r.epoch for r in journal.ownership_history("c3")] == [1, 2]
    epochs = store.event_epochs()
    assert epochs == sorted(epochs)
