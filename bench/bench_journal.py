"""Journal write and replay costs, each against a bare SQLite commit measured in the same run.

(a) baseline: one bare synced commit, an INSERT of a record-sized row + COMMIT, WAL, FULL.
(b) `SQLiteJournal.append` of one event, synchronous=FULL: goal within 1.5x of (a). (a) and (b)
    alternate commit by commit and each reports its median, so both meet the same disk.
(c) the same with synchronous=NORMAL, in events/s: goal >= 40,000.
(d) `append_many` of 500 conversations x 1 event per commit vs 500 separate appends (FULL):
    goal aggregate throughput >= 5x.
(e) `restore`: decode + reduce of a 100,000-event journal, in events/s: goal >= 150,000; the
    decode-only and reduce-only rates are printed too, to show where the time goes, and the floor
    of reading with the standard library (fetch the rows, `json.loads` each body) with what the
    goal then leaves for `reduce`.

The machines are shared and noisy, so every other figure is the best of three runs. Files go to
a temp dir (`--dir` picks its parent: the fsync cost is the file system's). Run:
`python bench/bench_journal.py [--dir DIR] [--quick]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from interruptible import (
    Coordinator,
    EffectCanceled,
    EffectCompleted,
    EffectProgress,
    EffectStarted,
    Event,
    InterruptRequested,
    ResumeRequested,
    RunRequested,
    Sequence,
    StepClass,
    StepDefinition,
    dumps,
    initial_state,
)
from interruptible._journal import AppendBatch, SQLiteJournal, restore

STEPS = 3
BATCH = 500  # conversations per group commit, the runtime's batch
REPLAY_CONVERSATIONS = 1_000
REPLAY_EVENTS = 100_000

MODE = Sequence(
    "bench", tuple(StepDefinition(f"s{i}", StepClass.tool, {"i": i}) for i in range(STEPS))
)


def conversation_events(cid: str, count: int) -> list[Event]:
    """`count` events of one conversation: 3-step runs, progress, an interrupt every third step."""
    coordinator = Coordinator([MODE])
    state = initial_state()
    events: list[Event] = []

    def send(event: Event) -> None:
        nonlocal state
        events.append(event)
        state = coordinator.reduce(state, event).state

    run = 0
    while len(events) < count:
        run += 1
        rid = f"{cid}-r{run}"
        send(RunRequested(f"e{len(events)}", cid, rid, "bench", {"q": run}, "alice"))
        for i in range(STEPS):
            step, eid = f"s{i}", f"{rid}/s{i}/1"
            send(EffectStarted(f"e{len(events)}", cid, rid, step, eid, 1))
            send(EffectProgress(f"e{len(events)}", cid, rid, step, eid, 1, 1, {"pct": 50}))
            if i == 1:
                send(InterruptRequested(f"e{len(events)}", cid, rid, principal="alice"))
                send(EffectCanceled(f"e{len(events)}", cid, rid, step, eid, 1))
                send(ResumeRequested(f"e{len(events)}", cid, rid, principal="alice"))
                eid = f"{rid}/{step}/2"
                send(EffectStarted(f"e{len(events)}", cid, rid, step, eid, 2))
                send(EffectCompleted(f"e{len(events)}", cid, rid, step, eid, 2, {"ok": i}))
            else:
                send(EffectCompleted(f"e{len(events)}", cid, rid, step, eid, 1, {"ok": i}))
    return events[:count]


def best_of_three(run: Callable[[int], float]) -> float:
    """The smallest of three measurements (seconds per unit)."""
    return min(run(attempt) for attempt in range(3))


def synced_commits(directory: str, n: int, body: str, events: list[Event]) -> tuple[float, float]:
    """Median seconds of one bare INSERT + COMMIT and of one `append`, both WAL + FULL.

    The two alternate, commit by commit, so both meet the same disk: an fsync's cost swings by
    10x on a shared machine, and two runs minutes apart would compare the weather.
    """
    conn = sqlite3.connect(os.path.join(directory, "bare.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    journal = SQLiteJournal(os.path.join(directory, "full.db"), synchronous="FULL")
    bare_times, append_times = [], []
    clock = time.perf_counter
    for k in range(n):
        start = clock()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, body))
        conn.execute("COMMIT")
        middle = clock()
        journal.append("c1", k, (events[k % len(events)],))
        end = clock()
        bare_times.append(middle - start)
        append_times.append(end - middle)
    conn.close()
    journal.close()
    return statistics.median(bare_times), statistics.median(append_times)


def single_appends(directory: str, name: str, n: int, sync: str, events: list[Event]) -> float:
    """Seconds per `append` of one event to one conversation (best of three runs)."""

    def run(attempt: int) -> float:
        path = os.path.join(directory, f"{name}{attempt}.db")
        journal = SQLiteJournal(path, synchronous=sync)  # type: ignore[arg-type]
        append = journal.append
        start = time.perf_counter()
        for i in range(n):
            append("c1", i, (events[i % len(events)],))
        elapsed = time.perf_counter() - start
        journal.close()
        return elapsed / n

    return best_of_three(run)


def group_vs_separate(directory: str, rounds: int) -> tuple[float, float]:
    """Seconds per event: `append_many` of 500 one-event batches vs 500 separate appends."""
    event_sets = [
        [RunRequested("e0", f"c{c}", f"c{c}-r{r}", "bench", None, "alice") for c in range(BATCH)]
        for r in range(rounds)
    ]

    def grouped(attempt: int) -> float:
        journal = SQLiteJournal(os.path.join(directory, f"group{attempt}.db"))
        start = time.perf_counter()
        for r, events in enumerate(event_sets):
            journal.append_many([AppendBatch(e.conversation_id, r, (e,)) for e in events])
        elapsed = time.perf_counter() - start
        journal.close()
        return elapsed / (rounds * BATCH)

    def separate(attempt: int) -> float:
        journal = SQLiteJournal(os.path.join(directory, f"separate{attempt}.db"))
        start = time.perf_counter()
        for event in event_sets[0]:
            journal.append(event.conversation_id, 0, (event,))
        elapsed = time.perf_counter() - start
        journal.close()
        return elapsed / BATCH

    return best_of_three(grouped), best_of_three(separate)


def replay_rates(directory: str, total: int) -> tuple[float, float, float, float]:
    """Events/s of `restore` (decode + reduce), of reading alone, of reducing alone, and of the
    standard library's floor for reading (fetch + `json.loads`)."""
    per_conversation = total // REPLAY_CONVERSATIONS
    coordinator = Coordinator([MODE])
    journal = SQLiteJournal(os.path.join(directory, "replay.db"), synchronous="NORMAL")
    template = conversation_events("t", per_conversation)
    batches = []
    for c in range(REPLAY_CONVERSATIONS):
        cid = f"conv-{c:05d}"
        # Same shape in every conversation; only the ids differ, as in a real journal.
        events = [_rename(event, cid) for event in template]
        batches.append(AppendBatch(cid, 0, events))
        if len(batches) == 50:
            journal.append_many(batches)
            batches = []
    if batches:
        journal.append_many(batches)
    n = REPLAY_CONVERSATIONS * per_conversation

    def full(_: int) -> float:
        start = time.perf_counter()
        states = restore(journal, coordinator)
        elapsed = time.perf_counter() - start
        assert len(states) == REPLAY_CONVERSATIONS
        return elapsed / n

    decoded: list[list[Event]] = []

    def read_only(_: int) -> float:
        decoded.clear()
        start = time.perf_counter()
        for cid in journal.conversations():
            decoded.append([record.event for record in journal.read(cid)])
        return (time.perf_counter() - start) / n

    def reduce_only(_: int) -> float:
        reduce = coordinator.reduce
        start = time.perf_counter()
        for events in decoded:
            state = initial_state()
            for event in events:
                state = reduce(state, event).state
        return (time.perf_counter() - start) / n

    path = os.path.join(directory, "replay.db")

    def parse_floor(_: int) -> float:
        # The standard library's floor for the read half: fetch the same rows and `json.loads`
        # each body, with no check, no event built and nothing reduced.
        conn = sqlite3.connect(path)
        query = "SELECT body FROM events WHERE conversation_id = ? ORDER BY sequence"
        loads = json.loads
        start = time.perf_counter()
        for cid in journal.conversations():
            for (body,) in conn.execute(query, (cid,)).fetchall():
                loads(body)
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed / n

    rates = (
        1 / best_of_three(full),
        1 / best_of_three(read_only),
        1 / best_of_three(reduce_only),
        1 / best_of_three(parse_floor),
    )
    journal.close()
    return rates


