"""Rejoinable streams (spec/observability.md, OBS-6..OBS-10): a conversation's published items
read from its journal with their positions, then live, rejoined after any item without a gap or
a duplicate, in this process, from another process on the same SQLite file, and from a client
on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interruptible import EmitOutput, OwnerOrOperator, StreamItem, StreamPosition
from interruptible._errors import InterruptibleError, NotAuthorizedError
from interruptible._journal import Journal, SQLiteJournal
from interruptible._runtime import Runtime, Stream, follow
from tests._postgres import POSTGRES
from tests.observability.stream_app import TOOLS, streamed
from tests.runtime.support import arun

ROOT = Path(__file__).resolve().parents[2]
# When each rejoining client opened its first stream: a cross-process test checks that its
# clients were following while the other process still ran.
FIRST_SEEN: list[float] = []
CHILD = Path(__file__).with_name("stream_child.py")


async def read_to_end(stream: Stream, runs: int = 1) -> list[StreamItem]:
    """Every item until `runs` terminal outputs have been read."""
    items: list[StreamItem] = []
    ended = 0
    async for item in stream:
        items.append(item)
        if isinstance(item.directive, EmitOutput):
            ended += 1
            if ended == runs:
                break
    stream.close()
    return items


async def rejoining(
    open_stream: Callable[[int | StreamPosition], Stream],
    rng: random.Random,
    after: int | StreamPosition = 0,
) -> list[StreamItem]:
    """Read the conversation's items to its next run's end, dropping the connection after a
    random number of items each time and rejoining after the last item seen."""
    items: list[StreamItem] = []
    while True:
        stream = open_stream(after)
        if not items:
            FIRST_SEEN.append(time.time())
        budget = rng.randint(1, 7)
        ended = False
        async for item in stream:
            items.append(item)
            if isinstance(item.directive, EmitOutput):
                ended = True
                break
            budget -= 1
            if budget == 0:
                break
        stream.close()
        if ended:
            return items
        after = items[-1].position
        await asyncio.sleep(rng.choice((0, 0, 0.001, 0.005)))


def assert_whole(items: list[StreamItem], reference: list[StreamItem]) -> None:
    """No gap, no duplicate, in order: exactly the reference items."""
    positions = [item.position for item in items]
    assert positions == sorted(set(positions)), "positions repeat or go back"
    assert items == reference


def test_obs_6_a_stream_gives_what_a_live_subscription_got_with_journal_positions(
    tmp_path: Path,
) -> None:
    """OBS-6: `subscribe(cid, after=0)` read after the run gives exactly the directives a live
    `subscribe(cid)` got while it ran, in the same order; each item's position names the
    journal record whose folding published it, and positions only grow."""
    db = tmp_path / "j.db"

    async def scenario() -> tuple[list[object], list[StreamItem]]:
        mode = streamed(4)
        async with Runtime(db, modes=[mode], tools=TOOLS) as rt:
            live = rt.subscribe("c")
            handle = await rt.run("c", None, mode="streamed")
            await handle.wait(until="terminal")
            live.close()
            published = [directive async for directive in live]
            items = await read_to_end(rt.subscribe("c", after=0))
            return published, items

    published, items = arun(scenario())
    assert [item.directive for item in items] == published
    assert len(published) > 12  # lifecycle and progress of four steps, and the output
    journal = SQLiteJournal(db, readonly=True)
    try:
        sequences = {record.sequence for record in journal.read("c")}
    finally:
        journal.close()
    assert {item.position.sequence for item in items} <= sequences
    positions = [item.position for item in items]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert all(item.conversation_id == "c" for item in items)


def test_obs_7_after_skips_exactly_what_it_names(tmp_path: Path) -> None:
    """OBS-7: `after=` an item's position gives the items after it; `after=n` (a journal
    sequence) the items of the events after record n; a negative or non-integer `after`, or no
    conversation, is a `ValueError`."""

    async def scenario() -> None:
        async with Runtime(tmp_path / "j.db", modes=[streamed(3)], tools=TOOLS) as rt:
            handle = await rt.run("c", None, mode="streamed")
            await handle.wait(until="terminal")
            items = await read_to_end(rt.subscribe("c", after=0))
            for k in (0, 1, len(items) // 2, len(items) - 2):
                rest = await read_to_end(rt.subscribe("c", after=items[k].position))
                assert rest == items[k + 1 :]
            sequence = items[len(items) // 2].position.sequence
            rest = await read_to_end(rt.subscribe("c", after=sequence))
            assert rest == [item for item in items if item.position.sequence > sequence]
            for bad in (-1, 1.5, "3", StreamPosition(-1, 0)):
                with pytest.raises(ValueError):
                    rt.subscribe("c", after=bad)  # type: ignore[call-overload]
            with pytest.raises(ValueError, match="name the conversation"):
                rt.subscribe(None, after=0)  # type: ignore[call-overload]

    arun(scenario())


def test_obs_8_rejoining_under_load_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    """OBS-8: while 30 conversations step at once, a client per conversation drops its stream
    after a random number of items and rejoins after the last position it saw, over and over,
    from before its run starts to its end: what it read is exactly the conversation's items
    (no gap, no duplicate, in order). A stream of a conversation this runtime drives is woken
    by the writer: with a 10 s poll, following still keeps up."""
    rng = random.Random(16)

    async def scenario() -> None:
        mode = streamed(6)
        async with Runtime(tmp_path / "j.db", modes=[mode], tools=TOOLS) as rt:
            for n in range(30):  # the conversations exist before their clients join
                await rt.run(f"c{n}", {"warm": n}, mode="streamed", run_id=f"w{n}")
            for n in range(30):
                await rt.wait(f"c{n}", f"w{n}", until="terminal")
            firsts = [
                (await read_to_end(rt.subscribe(f"c{n}", after=0)))[-1].position for n in range(30)
            ]

            def opener(cid: str) -> Callable[[int | StreamPosition], Stream]:
                return lambda after: rt.subscribe(cid, after=after, poll=10.0)

            # The clients join after the first run's end, so they follow the second one live.
            clients = [
                asyncio.create_task(
                    rejoining(opener(f"c{n}"), random.Random(rng.random()), firsts[n])
                )
                for n in range(30)
            ]
            await asyncio.sleep(0.01)
            for n in range(30):
                await rt.run(f"c{n}", {"n": n}, mode="streamed", run_id=f"r{n}")
            results = await asyncio.wait_for(asyncio.gather(*clients), 30)
            for n, got in enumerate(results):
                reference = await read_to_end(rt.subscribe(f"c{n}", after=firsts[n]))
                assert_whole(got, reference)
                assert {item.directive.run_id for item in got} == {f"r{n}"}
                assert len(got) > 20

    arun(scenario(), timeout=60)


class Driver:
    """The other process: `stream_child.py`, driving `conversations` runs on `db`."""

    def __init__(self, db: str, conversations: int, steps: int) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), db, str(conversations), str(steps), str(PAUSE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "ready", self.proc.stderr.read() if self.proc.stderr else line

    def finish(self) -> None:
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        assert out.strip() == "done", out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)


CROSS_CONVERSATIONS = 5
CROSS_STEPS = 15
PAUSE = 0.01  # a run of the other process lasts about half a second: followed while it runs


def ended_at(journal: Journal, conversation_id: str) -> float:
    """When the conversation's run ended: the time of its last journaled event."""
    return [record.event.at for record in journal.read(conversation_id)][-1]


