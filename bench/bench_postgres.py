"""PostgresJournal write and replay costs, each against a bare PostgreSQL statement on the same
server, measured in the same run.

(a) baseline: one bare INSERT of a record-sized row + COMMIT (autocommit, synchronous_commit on)
    into a plain table keyed like `events`, from psycopg on the same kind of connection.
(b) `PostgresJournal.append` of one event (synchronous_commit on): goal within 1.5x of (a).
    (a) and (b) alternate commit by commit and each reports its median, so both meet the same
    disk (an fsync's cost drifts by 10x on a shared machine). The same pair with
    synchronous_commit off shows the journal's own cost without the fsync.
(c) `append_many` of 500 conversations x 1 event (one statement, one commit) vs 500 separate
    appends: goal aggregate throughput >= 5x; and against a bare 500-row INSERT + COMMIT of the
    same rows, alternating round by round (what the fences, the trigger and jsonb cost a group
    commit).
(d) reading a 100,000-event journal (read + decode, every record checked) against the floor of
    reading with psycopg and the standard library (fetch the same bodies, page by page, and
    `json.loads` each, nothing checked or built): goal at least half the floor's rate; `restore`
    (read + decode + reduce) is printed too.

It needs a PostgreSQL server: `INTERRUPTIBLE_BENCH_POSTGRES` (a libpq connection string of a
user that may create databases; default: 127.0.0.1:5432, user postgres). It creates a database
with a random name and drops it at the end; with no server it says so and exits 0. Run:
`python bench/bench_postgres.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
import zlib
from collections.abc import Callable

from bench_journal import MODE, REPLAY_CONVERSATIONS, _rename, conversation_events
from interruptible import Coordinator, Event, RunRequested, dumps, type_name
from interruptible._journal import AppendBatch, restore

BATCH = 500
REPLAY_EVENTS = 100_000
ADMIN_DSN = os.environ.get(
    "INTERRUPTIBLE_BENCH_POSTGRES",
    "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3",
)


def best_of_three(run: Callable[[int], float]) -> float:
    return min(run(attempt) for attempt in range(3))


def bare_table(conn: object, name: str) -> None:
    conn.execute(  # type: ignore[attr-defined]
        f'CREATE TABLE {name} (conversation_id text COLLATE "C", sequence bigint, type text, '
        "body_text text, crc bigint, PRIMARY KEY (conversation_id, sequence))".encode()
    )


def synced_commits(dsn: str, n: int, events: list[Event], sync: str) -> tuple[float, float]:
    """Median seconds of one bare INSERT + COMMIT and of one `append`, alternating, both with
    `synchronous_commit` = `sync`."""
    import psycopg

    from interruptible._journal import PostgresJournal

    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f"SET synchronous_commit TO {sync}".encode())
    bare_table(conn, f"bare_one_{sync}")
    journal = PostgresJournal(dsn, schema=f"bench_one_{sync}", synchronous_commit=sync)  # type: ignore[arg-type]
    insert = f"INSERT INTO bare_one_{sync} VALUES (%s, %s, %s, %s, %s)".encode()
    bare_times, append_times = [], []
    clock = time.perf_counter
    for k in range(n):
        event = events[k % len(events)]
        body = dumps(event)
        start = clock()
        conn.execute(insert, ("c1", k + 1, type_name(event), body, zlib.crc32(body.encode())))
        middle = clock()
        journal.append("c1", k, (event,))
        end = clock()
        bare_times.append(middle - start)
        append_times.append(end - middle)
    conn.close()
    journal.close()
    return statistics.median(bare_times), statistics.median(append_times)


def group_vs_separate(dsn: str, rounds: int) -> tuple[float, float, float]:
    """Seconds per event: `append_many` of 500 one-event batches and a bare 500-row INSERT +
    COMMIT of the same rows (alternating round by round, medians), and 500 separate appends
    (best of three)."""
    import psycopg

    from interruptible._journal import PostgresJournal

    event_sets = [
        [RunRequested("e0", f"c{c}", f"c{c}-r{r}", "bench", None, "alice") for c in range(BATCH)]
        for r in range(rounds)
    ]
    journal = PostgresJournal(dsn, schema="bench_group")
    conn = psycopg.connect(dsn, autocommit=True)
    bare_table(conn, "bare_group")
    statement = (
        b"INSERT INTO bare_group SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], "
        b"%s::text[], %s::bigint[])"
    )
    grouped_times, bare_times = [], []
    clock = time.perf_counter
    for r, events in enumerate(event_sets):
        start = clock()
        bodies = [dumps(e) for e in events]
        conn.execute(
            statement,
            (
                [e.conversation_id for e in events],
                [r + 1] * len(events),
                [type_name(e) for e in events],
                bodies,
                [zlib.crc32(body.encode()) for body in bodies],
            ),
        )
        middle = clock()
        journal.append_many([AppendBatch(e.conversation_id, r, (e,)) for e in events])
        end = clock()
        bare_times.append((middle - start) / BATCH)
        grouped_times.append((end - middle) / BATCH)
    conn.close()
    journal.close()

    def separate(attempt: int) -> float:
        journal = PostgresJournal(dsn, schema=f"bench_separate{attempt}")
        start = time.perf_counter()
        for event in event_sets[0]:
            journal.append(event.conversation_id, 0, (event,))
        elapsed = time.perf_counter() - start
        journal.close()
        return elapsed / BATCH

    return (
        statistics.median(grouped_times),
        best_of_three(separate),
        statistics.median(bare_times),
    )


def replay_rates(dsn: str, total: int) -> tuple[float, float, float]:
    """Events/s of `restore`, of reading alone (read + decode) and of the floor of reading
    (fetch the same pages + `json.loads`)."""
    import psycopg

    from interruptible._journal import PostgresJournal

    per_conversation = total // REPLAY_CONVERSATIONS
    coordinator = Coordinator([MODE])
    journal = PostgresJournal(dsn, schema="bench_replay", synchronous_commit="off")
    template = conversation_events("t", per_conversation)
    batches = []
    for c in range(REPLAY_CONVERSATIONS):
        cid = f"conv-{c:05d}"
        batches.append(AppendBatch(cid, 0, [_rename(event, cid) for event in template]))
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

    def read_only(_: int) -> float:
        start = time.perf_counter()
        for cid in journal.conversations():
            for _record in journal.read(cid):
                pass
        return (time.perf_counter() - start) / n

    def parse_floor(_: int) -> float:
        conn = psycopg.connect(dsn, autocommit=True)
        query = (
            b"SELECT sequence, body_text FROM bench_replay.events WHERE conversation_id = %s "
            b"AND sequence > %s ORDER BY sequence LIMIT 1024"
        )
        loads = json.loads
        start = time.perf_counter()
        for cid in journal.conversations():
            after = 0
            while True:
                rows = conn.execute(query, (cid, after)).fetchall()
                for _, body in rows:
                    loads(body)
                if len(rows) < 1024:
                    break
                after = rows[-1][0]
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed / n

    rates = (
        1 / best_of_three(full),
        1 / best_of_three(read_only),
        1 / best_of_three(parse_floor),
    )
    journal.close()
    return rates


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo
    except ImportError:
        print("skipped: psycopg is not installed (pip install -e '.[postgres]')")
        return
    name = f"interruptible_bench_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} ENCODING 'UTF8'".encode())
            version = admin.info.parameter_status("server_version")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [repr(exc)])[0]
        print(f"skipped: no PostgreSQL server ({first}); set INTERRUPTIBLE_BENCH_POSTGRES")
        return
    dsn = make_conninfo(ADMIN_DSN, dbname=name)
    try:
        print(f"database {name}; python {sys.version.split()[0]}, PostgreSQL {version}")
        events = conversation_events("c1", 40)
        base, single = synced_commits(dsn, 400 // scale, events, "on")
        base_off, single_off = synced_commits(dsn, 4000 // scale, events, "off")
        grouped, separate, bare = group_vs_separate(dsn, max(40 // scale, 4))
        replay, read, floor = replay_rates(dsn, REPLAY_EVENTS // scale)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    print(f"(a) bare INSERT + COMMIT             {base * 1e6:10.1f} us/commit   baseline (median)")
    print(
        f"(b) append 1 event                   {single * 1e6:10.1f} us/append   (median) "
        f"{single / base:5.2f}x baseline   goal <= 1.5x: {verdict(single <= 1.5 * base)}"
    )
    print(
        f"    the same, synchronous_commit=off {single_off * 1e6:10.1f} us/append   vs bare "
        f"{base_off * 1e6:.1f} us = {single_off / base_off:.2f}x (the journal's own cost)"
    )
    ratio = separate / grouped
    print(
        f"(c) append_many 500 x 1 (one commit) {1 / grouped:10,.0f} events/s   "
        f"vs 500 appends {1 / separate:,.0f} events/s = {ratio:.1f}x   "
        f"goal >= 5x: {verdict(ratio >= 5)}"
    )
    print(
        f"    bare 500-row INSERT + COMMIT     {1 / bare:10,.0f} events/s   "
        f"append_many costs {grouped / bare:.2f}x it (the fences, the trigger, jsonb)"
    )
    print(
        f"(d) read + decode (checked, JRN-6)   {read:10,.0f} events/s   vs fetch + json.loads "
        f"{floor:,.0f} events/s = {read / floor:.2f}x   goal >= 0.5x: {verdict(read >= floor / 2)}"
    )
    print(
        f"    restore (read + decode + reduce) {replay:10,.0f} events/s   (reduce is the core's, "
        "as for SQLite: bench_journal.py)"
    )


if __name__ == "__main__":
    main()