def _rename(event: Event, cid: str) -> Event:
    """The event moved to conversation `cid`, its run and effect ids with it."""
    fields = {"conversation_id": cid, "run_id": event.run_id.replace("t-", f"{cid}-", 1)}
    effect_id = getattr(event, "effect_id", None)
    if effect_id is not None:
        fields["effect_id"] = effect_id.replace("t-", f"{cid}-", 1)
    return dataclasses.replace(event, **fields)  # type: ignore[arg-type]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="parent of the temp dir (default: system)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    events = conversation_events("c1", 40)
    body = dumps(events[1])
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-journal-") as directory:
        python = sys.version.split()[0]
        print(f"files in {directory}; python {python}, sqlite {sqlite3.sqlite_version}")
        base, full = synced_commits(directory, 400 // scale, body, events)
        normal = single_appends(directory, "normal", 20_000 // scale, "NORMAL", events)
        grouped, separate = group_vs_separate(directory, max(20 // scale, 2))
        replay, read, reduce, floor = replay_rates(directory, REPLAY_EVENTS // scale)

    print(f"(a) bare synced commit (WAL, FULL)   {base * 1e6:10.1f} us/commit   baseline (median)")
    print(
        f"(b) append 1 event, FULL             {full * 1e6:10.1f} us/append   (median) "
        f"{full / base:5.2f}x baseline   goal <= 1.5x: {verdict(full <= 1.5 * base)}"
    )
    print(
        f"(c) append 1 event, NORMAL           {1 / normal:10,.0f} events/s   "
        f"{normal * 1e6:5.1f} us/append   goal >= 40,000: {verdict(1 / normal >= 40_000)}"
    )
    ratio = separate / grouped
    print(
        f"(d) append_many 500 x 1 (one commit) {1 / grouped:10,.0f} events/s   "
        f"vs 500 appends {1 / separate:,.0f} events/s = {ratio:.1f}x   "
        f"goal >= 5x: {verdict(ratio >= 5)}"
    )
    print(
        f"(e) restore (decode + reduce)        {replay:10,.0f} events/s   "
        f"goal >= 150,000: {verdict(replay >= 150_000)}"
    )
    print(f"    read + decode only               {read:10,.0f} events/s")
    print(f"    reduce only                      {reduce:10,.0f} events/s")
    # What the goal leaves for `reduce` once reading costs no more than the floor.
    left = 1e6 / 150_000 - 1e6 / floor
    print(
        f"    floor of reading: fetch + json.loads {floor:10,.0f} events/s: at 150,000/s it leaves "
        f"{left:.1f} us/event for reduce (reduce takes {1e6 / reduce:.1f})"
    )


if __name__ == "__main__":
    main()