def test_obs_9_a_second_process_follows_a_sqlite_journal_read_only(tmp_path: Path) -> None:
    """OBS-9: while another process drives five runs on a SQLite file, this process follows
    each conversation with `follow(path, ...)` (a read-only journal: it never writes),
    rejoining after random numbers of items: each client reads exactly the items that a read
    of the finished journal gives, in order, with the same positions."""
    db = tmp_path / "j.db"
    mode = streamed(CROSS_STEPS, PAUSE)
    driver = Driver(str(db), CROSS_CONVERSATIONS, CROSS_STEPS)
    try:

        def opener(cid: str) -> Callable[[int | StreamPosition], Stream]:
            return lambda after: follow(db, cid, modes=[mode], after=after, poll=0.02)

        async def clients() -> list[list[StreamItem]]:
            rng = random.Random(9)
            return await asyncio.gather(
                *(
                    rejoining(opener(f"c{n}"), random.Random(rng.random()))
                    for n in range(CROSS_CONVERSATIONS)
                )
            )

        FIRST_SEEN.clear()
        results = arun(clients(), timeout=60)
        driver.finish()
    finally:
        driver.kill()
    journal = SQLiteJournal(db, readonly=True)
    try:  # every client joined while the other process was still running its run
        ends = [ended_at(journal, f"c{n}") for n in range(CROSS_CONVERSATIONS)]
    finally:
        journal.close()
    assert len(FIRST_SEEN) == CROSS_CONVERSATIONS and max(FIRST_SEEN) < min(ends)

    async def references() -> list[list[StreamItem]]:
        return [
            await read_to_end(follow(db, f"c{n}", modes=[mode])) for n in range(CROSS_CONVERSATIONS)
        ]

    for got, reference in zip(results, arun(references()), strict=True):
        assert_whole(got, reference)
        assert len(got) > 3 * CROSS_STEPS


