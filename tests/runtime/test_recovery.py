"""Recovery: a runtime opened on an existing journal restores and restarts what was in flight."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from interruptible import (
    EffectLost,
    EffectStarted,
    RunStatus,
    StepClass,
    StepDefinition,
    StepStatus,
)
from interruptible._journal import SQLiteJournal
from interruptible._runtime import RESTART_REASON, Effect, Runtime
from tests.runtime.support import Ledger, arun, pipeline, tool_step, until

REPO = Path(__file__).resolve().parents[2]


def _events(db: Path, cid: str) -> list[Any]:
    journal = SQLiteJournal(db)
    try:
        return [record.event for record in journal.read(cid)]
    finally:
        journal.close()


def test_rt_8_effects_in_flight_at_close_restart_with_a_new_attempt(tmp_path: Path) -> None:
    """A runtime closed while a tool runs leaves it live in the journal; the next runtime on the
    journal journals `effect_lost` (reason `process_restart`) for it, and the step runs again
    with attempt 2 at once, even with `max_attempts=1`: a restart never counts as a failure."""
    db = tmp_path / "r.db"
    ledger = Ledger()
    release = asyncio.Event()

    async def tool() -> str:
        key = ledger.record()
        if key.endswith(":1"):
            await release.wait()
        return key

    mode = pipeline("p", [tool_step("t", "tool")])

    async def scenario() -> Any:
        async with Runtime(db, modes=[mode], tools={"tool": tool}) as rt:
            await rt.run("c", None, mode="p", run_id="r")
            await until(lambda: ledger.keys["r:t:1"] == 1)
        async with Runtime(db, modes=[mode], tools={"tool": tool}) as rt:
            assert rt.recovery.restarted_runs == [("c", "r")]
            return await rt.wait("c", "r")

    final = arun(scenario())
    assert final.status is RunStatus.completed
    assert final.output["outputs"] == {"t": "r:t:2"}
    events = _events(db, "c")
    assert [type(e) for e in events][2:4] == [EffectLost, EffectStarted]
    assert (events[2].attempt, events[2].reason, events[3].attempt) == (1, RESTART_REASON, 2)


class _Stubborn:
    """An executor that does not honour a cancel (until the runtime closes)."""

    async def execute(self, effect: Effect) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(60)


def test_rt_8_an_interrupted_run_stays_interrupted_and_its_dead_effect_is_answered(
    tmp_path: Path,
) -> None:
    """A run interrupted before the process stopped, whose effect never answered its cancel,
    is still `interrupted` after recovery, with the step pending again (the dead effect gets its
    `effect_lost`); only a resume continues it, with a new attempt."""
    db = tmp_path / "r.db"
    mode = pipeline("p", [tool_step("t", "x")])

    async def scenario() -> None:
        async with Runtime(db, modes=[mode], executors={"tool": _Stubborn()}) as rt:
            handle = await rt.run("c", None, mode="p", run_id="r")
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.running)
            await handle.interrupt()
        async with Runtime(db, modes=[mode], tools={"x": lambda: "again"}) as rt:
            snapshot = rt.snapshot("c")
            assert snapshot.status is RunStatus.interrupted
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.pending)
            assert rt.recovery.restarted_runs == [("c", "r")]
            await rt.resume_run("c", "r")
            final = await rt.wait("c", "r")
            assert final.status is RunStatus.completed and final.steps[0].attempt == 2

    arun(scenario())


def test_rt_8_recovery_needs_no_authorization(tmp_path: Path) -> None:
    """Recovery acts for no principal: `effect_lost` is the runtime's own report, so even an
    authorizer that refuses everyone does not stop a lost effect from restarting."""
    db = tmp_path / "r.db"
    mode = pipeline("p", [tool_step("t", "x")])

    class Nobody:
        def allows(self, action: Any, principal: Any, run: Any) -> bool:
            return False

    async def scenario() -> Any:
        async with Runtime(db, modes=[mode], executors={"tool": _Stubborn()}) as rt:
            await rt.run("c", None, mode="p")
            await until(lambda: rt.snapshot("c").steps[0].status is StepStatus.running)
        async with Runtime(db, modes=[mode], authorizer=Nobody(), tools={"x": lambda: 1}) as rt:
            return await rt.wait("c", rt.snapshot("c").run_id)

    final = arun(scenario())
    assert final.status is RunStatus.completed and final.steps[0].attempt == 2


def test_rt_10_a_timer_restarted_after_a_crash_waits_only_the_rest(tmp_path: Path) -> None:
    """A timer whose process stopped halfway through waits, in the next process, only what is
    left until its first journaled start plus its seconds."""
    db = tmp_path / "r.db"
    mode = pipeline("p", [StepDefinition("wait", StepClass.timer, {"seconds": 0.4})])

    async def scenario() -> float:
        async with Runtime(db, modes=[mode]) as rt:
            await rt.run("c", None, mode="p", run_id="r")
            await asyncio.sleep(0.25)
        reopened = time.monotonic()
        async with Runtime(db, modes=[mode]) as rt:
            final = await rt.wait("c", "r")
            assert final.status is RunStatus.completed and final.steps[0].attempt == 2
        return time.monotonic() - reopened

    rest = arun(scenario())
    assert rest < 0.3, rest


_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from interruptible import Sequence, StepClass, StepDefinition, RunStatus
    from interruptible._runtime import Runtime, current_effect

    MODE = Sequence("p", tuple(
        StepDefinition(f"s{n}", StepClass.tool, {"name": "work", "arguments": {"n": n}})
        for n in range(4)
    ))

    async def work(n):
        with open(sys.argv[2], "a") as side:
            side.write(current_effect().idempotency_key + "\\n")
        await asyncio.sleep(0.3 if n == 2 and current_effect().attempt == 1 else 0)
        return n

    async def main():
        async with Runtime(sys.argv[1], modes=[MODE], tools={"work": work}) as rt:
            if sys.argv[3] == "start":
                handle = await rt.run("c", None, mode="p", run_id="r")
                while rt.snapshot("c").steps[-1].step_id != "s2":
                    await asyncio.sleep(0.01)
                print((await handle.interrupt()).status.value)
            else:
                print((await rt.resume_run("c", "r")).status.value)
                print((await rt.wait("c", "r")).status.value)

    asyncio.run(main())
    """
)


