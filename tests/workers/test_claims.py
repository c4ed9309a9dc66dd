"""The shared journal's side of workers (spec/workers.md): claims, activity markers,
notifications, the version 2 migration, and read-only opening; one process, several
connections, no worker process."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from interruptible import RunRequested
from interruptible._errors import JournalError, StaleOwnerError
from interruptible._journal import AppendBatch, PostgresJournal
from interruptible._journal._pg_listen import RESCAN, Listener
from interruptible._journal._pg_schema import MIGRATIONS, channel, quote
from interruptible._journal._records import encode_rows
from tests._postgres import POSTGRES
from tests.journal._workload import some_events


@pytest.fixture
def journal() -> Iterator[PostgresJournal]:
    journal = POSTGRES.journal()
    yield journal
    journal.close()
    POSTGRES.drop_schema(journal.schema)


def requested(cid: str, run_id: str = "r1") -> RunRequested:
    return RunRequested(f"e-{cid}-{run_id}", cid, run_id, "p", None, None, False, time.time())


def register(journal: PostgresJournal, owner: str, lease: float = 30.0) -> None:
    journal.register(owner, "test-host", 1, time.time() + lease)


def test_wrk_1_claims_are_disjoint_and_bounded_by_the_limit(journal: PostgresJournal) -> None:
    """WRK-1: two workers claiming at once, over and over, never claim the same conversation,
    and neither holds more than its limit of live ones (counted in the claim's transaction);
    a claim is an owner record with reason `new`."""
    for n in range(40):
        journal.submit(f"c{n}", requested(f"c{n}"), time.time())
    others = [POSTGRES.journal(journal.schema) for _ in range(2)]
    try:
        for name, other in zip(("A", "B"), others, strict=True):
            register(other, name)
        got: dict[str, list[str]] = {"A": [], "B": []}
        barrier = threading.Barrier(2)

        def claim(name: str, other: PostgresJournal) -> None:
            for _ in range(10):
                barrier.wait()
                rows = other.claim_work(name, limit=12, at=time.time(), max_claims=5)
                got[name] += [row.conversation_id for row in rows]

        threads = [
            threading.Thread(target=claim, args=(name, other))
            for name, other in zip(("A", "B"), others, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.close()
    assert len(got["A"]) == len(set(got["A"])) == 12
    assert len(got["B"]) == len(set(got["B"])) == 12
    assert not set(got["A"]) & set(got["B"])
    for name in ("A", "B"):
        for cid in got[name]:
            record = journal.owner(cid)
            assert record is not None
            assert (record.owner_id, record.epoch, record.reason) == (name, 1, "new")


def test_wrk_1_only_work_whose_owner_is_gone_is_claimed(journal: PostgresJournal) -> None:
    """WRK-1: a conversation with a live owner is not claimed, nor one without work; once the
    owner's lease is released, its active conversation is claimed with reason `released`, and
    once expired, with `lease_expired`."""
    register(journal, "A")
    register(journal, "B")
    for cid in ("busy", "idle", "expiring"):
        record = journal.claim(cid, "A", 0, reason="new", at=time.time())
        journal.append_many(
            [AppendBatch(cid, 0, some_events(cid, 1), record.epoch, (), cid != "idle")]
        )
    assert journal.claim_work("B", limit=10, at=time.time()) == []
    journal.release("A")
    claimed = journal.claim_work("B", limit=10, at=time.time())
    assert sorted((c.conversation_id, c.reason, c.epoch, c.active) for c in claimed) == [
        ("busy", "released", 2, True),
        ("expiring", "released", 2, True),
    ]
    # An expired lease (no release): C's conversation goes to B at the time past it.
    journal.register("C", "test-host", 1, time.time() + 1.0)
    record = journal.claim("later", "C", 0, reason="new", at=time.time())
    journal.append_many([AppendBatch("later", 0, some_events("later", 1), record.epoch, (), True)])
    assert journal.claim_work("B", limit=10, at=time.time()) == []
    claimed = journal.claim_work("B", limit=10, at=time.time() + 2.0)
    assert [(c.conversation_id, c.reason, c.previous_owner) for c in claimed] == [
        ("later", "lease_expired", "C")
    ]


def test_wrk_1_a_worker_without_a_live_lease_claims_nothing(journal: PostgresJournal) -> None:
    """WRK-1: a claimant whose lease expired (or never was) claims nothing."""
    journal.submit("c1", requested("c1"), time.time())
    assert journal.claim_work("nobody", limit=5, at=time.time()) == []
    journal.register("late", "test-host", 1, time.time() - 1.0)
    assert journal.claim_work("late", limit=5, at=time.time()) == []
    assert journal.owner("c1") is None


def test_wrk_2_the_marker_moves_with_the_events_under_the_fence(journal: PostgresJournal) -> None:
    """WRK-2: the activity marker is set in the transaction of its batch; an owner whose epoch
    moved can set it no more (StaleOwnerError), and the marker stays as the new owner has it."""
    register(journal, "A")
    record = journal.claim("c1", "A", 0, reason="new", at=time.time())
    journal.append_many([AppendBatch("c1", 0, some_events("c1", 2), record.epoch, (), True)])
    assert journal.active_conversations() == ["c1"]
    journal.mark("c1", record.epoch, False)
    assert journal.active_conversations() == []
    journal.mark("c1", record.epoch, True)
    journal.release("A")
    register(journal, "B")
    (taken,) = journal.claim_work("B", limit=5, at=time.time())
    assert taken.epoch == 2
    with pytest.raises(StaleOwnerError):
        journal.mark("c1", record.epoch, False)
    with pytest.raises(StaleOwnerError):
        journal.append_many([AppendBatch("c1", 2, some_events("c1", 1, 2), 1, (), False)])
    assert journal.active_conversations() == ["c1"]
    assert journal.last_sequence("c1") == 2


def test_wrk_4_notifications_of_commands_answers_and_releases(journal: PostgresJournal) -> None:
    """WRK-4: a listener hears `c <id>` when a command commits, `a <id>` when it is answered,
    `w` when a lease is released, `s <md5>` when a conversation's run settles, and, after its
    connection is cut, a rescan once it is back."""

    async def scenario() -> None:
        listener = journal.listener()
        listener.start()
        try:
            assert await listener.get(5.0) == [RESCAN]
            command_id = journal.submit("c1", requested("c1"), time.time())
            assert await listener.get(5.0) == [f"c {command_id}"]
            register(journal, "A")
            record = journal.claim("c1", "A", 0, reason="new", at=time.time())
            journal.append_many(
                [AppendBatch("c1", 0, [requested("c1")], record.epoch, [(command_id, "{}")])]
            )
            assert await listener.get(5.0) == [f"a {command_id}"]
            journal.release("A")
            assert await listener.get(5.0) == ["w"]
            journal.mark("c1", record.epoch, True)
            journal.mark("c1", record.epoch, False)  # its run settled: followers wake
            digest = hashlib.md5(b"c1", usedforsecurity=False).hexdigest()
            assert await listener.get(5.0) == [f"s {digest}"]
            assert await listener.get(0.05) == []
            with psycopg.connect(journal.dsn, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'interruptible listener' AND datname = "
                    "current_database()"
                )
            assert await listener.get(10.0) == [RESCAN]
            assert listener.connections == 2
        finally:
            await listener.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_wrk_4_each_schema_has_its_own_channel() -> None:
    """WRK-4: the channel is named after the schema, within PostgreSQL's 63 bytes."""
    assert channel("interruptible") != channel("other")
    assert len(channel("x" * 200)) <= 63
    assert isinstance(Listener("", channel("s"), 1.0).channel, str)


def _v1_schema(schema: str) -> None:
    """A version 1 journal, as the previous release made it, with an answered command."""
    s = quote(schema)
    with psycopg.connect(POSTGRES.require(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {s}".encode())
        for statement in MIGRATIONS[0]:
            conn.execute(statement.replace("{s}", s).encode())
        conn.execute(f"INSERT INTO {s}.meta VALUES ('schema_version', '1')".encode())
        columns = "conversation_id, sequence, type, body_text, crc, epoch"
        for cid in ("old1", "old2"):
            for row in encode_rows(cid, 0, some_events(cid, 2), None):
                conn.execute(
                    f"INSERT INTO {s}.events ({columns}) VALUES (%s, %s, %s, %s, %s, %s)".encode(),
                    row,
                )
        insert = f"INSERT INTO {s}.commands VALUES (%s, 'old1', 'run_requested', '{{}}', 0)"
        for command_id in (1, 2):
            conn.execute(insert.encode(), (command_id,))
        conn.execute(f"UPDATE {s}.command_counter SET last = 2".encode())
        conn.execute(f"INSERT INTO {s}.command_answers VALUES (1, NULL, '{{}}', 0)".encode())


def test_wrk_8_a_version_1_journal_is_migrated_on_open() -> None:
    """WRK-8: opening a version 1 journal to write brings it to version 2 in place: its events
    are kept, every conversation with events is marked active, an answered command is flagged
    answered and a pending one stays pending; reading it first (read-only) is refused with what
    to do, and changes nothing."""
    schema = POSTGRES.new_schema()
    _v1_schema(schema)
    try:
        with pytest.raises(JournalError) as caught:
            PostgresJournal(POSTGRES.require(), schema=schema, readonly=True)
        assert caught.value.reason == "schema_too_old"
        assert "interruptible worker" in caught.value.message
        journal = PostgresJournal(POSTGRES.require(), schema=schema)
        try:
            assert [r.sequence for r in journal.read("old1")] == [1, 2]
            assert journal.active_conversations() == ["old1", "old2"]
            with psycopg.connect(POSTGRES.require(), autocommit=True) as conn:
                flags = conn.execute(
                    f"SELECT command_id, answered FROM {quote(schema)}.commands "
                    "ORDER BY command_id".encode()
                ).fetchall()
                version = conn.execute(
                    f"SELECT value FROM {quote(schema)}.meta".encode()
                ).fetchone()
            assert flags == [(1, True), (2, False)]
            assert version == ("2",)
        finally:
            journal.close()
    finally:
        POSTGRES.drop_schema(schema)


def test_wrk_9_reading_opens_read_only_and_creates_nothing(journal: PostgresJournal) -> None:
    """WRK-9: a read-only journal reads, refuses every write, and a schema that holds no journal
    is refused without being created."""
    journal.append("c1", 0, some_events("c1", 2))
    reading = PostgresJournal(journal.dsn, schema=journal.schema, readonly=True)
    try:
        assert reading.conversations() == ["c1"]
        assert reading.find_run("r0") == "c1"
        assert reading.find_run("nope") is None
        with pytest.raises(JournalError):
            reading.append("c1", 2, some_events("c1", 1, 2))
    finally:
        reading.close()
    assert journal.last_sequence("c1") == 2
    missing = POSTGRES.new_schema()
    with pytest.raises(JournalError) as caught:
        PostgresJournal(journal.dsn, schema=missing, readonly=True)
    assert caught.value.reason == "no_journal"
    with psycopg.connect(journal.dsn, autocommit=True) as conn:
        found: Any = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (missing,)
        ).fetchone()
    assert found == (0,)


def test_wrk_1_a_stale_owners_answer_waits_for_no_claim(journal: PostgresJournal) -> None:
    """WRK-1, OWN-3: a write that carries only command answers locks its conversation's row as
    an event's insert would, so a claim that starts meanwhile waits for it to commit, and no
    answer ever commits under an epoch that has moved."""
    register(journal, "A", lease=0.2)
    journal.claim("x", "A", 0, reason="new", at=time.time())
    journal.append("x", 0, [requested("x")], epoch=1)
    claimant = POSTGRES.journal(journal.schema)
    try:
        register(claimant, "B")
        command = claimant.submit("x", requested("x", "r2"), time.time())
        time.sleep(0.3)  # A's lease has expired
        claimed_at: list[float] = []
        real = journal._first_stale

        def probe(conn: Any, targets: Any) -> Any:
            # B claims while A's check runs: it must wait for A's commit.
            thread = threading.Thread(
                target=lambda: (
                    claimant.claim("x", "B", 1, reason="lease_expired", at=time.time()),
                    claimed_at.append(time.monotonic()),
                )
            )
            thread.start()
            thread.join(0.3)
            assert thread.is_alive(), "the claim did not wait for the answer's transaction"
            probe.thread = thread  # type: ignore[attr-defined]
            return real(conn, targets)

        journal._first_stale = probe  # type: ignore[method-assign]
        journal.append_many([AppendBatch("x", 1, [], 1, [(command, '{"error": {}}')])])
        committed_at = time.monotonic()
        probe.thread.join(10)  # type: ignore[attr-defined]
        assert claimed_at and claimed_at[0] >= committed_at
        answer = journal.answer(command)
        assert answer is not None and answer.epoch == 1
        record = journal.owner("x")
        assert record is not None and (record.owner_id, record.epoch) == ("B", 2)
    finally:
        claimant.close()


def test_wrk_1_a_damaged_command_is_answered_and_is_no_work(journal: PostgresJournal) -> None:
    """WRK-1: a command that does not decode (a newer client's, a foreign writer's) is never
    acted on: it is answered with an `InvalidEventError`, so its sender learns it, and it no
    longer counts as work for any worker; a read-only journal only skips it."""
    s = quote(journal.schema)
    with psycopg.connect(journal.dsn, autocommit=True) as conn:
        conn.execute(
            f"WITH n AS (UPDATE {s}.command_counter SET last = last + 1 RETURNING last) "
            f"INSERT INTO {s}.commands (command_id, conversation_id, type, body, submitted_at) "
            "SELECT last, 'bad', 'run_requested_v9', '{\"type\": \"run_requested_v9\"}', 0 "
            "FROM n".encode()
        )
    reading = PostgresJournal(journal.dsn, schema=journal.schema, readonly=True)
    try:
        assert reading.pending_commands() == []
        assert reading.answer(1) is None
    finally:
        reading.close()
    assert journal.pending_commands() == []
    answer = journal.answer(1)
    assert answer is not None and '"InvalidEventError"' in answer.body
    assert "does not decode" in answer.body
    register(journal, "A")
    assert journal.claim_work("A", limit=5, at=time.time()) == []