def test_obs_9_a_client_on_postgresql_follows_what_another_process_drives() -> None:
    """OBS-9: on PostgreSQL, a `client` runtime (which drives nothing: its plain `subscribe`
    is refused) follows with `subscribe(cid, after=...)` the runs another process drives,
    rejoining after random numbers of items: exactly the journal's items, in order."""
    from interruptible._journal import PostgresJournal

    dsn = POSTGRES.require()
    schema = POSTGRES.new_schema()
    mode = streamed(CROSS_STEPS, PAUSE)
    driver = Driver(f"postgres:{schema}:{dsn}", CROSS_CONVERSATIONS, CROSS_STEPS)
    try:

        async def scenario() -> tuple[list[list[StreamItem]], list[list[StreamItem]]]:
            journal = PostgresJournal(dsn, schema=schema)
            try:
                async with Runtime(journal, modes=[mode], role="client") as client:
                    with pytest.raises(InterruptibleError) as caught:
                        client.subscribe("c0")
                    assert caught.value.reason == "client_role"

                    def opener(cid: str) -> Callable[[int | StreamPosition], Stream]:
                        return lambda after: client.subscribe(cid, after=after, poll=0.02)

                    rng = random.Random(10)
                    FIRST_SEEN.clear()
                    got = await asyncio.gather(
                        *(
                            rejoining(opener(f"c{n}"), random.Random(rng.random()))
                            for n in range(CROSS_CONVERSATIONS)
                        )
                    )
                    await asyncio.to_thread(driver.finish)
                    ends = [ended_at(journal, f"c{n}") for n in range(CROSS_CONVERSATIONS)]
                    assert max(FIRST_SEEN) < min(ends)  # joined while the runs went on
                    reference = [
                        await read_to_end(client.subscribe(f"c{n}", after=0))
                        for n in range(CROSS_CONVERSATIONS)
                    ]
                    return got, reference
            finally:
                journal.close()

        results, references = arun(scenario(), timeout=90)
    finally:
        driver.kill()
        POSTGRES.drop_schema(schema)
    for got, reference in zip(results, references, strict=True):
        assert_whole(got, reference)
        assert len(got) > 3 * CROSS_STEPS


def test_obs_10_a_stream_reads_only_what_its_principal_may_read(tmp_path: Path) -> None:
    """OBS-10: a stream made with `principal=` is refused when the authorizer refuses the
    conversation (`NotAuthorizedError`), and otherwise delivers only the items of the runs the
    principal may read (OwnerOrOperator: its own runs); closing the runtime ends its streams."""

    class NoStrangers(OwnerOrOperator):
        def allows_read(self, principal, conversation_id, run):  # type: ignore[no-untyped-def]
            if principal == "stranger":
                return False
            return super().allows_read(principal, conversation_id, run)

    async def scenario() -> None:
        mode = streamed(2)
        rt = Runtime(tmp_path / "j.db", modes=[mode], tools=TOOLS, authorizer=NoStrangers())
        async with rt:
            first = await rt.run("c", None, mode="streamed", principal="alice")
            await first.wait(until="terminal")
            second = await rt.run("c", None, mode="streamed", principal="bob")
            await second.wait(until="terminal")
            with pytest.raises(NotAuthorizedError):
                rt.subscribe("c", after=0, principal="stranger")
            alice = await read_to_end(rt.subscribe("c", after=0, principal="alice"))
            assert alice and {item.directive.run_id for item in alice} == {first.run_id}
            everything = await read_to_end(rt.subscribe("c", after=0), runs=2)
            assert [i for i in everything if i.directive.run_id == first.run_id] == alice
            waiting = rt.subscribe("c", after=everything[-1].position)
            reader = asyncio.create_task(read_to_end(waiting))
            await asyncio.sleep(0.01)
        assert await asyncio.wait_for(reader, 5) == []

    arun(scenario())