def test_rt_7_interrupt_in_one_process_and_resume_in_another(tmp_path: Path) -> None:
    """A run interrupted in one process is resumed by another process from the journal: it
    continues at the interrupted step with the same run id and completes; the steps finished
    before the interrupt never run again."""
    db, side = tmp_path / "r.db", tmp_path / "side.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def process(action: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _PROCESS, str(db), str(side), action],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert process("start") == ["interrupted"]
    assert process("resume") == ["running", "completed"]
    assert side.read_text().split() == ["r:s0:1", "r:s1:1", "r:s2:1", "r:s2:2", "r:s3:1"]


def test_rt_33_a_torn_record_shows_in_the_recovery_report(tmp_path: Path) -> None:
    """RT-33: a runtime opened on a journal with a torn record reports the journal's
    `RecoveryNote` in `rt.recovery.torn` (the other conversation is untouched)."""
    import interruptible
    from tests.journal.test_readonly import torn_journal

    db = tmp_path / "torn.db"
    torn_journal(db)

    async def scenario() -> None:
        async with Runtime(db, modes=[pipeline("pipeline", [tool_step("t", "x")])]) as rt:
            (note,) = rt.recovery.torn
            assert isinstance(note, interruptible.RecoveryNote)
            assert (note.conversation_id, note.last_good, note.first_bad) == ("c1", 3, 4)
            assert note.quarantined == 1
            assert "torn=1" in repr(rt.recovery)

    arun(scenario())


def test_rt_33_journals_are_public_and_imported_lazily() -> None:
    """RT-33: `interruptible.SQLiteJournal`, `MemoryJournal` and `RecoveryNote` are the journal
    package's classes, listed in `__all__`, and `import interruptible` imports no `sqlite3`."""
    import interruptible
    from interruptible import _journal

    for name in ("SQLiteJournal", "MemoryJournal", "RecoveryNote"):
        assert getattr(interruptible, name) is getattr(_journal, name)
        assert name in interruptible.__all__
    probe = (
        "import sys, interruptible; "
        "print(sorted({'sqlite3', 'interruptible._journal'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
