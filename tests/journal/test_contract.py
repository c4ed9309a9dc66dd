"""The journal protocol's contract (spec/journal.md), run unchanged against every journal."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interruptible import Event, JournalError, StaleWriterError, StepClass, StepDefinition
from interruptible._errors import StaleOwnerError
from interruptible._journal import (
    AppendBatch,
    Journal,
    MemoryJournal,
    PostgresJournal,
    SQLiteJournal,
    replay_parity,
    restore,
)
from tests._postgres import POSTGRES

from ._workload import coordinator, drive_conversation, some_events


def changed(**fields: object) -> Event:
    """A `c1` event with some fields replaced (to make it malformed)."""
    return dataclasses.replace(some_events("c1", 1)[0], **fields)  # type: ignore[arg-type]


class JournalContract:
    """The rules every journal obeys; a subclass says how to make one and a second writer."""

    def make(self, tmp_path: Path) -> Journal:
        raise NotImplementedError

    def second_writer(self, journal: Journal, tmp_path: Path) -> Journal:
        """Another writer on the same journal (a connection, or a thread sharing the object)."""
        raise NotImplementedError

    @pytest.fixture
    def journal(self, tmp_path: Path) -> Iterator[Journal]:
        journal = self.make(tmp_path)
        yield journal
        journal.close()

    # --- JRN-1: numbering ----------------------------------------------------------------

    def test_jrn_1_sequences_count_from_one_without_gaps(self, journal: Journal) -> None:
        """Each conversation's records are numbered 1, 2, 3, ...; append returns the new last."""
        assert journal.last_sequence("c1") == 0
        assert journal.append("c1", 0, some_events("c1", 2)) == 2
        assert journal.append("c1", 2, some_events("c1", 3, start=2)) == 5
        assert [r.sequence for r in journal.read("c1")] == [1, 2, 3, 4, 5]
        assert journal.last_sequence("c1") == 5

    def test_jrn_1_an_empty_append_is_a_fence_probe(self, journal: Journal) -> None:
        """Appending no event checks `expected_last`, returns it, and writes nothing."""
        assert journal.append("c1", 0, []) == 0
        assert journal.conversations() == []
        journal.append("c1", 0, some_events("c1", 1))
        assert journal.append("c1", 1, []) == 1
        with pytest.raises(StaleWriterError):
            journal.append("c1", 0, [])

    def test_jrn_1_conversations_are_listed_sorted(self, journal: Journal) -> None:
        """`conversations` lists each conversation with an event, sorted; each is numbered alone."""
        for cid in ("b", "a", "c"):
            journal.append(cid, 0, some_events(cid, 2))
        assert journal.conversations() == ["a", "b", "c"]
        assert [journal.last_sequence(cid) for cid in "abc"] == [2, 2, 2]

    # --- JRN-2: reading --------------------------------------------------------------------

    def test_jrn_2_read_returns_the_events_in_append_order(self, journal: Journal) -> None:
        """`read` yields exactly the appended events, equal to the originals, in order."""
        events = some_events("c1", 7)
        journal.append("c1", 0, events[:3])
        journal.append("c1", 3, events[3:])
        journal.append("c2", 0, some_events("c2", 2))
        records = list(journal.read("c1"))
        assert [r.event for r in records] == events
        assert {r.conversation_id for r in records} == {"c1"}

    def test_jrn_2_read_after_skips_the_known_prefix(self, journal: Journal) -> None:
        """`read(after=n)` yields the records with sequence > n; an unknown conversation none."""
        events = some_events("c1", 5)
        journal.append("c1", 0, events)
        assert [r.event for r in journal.read("c1", after=3)] == events[3:]
        assert list(journal.read("c1", after=5)) == []
        assert list(journal.read("nobody")) == []

    # --- JRN-3: fencing --------------------------------------------------------------------

    @pytest.mark.parametrize("expected_last", [0, 1, 3, 4])
    def test_jrn_3_a_stale_writer_is_refused_and_writes_nothing(
        self, journal: Journal, expected_last: int
    ) -> None:
        """An `expected_last` behind or ahead of the last sequence raises; nothing is written."""
        journal.append("c1", 0, some_events("c1", 2))
        with pytest.raises(StaleWriterError) as caught:
            journal.append("c1", expected_last, some_events("c1", 2, start=9))
        assert caught.value.conversation_id == "c1"
        assert journal.last_sequence("c1") == 2
        assert [r.event for r in journal.read("c1")] == some_events("c1", 2)

    def test_jrn_3_a_second_writer_is_fenced(self, journal: Journal, tmp_path: Path) -> None:
        """Two writers that both saw sequence 1: the first wins, the second's append fails."""
        journal.append("c1", 0, some_events("c1", 1))
        other = self.second_writer(journal, tmp_path)
        try:
            seen_by_first, seen_by_second = journal.last_sequence("c1"), other.last_sequence("c1")
            journal.append("c1", seen_by_first, some_events("c1", 1, start=1))
            with pytest.raises(StaleWriterError):
                other.append("c1", seen_by_second, some_events("c1", 1, start=50))
            assert other.last_sequence("c1") == 2
            # The fenced writer catches up by reading, then appends after what it missed.
            assert other.append("c1", 2, some_events("c1", 1, start=2)) == 3
            assert [r.event for r in journal.read("c1")] == some_events("c1", 3)
        finally:
            if other is not journal:
                other.close()

    def test_jrn_3_concurrent_writers_never_fork_a_history(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """Threads racing on one conversation: every event is written once, with no gap."""
        writers = [self.second_writer(journal, tmp_path) for _ in range(3)]
        failures: list[BaseException] = []

        def write(index: int, writer: Journal) -> None:
            try:
                for n in range(15):
                    event = some_events("c1", 1, start=index * 100 + n)
                    while True:
                        try:
                            writer.append("c1", writer.last_sequence("c1"), event)
                            break
                        except StaleWriterError:
                            continue
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=write, args=pair) for pair in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for writer in writers:
            if writer is not journal:
                writer.close()
        assert failures == []
        records = list(journal.read("c1"))
        assert [r.sequence for r in records] == list(range(1, 46))
        assert len({r.event.event_id for r in records}) == 45

    # --- JRN-4: group commit ---------------------------------------------------------------

    def test_jrn_4_append_many_is_all_or_nothing(self, journal: Journal) -> None:
        """One stale batch refuses the whole call: no batch's events are written."""
        journal.append("b", 0, some_events("b", 1))
        batches = [
            AppendBatch("a", 0, some_events("a", 2)),
            AppendBatch("b", 0, some_events("b", 1, start=5)),  # stale: b is at 1
        ]
        with pytest.raises(StaleWriterError) as caught:
            journal.append_many(batches)
        assert caught.value.conversation_id == "b"
        assert journal.conversations() == ["b"]
        assert journal.last_sequence("b") == 1

    def test_jrn_4_append_many_returns_each_new_last(self, journal: Journal) -> None:
        """Every batch is written; a conversation in several batches continues batch to batch."""
        journal.append("b", 0, some_events("b", 1))
        result = journal.append_many(
            [
                AppendBatch("a", 0, some_events("a", 2)),
                AppendBatch("b", 1, some_events("b", 1, start=1)),
                AppendBatch("a", 2, some_events("a", 1, start=2)),
                AppendBatch("c", 0, []),
            ]
        )
        assert result == [2, 2, 3, 0]
        assert [r.event for r in journal.read("a")] == some_events("a", 3)
        assert [r.event for r in journal.read("b")] == some_events("b", 2)
        assert journal.conversations() == ["a", "b"]

    def test_jrn_4_a_batch_of_500_conversations_is_one_call(self, journal: Journal) -> None:
        """The runtime's group commit: 500 conversations x 1 event in one `append_many`."""
        batches = [AppendBatch(f"c{i:03d}", 0, some_events(f"c{i:03d}", 1)) for i in range(500)]
        assert journal.append_many(batches) == [1] * 500
        assert len(journal.conversations()) == 500

    # --- JRN-8: closing --------------------------------------------------------------------

    def test_jrn_8_a_closed_journal_refuses_every_call(self, journal: Journal) -> None:
        """After `close`, every call raises `JournalError`; closing again is harmless."""
        journal.append("c1", 0, some_events("c1", 1))
        journal.close()
        journal.close()
        calls: list[Callable[[], object]] = [
            lambda: journal.append("c1", 1, some_events("c1", 1, start=1)),
            lambda: journal.append_many([AppendBatch("c1", 1, [])]),
            lambda: journal.read("c1"),
            lambda: journal.last_sequence("c1"),
            lambda: journal.conversations(),
        ]
        for call in calls:
            with pytest.raises(JournalError) as caught:
                call()
            assert caught.value.reason == "journal_closed"

    # --- JRN-10: refusals ------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("make_batch", "reason"),
        [
            (lambda: some_events("other", 1), "wrong_conversation"),
            (lambda: [StepDefinition("s", StepClass.tool)], "not_an_event"),
            (lambda: [changed(run_id="")], "malformed_event"),
            (lambda: [changed(at=math.nan)], "malformed_event"),
        ],
    )
    def test_jrn_10_a_bad_event_is_refused_and_nothing_written(
        self, journal: Journal, make_batch: object, reason: str
    ) -> None:
        """A foreign, non-event or malformed item refuses the batch (not as stale) and any call."""
        journal.append("c1", 0, some_events("c1", 1))
        bad = make_batch()  # type: ignore[operator]
        with pytest.raises(JournalError) as caught:
            journal.append("c1", 1, [*some_events("c1", 1, start=1), *bad])
        assert not isinstance(caught.value, StaleWriterError)
        assert caught.value.reason == reason
        with pytest.raises(JournalError):
            journal.append_many(
                [AppendBatch("c2", 0, some_events("c2", 1)), AppendBatch("c1", 1, bad)]
            )
        assert journal.conversations() == ["c1"]
        assert journal.last_sequence("c1") == 1

    @pytest.mark.parametrize(("cid", "expected_last"), [("", 0), (7, 0), ("c1", -1), ("c1", 1.0)])
    def test_jrn_10_a_bad_target_is_refused(
        self, journal: Journal, cid: object, expected_last: object
    ) -> None:
        """An empty or non-string conversation id, or a bad `expected_last`, is refused."""
        with pytest.raises(JournalError) as caught:
            journal.append(cid, expected_last, [])  # type: ignore[arg-type]
        assert not isinstance(caught.value, StaleWriterError)

    # --- JRN-12: replay --------------------------------------------------------------------

    def test_jrn_12_restore_matches_the_live_folds(self, journal: Journal) -> None:
        """Replaying the journal gives every conversation the state its live fold reached."""
        drivers = [drive_conversation(cid) for cid in ("alpha", "beta")]
        for driver in drivers:
            # Journal-first, as the runtime does it: each event is appended in the order reduced.
            for index, event in enumerate(driver.events):
                journal.append(driver.conversation_id, index, [event])
        states = restore(journal, coordinator())
        assert states == {d.conversation_id: d.state for d in drivers}

    def test_jrn_12_replay_parity_covers_the_directives(self, journal: Journal) -> None:
        """Replay yields the live run's directives too, in order; a different state is caught."""
        driver = drive_conversation("alpha")
        journal.append("alpha", 0, driver.events)
        parity = replay_parity(journal, coordinator(), "alpha", driver.state, driver.directives)
        assert parity.holds and parity.directives_match and parity.state_matches
        assert parity.events == len(driver.events)
        earlier = replay_parity(journal, coordinator(), "alpha", driver.outcomes[3].state)
        assert not earlier.holds and earlier.directives_match is None

    # --- ownership (spec/ownership.md) ------------------------------------------------------

    def owned(self, journal: Journal, owner: str = "h:1:a", cid: str = "c1") -> int:
        journal.register(owner, "h", 1, 1e12)
        return journal.claim(cid, owner, 0, reason="new", at=1.0).epoch

    def test_own_1_owners_are_numbered_by_epoch_and_kept(self, journal: Journal) -> None:
        """Claims number a conversation's owners 1, 2, ...; each names its predecessor and why."""
        assert journal.owner("c1") is None
        assert self.owned(journal) == 1
        journal.register("h:2:b", "h", 2, 5.0)
        taken = journal.claim("c1", "h:2:b", 1, reason="lease_expired", at=9.0)
        assert (taken.epoch, taken.owner_id, taken.previous_owner) == (2, "h:2:b", "h:1:a")
        assert (taken.reason, taken.taken_at, taken.host, taken.pid) == (
            "lease_expired",
            9.0,
            "h",
            2,
        )
        assert journal.owner("c1") == taken
        assert [r.owner_id for r in journal.ownership_history("c1")] == ["h:1:a", "h:2:b"]
        assert [r.conversation_id for r in journal.owners()] == ["c1"]

    def test_own_2_a_claim_is_a_compare_and_set_on_the_epoch(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """Of two claimants that saw the same epoch, one wins; the other changes nothing."""
        other = self.second_writer(journal, tmp_path)
        journal.register("h:1:a", "h", 1, 1e12)
        other.register("h:2:b", "h", 2, 1e12)
        journal.claim("c1", "h:1:a", 0, reason="new", at=1.0)
        with pytest.raises(StaleOwnerError):
            other.claim("c1", "h:2:b", 0, reason="new", at=1.0)
        assert journal.owner("c1") is not None
        assert [r.owner_id for r in other.ownership_history("c1")] == ["h:1:a"]
        with pytest.raises(JournalError) as caught:
            journal.claim("c2", "nobody", 0, reason="new", at=1.0)
        assert caught.value.reason == "no_lease" and journal.owner("c2") is None
        if other is not journal:
            other.close()

    def test_own_3_every_append_is_fenced_by_the_owner_epoch(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """Once owned, only the current epoch appends; a stale owner is refused even where its
        sequence fits, and nothing of its batch is written."""
        journal.append("c1", 0, some_events("c1", 1))  # never owned: epoch None appends
        epoch = self.owned(journal)
        with pytest.raises(StaleOwnerError):
            journal.append("c1", 1, some_events("c1", 1, start=1))
        assert journal.append("c1", 1, some_events("c1", 1, start=1), epoch=epoch) == 2
        journal.register("h:2:b", "h", 2, 1e12)
        journal.claim("c1", "h:2:b", epoch, reason="lease_expired", at=2.0)
        stale_owner = self.second_writer(journal, tmp_path)
        with pytest.raises(StaleOwnerError):
            stale_owner.append("c1", 2, some_events("c1", 1, start=2), epoch=epoch)
        with pytest.raises(StaleWriterError):
            stale_owner.append_many(
                [
                    AppendBatch("c2", 0, some_events("c2", 1)),
                    AppendBatch("c1", 2, some_events("c1", 1, start=2), epoch),
                ]
            )
        assert journal.last_sequence("c1") == 2 and journal.conversations() == ["c1"]
        assert journal.append("c1", 2, some_events("c1", 1, start=2), epoch=epoch + 1) == 3
        if stale_owner is not journal:
            stale_owner.close()

    def test_own_3_a_stale_owner_behind_the_sequence_is_told_it_lost_the_conversation(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """A stale owner whose sequence is also behind (the new owner has written since) gets
        `StaleOwnerError`, not a bare `StaleWriterError`: the epoch is checked first, so the
        writer lets the conversation go instead of fencing it for good (the model checker's
        finding, spec/verification.md)."""
        epoch = self.owned(journal)
        journal.append("c1", 0, some_events("c1", 1), epoch=epoch)
        journal.register("h:2:b", "h", 2, 1e12)
        journal.claim("c1", "h:2:b", epoch, reason="lease_expired", at=2.0)
        journal.append("c1", 1, some_events("c1", 1, start=1), epoch=epoch + 1)
        stale_owner = self.second_writer(journal, tmp_path)
        for write in (
            lambda: stale_owner.append("c1", 1, some_events("c1", 1, start=1), epoch=epoch),
            lambda: stale_owner.append_many(
                [AppendBatch("c1", 1, some_events("c1", 1, start=1), epoch, answers=[])]
            ),
        ):
            with pytest.raises(StaleOwnerError):
                write()
        assert journal.last_sequence("c1") == 2
        if stale_owner is not journal:
            stale_owner.close()

    def test_own_6_a_command_is_answered_with_its_events_once(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        """A command stays pending until an append carries its answer; the answer commits with
        the events, and a second answer (a stale owner's) is refused with its events."""
        epoch = self.owned(journal)
        sender = self.second_writer(journal, tmp_path)
        token = journal.change_token()
        first = sender.submit("c1", some_events("c1", 1)[0], 3.0)
        second = sender.submit("c1", some_events("c1", 2)[1], 4.0)
        assert journal.change_token() != token
        pending = journal.pending_commands()
        assert [(c.command_id, c.submitted_at) for c in pending] == [(first, 3.0), (second, 4.0)]
        assert pending[0].event == some_events("c1", 1)[0]
        assert journal.pending_commands(after=first) == pending[1:]
        assert journal.pending_commands(conversation_id="c2") == []
        journal.append_many(
            [AppendBatch("c1", 0, some_events("c1", 1), epoch, answers=[(first, '{"ok":1}')])]
        )
        answer = sender.answer(first)
        assert answer is not None and (answer.body, answer.epoch) == ('{"ok":1}', epoch)
        assert sender.answer(second) is None
        assert [c.command_id for c in journal.pending_commands()] == [second]
        with pytest.raises(StaleWriterError):
            journal.append_many(
                [
                    AppendBatch(
                        "c1", 1, some_events("c1", 1, start=1), epoch, answers=[(first, "{}")]
                    )
                ]
            )
        assert journal.last_sequence("c1") == 1
        if sender is not journal:
            sender.close()


class TestMemoryJournal(JournalContract):
    """The contract, for `MemoryJournal`."""

    def make(self, tmp_path: Path) -> Journal:
        return MemoryJournal()

    def second_writer(self, journal: Journal, tmp_path: Path) -> Journal:
        return journal  # threads share the object; the lock makes each call one step


class TestSQLiteJournal(JournalContract):
    """The contract, for `SQLiteJournal`; a second writer is a second connection to the file."""

    def make(self, tmp_path: Path) -> Journal:
        return SQLiteJournal(tmp_path / "journal.db")

    def second_writer(self, journal: Journal, tmp_path: Path) -> Journal:
        return SQLiteJournal(tmp_path / "journal.db")


class TestPostgresJournal(JournalContract):
    """The contract, for `PostgresJournal`; a second writer is a second connection to the same
    schema. Each test has a schema of its own, dropped after it."""

    @pytest.fixture
    def journal(self, tmp_path: Path) -> Iterator[PostgresJournal]:
        journal = self.make(tmp_path)
        yield journal
        journal.close()
        POSTGRES.drop_schema(journal.schema)

    def make(self, tmp_path: Path) -> PostgresJournal:
        return POSTGRES.journal()

    def second_writer(self, journal: Journal, tmp_path: Path) -> Journal:
        assert isinstance(journal, PostgresJournal)
        return POSTGRES.journal(journal.schema)
