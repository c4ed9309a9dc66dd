"""The ownership rules of `JournalConformance`: two writers interleaved at random (OWN-1 to 6).

Two writers, `A` and `B`, share the journal under test (the same object, or a second handle
from `make_second_writer`, e.g. another connection to the same file). Each claims conversations
with the epoch it last looked at, appends with the epoch it believes it holds, submits commands
and answers them with its appends, in any interleaving Hypothesis finds; a model says what the
journal must do with each call. The case this is for: a writer that lost a conversation and
still appends with sequence numbers that fit, which only the epoch fence refuses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .._errors import StaleOwnerError, StaleWriterError
from .._journal import AppendBatch, Journal
from .._vocabulary import Event
from .strategies import events as any_events

_WRITERS = ("A", "B")


class OwnershipRules(RuleBasedStateMachine):
    """Ownership, fencing and commands, against a model (mixed into `JournalConformance`)."""

    owned_conversations: ClassVar[tuple[str, ...]] = ("o1", "o2")
    journal: Journal
    model: dict[str, list[Event]]

    def make_second_writer(self, journal: Journal) -> Journal:
        """Another writer on `journal` (default: the same object, as threads would share it)."""
        return journal

    def _own(self) -> dict[str, Any]:
        state: dict[str, Any] | None = getattr(self, "_ownership", None)
        if state is None:
            second = self.make_second_writer(self.journal)
            handles = {"A": self.journal, "B": second}
            for name, handle in handles.items():
                handle.register(name, "conformance-host", 0, 1e18)
            state = self._ownership = {
                "handles": handles,
                "owners": {c: [] for c in self.owned_conversations},  # writer per epoch
                "mine": {w: dict.fromkeys(self.owned_conversations) for w in _WRITERS},
                "seen": {w: dict.fromkeys(self.owned_conversations, 0) for w in _WRITERS},
                "commands": {},  # command id -> (conversation, answer body or None)
            }
        return state

    def teardown(self) -> None:
        state: dict[str, Any] | None = getattr(self, "_ownership", None)
        if state is not None and state["handles"]["B"] is not self.journal:
            state["handles"]["B"].close()
        super().teardown()

    def _events(self, data: st.DataObject, conversation: str, count: int) -> list[Event]:
        drawn = [data.draw(any_events()) for _ in range(count)]
        return [dataclasses.replace(event, conversation_id=conversation) for event in drawn]

    @rule(writer=st.sampled_from(_WRITERS), data=st.data())
    def own_2_claim(self, writer: str, data: st.DataObject) -> None:
        """OWN-2: a claim with the epoch the writer last saw wins only if it is still current."""
        state = self._own()
        conversation = data.draw(st.sampled_from(self.owned_conversations))
        owners = state["owners"][conversation]
        seen = state["seen"][writer][conversation]
        try:
            record = state["handles"][writer].claim(
                conversation, writer, seen, reason="conformance", at=1.0
            )
        except StaleOwnerError:
            assert seen != len(owners), "a claim with the current epoch was refused"
            return
        assert seen == len(owners), "a claim with a stale epoch was accepted"
        owners.append(writer)
        assert (record.epoch, record.owner_id) == (len(owners), writer)
        assert record.previous_owner == (owners[-2] if len(owners) > 1 else None)
        state["mine"][writer][conversation] = record.epoch
        state["seen"][writer][conversation] = record.epoch

    @rule(writer=st.sampled_from(_WRITERS), data=st.data())
    def own_1_look(self, writer: str, data: st.DataObject) -> None:
        """OWN-1: the owner a writer reads is the one of the largest epoch."""
        state = self._own()
        conversation = data.draw(st.sampled_from(self.owned_conversations))
        record = state["handles"][writer].owner(conversation)
        owners = state["owners"][conversation]
        if not owners:
            assert record is None
            return
        assert record is not None and (record.epoch, record.owner_id) == (len(owners), owners[-1])
        state["seen"][writer][conversation] = record.epoch

    def _fenced_write(
        self, writer: str, conversation: str, events: list[Event], answers: list[tuple[int, str]]
    ) -> bool:
        """Append with the writer's believed epoch at the true last sequence; whether it
        should have gone in (only the epoch, or an answered command, can refuse it)."""
        state = self._own()
        mine = state["mine"][writer][conversation]
        owners = state["owners"][conversation]
        current = len(owners) or None
        answered = any(state["commands"][cid][1] is not None for cid, _ in answers)
        allowed = mine == current and not answered
        batch = AppendBatch(conversation, len(self.model[conversation]), events, mine, answers)
        try:
            last = state["handles"][writer].append_many([batch])[0]
        except StaleWriterError:
            assert not allowed, "the current owner's append was refused"
            return False
        assert allowed, "a stale owner's append was accepted (OWN-3)"
        self.model[conversation].extend(events)
        assert last == len(self.model[conversation])
        for command_id, body in answers:
            state["commands"][command_id] = (conversation, body)
        return True

    @rule(writer=st.sampled_from(_WRITERS), data=st.data(), count=st.integers(0, 2))
    def own_3_append(self, writer: str, data: st.DataObject, count: int) -> None:
        """OWN-3: only the current epoch appends, whatever the sequence numbers say."""
        conversation = data.draw(st.sampled_from(self.owned_conversations))
        self._fenced_write(writer, conversation, self._events(data, conversation, count), [])

    @rule(writer=st.sampled_from(_WRITERS), data=st.data())
    def own_6_submit(self, writer: str, data: st.DataObject) -> None:
        """OWN-6: a command is queued for the conversation's owner, pending until answered."""
        state = self._own()
        conversation = data.draw(st.sampled_from(self.owned_conversations))
        (event,) = self._events(data, conversation, 1)
        command_id = state["handles"][writer].submit(conversation, event, 2.0)
        assert command_id not in state["commands"]
        state["commands"][command_id] = (conversation, None)

    @rule(writer=st.sampled_from(_WRITERS), data=st.data(), count=st.integers(0, 2))
    def own_6_answer(self, writer: str, data: st.DataObject, count: int) -> None:
        """OWN-6: an answer goes in with the owner's events, once; a second answer (a stale
        owner's, or a repeat) is refused with its events."""
        state = self._own()
        if not state["commands"]:
            return
        command_id = data.draw(st.sampled_from(sorted(state["commands"])))
        conversation = state["commands"][command_id][0]
        body = f'{{"by":"{writer}","n":{len(self.model[conversation])}}}'
        self._fenced_write(
            writer, conversation, self._events(data, conversation, count), [(command_id, body)]
        )

    @invariant()
    def own_6_commands_equal_the_model(self) -> None:
        """OWN-6: pending commands and answers read back as the model says."""
        state: dict[str, Any] | None = getattr(self, "_ownership", None)
        if state is None:
            return
        commands = state["commands"]
        pending = [cid for cid in sorted(commands) if commands[cid][1] is None]
        assert [c.command_id for c in self.journal.pending_commands()] == pending
        assert self.journal.last_command_id() == max(commands, default=0)
        for command_id, (_conversation, body) in commands.items():
            answer = self.journal.answer(command_id)
            assert (answer.body if answer is not None else None) == body

    @invariant()
    def own_1_history_equals_the_model(self) -> None:
        """OWN-1: each conversation's owners read back in epoch order."""
        state: dict[str, Any] | None = getattr(self, "_ownership", None)
        if state is None:
            return
        for conversation, owners in state["owners"].items():
            history = self.journal.ownership_history(conversation)
            assert [(r.epoch, r.owner_id) for r in history] == [
                (epoch, owner) for epoch, owner in enumerate(owners, 1)
            ]
