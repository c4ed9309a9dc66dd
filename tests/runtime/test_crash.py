"""The crash test: a child process is SIGKILLed at random moments, again and again (RT-8)."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from interruptible import Coordinator, RunStatus
from interruptible._journal import SQLiteJournal
from tests.runtime.crash_child import MODE
from tests.runtime.support import check_journal

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("INTERRUPTIBLE_CRASH_KILLS", "50"))
CONVERSATIONS = 6


def _spawn(db: Path, side: Path, seed: int, mode: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(side), str(seed), str(CONVERSATIONS), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait_for_line(process: subprocess.Popen[bytes], text: bytes, timeout: float) -> bool:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            return False
        line = process.stdout.readline()
        if not line:
            return False
        if line.strip() == text:
            return True
    return False


def test_rt_8_sigkill_at_random_moments_then_recover_and_resume(tmp_path: Path) -> None:
    """A child drives pipelines (tools, a system step, a human gate, a timer) on a SQLite journal
    with random interrupts and resumes and is SIGKILLed at 50 random moments (during recovery,
    between steps, inside effects, between an interrupt and its resume); after each kill a new
    process recovers the journal and goes on. At the end, from the journal: every run reached
    exactly one terminal status (all `completed`: a restart never counts as a failure), no step
    with a kept result ran again, no step attempt ran twice (idempotency keys in a side file),
    and the journal is intact (every record whole, nothing quarantined)."""
    db = tmp_path / "crash.db"
    side = tmp_path / "executions.txt"
    rng = random.Random(20240601)
    started = time.monotonic()
    for kill in range(KILLS):
        child = _spawn(db, side, kill, "work")
        if rng.random() < 0.85:
            assert _wait_for_line(child, b"ready", 20), child.stderr.read() if child.stderr else ""
            time.sleep(rng.uniform(0.0, 0.15))
        else:
            time.sleep(rng.uniform(0.05, 0.35))  # maybe while importing, folding or recovering
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL, (
            kill,
            child.stderr.read() if child.stderr else "",
        )
    final = _spawn(db, side, 10_000, "finish")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0 and b"finished" in out, err.decode()[-3000:]

    journal = SQLiteJournal(db)
    try:
        assert journal.verify() == [] and journal.quarantined() == []
        facts = check_journal(journal, Coordinator([MODE]))
    finally:
        journal.close()
    facts.assert_ok(all_terminal=True)
    statuses = Counter(facts.runs.values())
    assert set(statuses) == {RunStatus.completed}, statuses
    assert statuses[RunStatus.completed] >= CONVERSATIONS

    executions = Counter(side.read_text().split())
    twice = [key for key, n in executions.items() if n > 1]
    assert not twice, f"step attempts executed more than once: {twice[:5]}"
    for key in executions:
        run_id, step_id, attempt = key.rsplit(":", 2)
        cid = run_id.split("-r")[0]
        kept_attempt = facts.kept.get((cid, run_id, step_id))
        assert kept_attempt is None or int(attempt) <= kept_attempt, (
            f"{key} ran after its kept attempt {kept_attempt}"
        )
    for (_cid, run_id, step_id), kept_attempt in facts.kept.items():
        if step_id in ("fetch", "enrich", "store"):
            assert executions[f"{run_id}:{step_id}:{kept_attempt}"] == 1
    restarts = sum(1 for key in executions if not key.endswith(":1"))
    print(
        f"{KILLS} kills, {len(facts.runs)} runs, {facts.events} events, {len(executions)} tool "
        f"attempts ({restarts} after a restart or interrupt), {time.monotonic() - started:.1f}s"
    )
