"""The runtime as an owner of conversations: its lease, takeovers, and commands (spec/ownership.md).

Theory of operation
-------------------
A runtime drives only the conversations it owns (OWN-1): it registers a lease under a fresh owner
id when it opens, renews it by heartbeat, and releases it when it closes. It claims a
conversation when it first writes to it: a new conversation (`run`), or one whose owner is
abandoned (OWN-4: lease expired or released, or its pid gone on this host), which is a
*takeover* journaled in the conversation's owner history (OWN-5). Before acting on a conversation
it took over, it folds what the previous owner journaled since (it may have written after this
runtime last looked), applies the commands still pending for it (OWN-6), and answers the effects
that owner left live (`effect_lost`, RT-8).

A conversation owned by another live process is never changed here. This runtime holds a
read-only view of it, refreshed from the journal when read; a command for it (`interrupt_run`,
`resume_run`, `cancel_run`, `provide_input`) is submitted to the journal's `commands` table and
answered by the owner, in the same transaction as the events it caused. The owner learns of
commands without rescanning the log: it polls the journal's change token (SQLite's
`PRAGMA data_version`, one cheap read that changes only when another connection commits) every
`COMMAND_POLL` seconds and reads the pending commands only when it changed, plus once a second
in case a change was missed (spec/ownership.md says why this and not a socket). On a journal
that sends notifications (PostgreSQL) the owner listens instead of polling (below).

With `adopt` (the default), the heartbeat also sweeps: a conversation whose owner became
abandoned and that has work (live effects, pending commands) is taken over, so runs of a
crashed process go on in a live one within a lease (at once for a dead pid on this host).

Roles (spec/workers.md). On a journal that shares work between workers (`PostgresJournal`),
the owner listens to the journal's notifications instead of polling (WRK-4): a submitted
command wakes the owners at once, an answer wakes its sender, a settled run wakes its
followers, a released lease wakes the workers. A *worker* does not sweep the whole journal: it
claims conversations with work (`WorkerOwner`, `_claims.py`, WRK-1). A *client* owns nothing:
every request goes to the owner as a command (WRK-5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from .._core import Coordinator, initial_state
from .._errors import (
    CommandTimeoutError,
    JournalError,
    OwnedElsewhereError,
    StaleOwnerError,
)
from .._journal import (
    HEARTBEATS_PER_LEASE,
    Command,
    Journal,
    OwnerRecord,
    abandonment,
    new_owner_id,
    this_host,
)
from .._vocabulary import EffectStarted, Event
from ._answers import read_answer
from ._recovery import recovery_events
from ._snapshot import RunSnapshot
from ._writer import Conversation, Item, Writer

if TYPE_CHECKING:
    from ._recovery import RecoveryReport

log: Final = logging.getLogger("interruptible.runtime")

# How often an owner looks for commands (a read of the change token): the cross-process
# interrupt's latency is about this much, and 100 reads a second cost nothing measurable.
COMMAND_POLL: Final = 0.01
# Every this many polls, pending commands are read even if the token did not move: a change
# by this very connection (a journal object shared by two runtimes) moves no token.
_RESCAN_EVERY: Final = 100
# How long a sender waits for the owner's answer before `CommandTimeoutError`.
DEFAULT_COMMAND_TIMEOUT: Final = 30.0
# A sender's polls for its answer grow from 1 ms to this, and it rechecks the owner's lease
# every this many seconds (to take over, and answer itself, if the owner died meanwhile).
_ANSWER_POLL_MAX: Final = 0.01
_OWNER_RECHECK: Final = 0.5


# How a runtime takes part in a journal (spec/workers.md): "embedded" drives what it starts and
# adopts abandoned work by sweeping; "worker" claims work from a shared journal up to `limit`;
# "client" owns nothing and sends every request to the owner.
Role: TypeAlias = Literal["embedded", "worker", "client"]
ROLES: Final = ("embedded", "worker", "client")
# A worker's default limit of live conversations (WRK-1).
DEFAULT_LIMIT: Final = 100
# With notifications, how often an owner looks anyway: for a notification missed while its
# listening connection was down, and for leases that expired (an expiry sends nothing), WRK-4.
SWEEP: Final = 0.5


def owned_elsewhere(record: OwnerRecord, run_id: str | None = None) -> OwnedElsewhereError:
    """The error for a request that only the conversation's live owner may carry out."""
    return OwnedElsewhereError(
        f"conversation {record.conversation_id!r} is driven by process {record.pid} on "
        f"{record.host} (owner {record.owner_id}, epoch {record.epoch}); interrupt, cancel or "
        "answer its run from here (they are delivered to it), or wait until it ends.",
        conversation_id=record.conversation_id,
        owner_id=record.owner_id,
        host=record.host,
        pid=record.pid,
        run_id=run_id,
    )


class Owner:
    """This runtime's ownership of conversations in one journal."""

    def __init__(
        self,
        journal: Journal,
        writer: Writer,
        report: RecoveryReport,
        *,
        coordinator: Callable[[], Coordinator],
        clock: Callable[[], float],
        ids: Callable[[], str],
        lease: float,
        adopt: bool,
        owner_id: str | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        role: Role = "embedded",
    ) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        self.role = role
        self.journal = journal
        self.writer = writer
        self.report = report
        self.coordinator = coordinator
        self.clock = clock
        self.ids = ids
        self.lease = lease
        self.adopt = adopt
        self.host = this_host()
        self.pid = os.getpid()
        self.owner_id = owner_id if owner_id is not None else new_owner_id(self.host, self.pid)
        self.command_timeout = command_timeout
        # Commands posted to the writer and not yet seen answered: a command is posted once,
        # whether the watcher or a takeover finds it first.
        self._posted: set[int] = set()
        self._low = 0  # every command up to this id has been answered
        # Conversations found abandoned with nothing to do, at the epoch and last sequence they
        # were found at: a sweep looks at them again only once one of them moves (the epoch
        # alone missed writes by the abandoned owner itself, woken from a pause: the model
        # checker's finding).
        self._idle: dict[str, tuple[int, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # The journal's notifications, when it sends them (WRK-4), and the senders waiting
        # for an answer, by command id.
        self.listener: Any = None
        self._answers: dict[int, asyncio.Event] = {}
        # Followers of runs driven elsewhere, by the md5 of their conversation id (`follow`).
        self._followers: dict[str, list[asyncio.Event]] = {}
        self._next_sweep = 0.0
        # Commands seen pending for conversations another owner drives (`unheld_command`).
        self._foreign: set[int] = set()

    # --- the lease ----------------------------------------------------------------------------

    def register(self) -> None:
        """Record this owner's lease (before any claim)."""
        self.journal.register(self.owner_id, self.host, self.pid, self.clock() + self.lease)

    def start(self) -> None:
        """Start the heartbeat and the command watcher on the running loop."""
        loop = asyncio.get_running_loop()
        make_listener = getattr(self.journal, "listener", None)
        if make_listener is not None:
            self.listener = make_listener()
            self.listener.start()
            watcher = self._listen()
        else:
            watcher = self._watch()
        self._tasks = [loop.create_task(watcher, name="interruptible commands")]
        if self.role != "client":
            self._tasks.append(loop.create_task(self._heartbeat(), name="interruptible heartbeat"))

    async def stop(self) -> None:
        """Stop the heartbeat and the watcher (and stop listening)."""
        for task in self._tasks:
            task.cancel()
        # gather, not `suppress(CancelledError)` around each await: a cancel of this very
        # call must still reach its caller.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.listener is not None:
            await self.listener.close()
            self.listener = None

    def release(self) -> None:
        """End the lease: every conversation owned here is abandoned at once (a clean close)."""
        try:
            self.journal.release(self.owner_id)
        except JournalError as exc:  # the journal is gone: the lease expires by itself
            log.warning("could not release the lease of %s: %s", self.owner_id, exc)

    async def _heartbeat(self) -> None:
        period = self.lease / HEARTBEATS_PER_LEASE
        while True:
            await asyncio.sleep(period)
            try:
                self.beat()
            except Exception:  # a failed beat is retried at the next one; the lease has slack
                log.exception("the heartbeat of %s failed", self.owner_id)

    def beat(self) -> None:
        """One heartbeat: renew the lease, let go of what another process took over, and (with
        `adopt`) take over what is abandoned."""
        self.journal.renew(self.owner_id, self.clock() + self.lease)
        self.notice_takeovers()
        if self.adopt and self.role == "embedded":
            self.sweep()

    def notice_takeovers(self) -> None:
        """Let go of every conversation this process drives that another process has taken over
        (OWN-3): it was paused past its lease meanwhile. A refused write says the same, but an
        owner with nothing to write would never learn it, and its sweep would never take the
        conversation back if the new owner died in turn (the model checker's finding)."""
        writer = self.writer
        owners_of = getattr(self.journal, "owners_of", None)
        if owners_of is not None:  # only the conversations held here (a shared journal)
            held = [cid for cid, conv in writer.conversations.items() if conv.epoch is not None]
            records = owners_of(held, self.owner_id) if held else []
        else:
            records = self.journal.owners()
        for record in records:
            if record.owner_id == self.owner_id:
                continue
            conv = writer.conversations.get(record.conversation_id)
            if conv is None or conv.epoch is None:
                continue
            error = StaleOwnerError(
                f"conversation {record.conversation_id!r} was taken over at epoch "
                f"{record.epoch} by {record.owner_id} ({record.reason}) while this process held "
                f"epoch {conv.epoch}; it lets it go, and its owner answers commands for it.",
                conversation_id=record.conversation_id,
                reason="stale_owner",
            )
            writer.let_go(conv, error)
            conv.owner = record

    # --- reading the journal ------------------------------------------------------------------

    def live_owner(self, record: OwnerRecord | None) -> OwnerRecord | None:
        """`record` if it names another owner that is alive (OWN-4), else None."""
        if record is None or record.owner_id == self.owner_id:
            return None
        return record if abandonment(record, self.clock(), self.host) is None else None

    def catch_up(self, conv: Conversation) -> None:
        """Fold what the journal holds after `conv.last` into the conversation's state."""
        reduce = self.coordinator().reduce
        state = conv.state
        last = conv.last
        starts: list[EffectStarted] = []
        for record in self.journal.read(conv.conversation_id, after=last):
            outcome = reduce(state, record.event)
            conv.remember(record.event, outcome)
            state = outcome.state
            last = record.sequence
            if outcome.applied and type(record.event) is EffectStarted:
                assert isinstance(record.event, EffectStarted)
                starts.append(record.event)
        conv.state = state
        conv.last = last
        for started in starts:
            if started.run_id == state.active_run_id:
                conv.note_start(started)

    def view(self, conversation_id: str) -> Conversation | None:
        """The conversation as this runtime holds it, brought up to date from the journal when
        another process owns it; None if the journal has never heard of it."""
        conv = self.writer.conversations.get(conversation_id)
        if conv is not None and conv.epoch is not None:
            return conv
        if conv is None:
            if self.journal.last_sequence(conversation_id) == 0:
                return None
            conv = Conversation(conversation_id, initial_state(conversation_id), 0)
            self.writer.conversations[conversation_id] = conv
        self.catch_up(conv)
        return conv

    # --- taking a conversation ----------------------------------------------------------------

    def route(
        self, conversation_id: str, *, create: bool, first: Item | None = None
    ) -> Conversation | OwnerRecord | None:
        """Make sure this runtime may write to the conversation, and post `first` to it.

        Returns the conversation once this runtime owns it (claimed now if it was new or
        abandoned: `first` is posted before the pending commands and the answers to the
        previous owner's live effects, OWN-8), the live owner's record when another process
        drives it (nothing posted), or None when the conversation does not exist and `create`
        is false.
        """
        conv = self.writer.conversations.get(conversation_id)
        if conv is not None and conv.epoch is not None:
            if first is not None:
                self.writer.post(conv, *first)
            return conv
        for _ in range(8):  # each lost race means another claimant won: look again
            record = self.journal.owner(conversation_id)
            live = self.live_owner(record)
            if live is not None:
                if conv is not None:
                    conv.owner = live
                return live
            if record is None and not create and self.journal.last_sequence(conversation_id) == 0:
                return None
            try:
                return self.take_over(conversation_id, record, first=first)
            except StaleOwnerError:
                continue
        raise JournalError(  # pragma: no cover - eight claimants in a row beat this one
            f"conversation {conversation_id!r}: could not claim it after eight tries; retry.",
            conversation_id=conversation_id,
            reason="claim_contended",
        )

    def take_over(
        self, conversation_id: str, record: OwnerRecord | None, *, first: Item | None = None
    ) -> Conversation:
        """Claim the conversation from `record`'s owner (or as its first owner), fold what it
        wrote, and queue: `first`, the pending commands, the answers to its live effects."""
        now = self.clock()
        if record is None:
            reason = "new" if self.journal.last_sequence(conversation_id) == 0 else "unowned"
        else:
            reason = abandonment(record, now, self.host) or "abandoned"
        claimed = self.journal.claim(
            conversation_id,
            self.owner_id,
            0 if record is None else record.epoch,
            reason=reason,
            at=now,
        )
        previous = None if record is None else record.owner_id
        return self.adopt_claimed(conversation_id, claimed.epoch, previous, reason, first=first)

    def adopt_claimed(
        self,
        conversation_id: str,
        epoch: int,
        previous: str | None,
        reason: str,
        *,
        first: Item | None = None,
        active: bool | None = None,
    ) -> Conversation:
        """Drive a conversation this runtime has just claimed at `epoch`: fold what the journal
        holds, and queue `first`, the pending commands, the answers to the live effects."""
        writer = self.writer
        conv = writer.conversations.get(conversation_id)
        if conv is None:
            conv = Conversation(conversation_id, initial_state(conversation_id), 0)
            writer.conversations[conversation_id] = conv
        conv.epoch = epoch
        conv.owner = None
        conv.fenced = None
        conv.active = active
        self.catch_up(conv)
        if previous is not None:
            self.report.taken_over.append((conversation_id, previous, epoch, reason))
            log.info(
                "took over conversation %r from %s (%s) at epoch %d",
                conversation_id,
                previous,
                reason,
                epoch,
            )
        if first is not None:
            writer.post(conv, *first)
        for command in self.journal.pending_commands(conversation_id=conversation_id):
            # Every pending command, even one this process posted before it lost the
            # conversation: that inbox was dropped, and nothing is queued here now (OWN-6;
            # skipping them left them pending for ever, the model checker's finding).
            self._posted.add(command.command_id)
            writer.post(conv, command.event, command.command_id)
        events = recovery_events(conv.state, self.ids, self.clock)
        if events:
            assert conv.state.active_run_id is not None
            self.report.restarted_runs.append((conversation_id, conv.state.active_run_id))
            for event in events:
                writer.post(conv, event, None)
        return conv

    def sweep(self) -> None:
        """Take over every abandoned conversation that has work (live effects, commands)."""
        commanded = {command.conversation_id for command in self.journal.pending_commands()}
        for record in self.journal.owners():
            cid = record.conversation_id
            if record.owner_id == self.owner_id or self.live_owner(record) is not None:
                continue
            idle = self._idle.get(cid)
            if (
                idle is not None
                and idle == (record.epoch, self.journal.last_sequence(cid))
                and cid not in commanded
            ):
                continue  # abandoned and idle when last looked at; nobody has written since
            conv = self.view(cid)
            if conv is None or conv.epoch is not None:
                continue
            run = conv.state.active_run
            if not (run is not None and run.live_steps()) and cid not in commanded:
                self._idle[cid] = (record.epoch, conv.last)
                continue
            try:
                self.take_over(cid, record)
            except StaleOwnerError:
                continue  # another process took it first

    async def _listen(self) -> None:
        """Act on the journal's notifications, and every `SWEEP` seconds (WRK-4)."""
        listener = self.listener
        while True:
            notes = await listener.get(SWEEP)
            try:
                await self._on_notes(notes)
            except Exception:  # a failed look is retried at the next notification or sweep
                log.exception("acting on the journal's notifications failed")

    async def _on_notes(self, notes: list[str]) -> None:
        now = asyncio.get_running_loop().time()
        sweep = not notes or now >= self._next_sweep  # a sweep looks at everything
        if sweep:
            self._next_sweep = now + SWEEP
        commands = claims = sweep
        for note in notes:
            kind = note[:1]
            if kind == "a":
                waiter = self._answers.get(int(note[2:]))
                if waiter is not None:
                    waiter.set()
            elif kind == "c":
                commands = claims = True
            elif kind == "s":
                for follower in self._followers.get(note[2:], ()):
                    follower.set()
            elif kind == "w":
                claims = True
            else:  # RESCAN: reconnected, anything may have happened
                commands = claims = sweep = True
        if sweep:
            for waiter in self._answers.values():
                waiter.set()  # each sender looks at its answer again (a missed `a`)
            for followers in self._followers.values():
                for follower in followers:
                    follower.set()
        if self.role == "client":
            return
        if commands:
            self.poll_commands()
        await self.after_notes(commands or claims, sweep)

    async def after_notes(self, work: bool, sweep: bool) -> None:
        """What a role does after the notifications were acted on (a worker claims): `work`
        when they said there may be work, `sweep` at a sweep."""

    async def follow(self, conversation_id: str, poll: float) -> None:
        """Return when a run of the conversation (driven by another process) may have settled:
        woken by the journal's `s` notification (WRK-4), or after a sweep; without
        notifications, after `poll` seconds."""
        if self.listener is None:
            await asyncio.sleep(poll)
            return
        key = hashlib.md5(conversation_id.encode(), usedforsecurity=False).hexdigest()
        follower = asyncio.Event()
        followers = self._followers.setdefault(key, [])
        followers.append(follower)
        try:
            with contextlib.suppress(TimeoutError):  # (not wait_for: see Listener.get)
                async with asyncio.timeout(SWEEP):
                    await follower.wait()
        finally:
            followers.remove(follower)
            if not followers:
                del self._followers[key]

    # --- commands -----------------------------------------------------------------------------

    async def forward(self, conversation_id: str, event: Event) -> RunSnapshot:
        """Submit a command to the conversation's owner and return its answer (OWN-6)."""
        journal = self.journal
        command_id = journal.submit(conversation_id, event, self.clock())
        waiter = None
        if self.listener is not None:  # woken by the answer's notification (WRK-4)
            waiter = self._answers[command_id] = asyncio.Event()
        try:
            return await self._await_answer(conversation_id, event, command_id, waiter)
        finally:
            if waiter is not None:
                del self._answers[command_id]

    async def _await_answer(
        self, conversation_id: str, event: Event, command_id: int, waiter: asyncio.Event | None
    ) -> RunSnapshot:
        journal = self.journal
        loop = asyncio.get_running_loop()
        start = loop.time()
        recheck = start + _OWNER_RECHECK
        delay = 0.001
        while True:
            try:
                answer = journal.answer(command_id)
            except JournalError as exc:
                if exc.reason != "connection_lost":
                    raise
                answer = None  # a read: the next look connects again (the command is queued)
            if answer is not None:
                if self.role != "client":
                    self.view(conversation_id)
                return read_answer(answer.body)
            now = loop.time()
            if now - start > self.command_timeout:
                raise CommandTimeoutError(
                    f"command {command_id} for conversation {conversation_id!r} was accepted "
                    f"but not answered in {self.command_timeout:g} s; it stays queued and is "
                    "applied once, by the conversation's owner or by whoever takes it over.",
                    conversation_id=conversation_id,
                    run_id=getattr(event, "run_id", None),
                    reason="command_timeout",
                )
            if now >= recheck and self.role != "client":
                recheck = now + _OWNER_RECHECK
                conv = self.writer.conversations.get(conversation_id)
                if conv is None or conv.epoch is None:
                    record = journal.owner(conversation_id)
                    if self.live_owner(record) is None:
                        # The owner died with our command: apply it here (OWN-6).
                        with contextlib.suppress(StaleOwnerError):
                            self.take_over(conversation_id, record)
            if waiter is not None:
                waiter.clear()
                with contextlib.suppress(TimeoutError):  # (not wait_for: see Listener.get)
                    async with asyncio.timeout(min(SWEEP, _OWNER_RECHECK)):
                        await waiter.wait()
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, _ANSWER_POLL_MAX)

    async def _watch(self) -> None:
        journal = self.journal
        token = None
        tick = 0
        while True:
            await asyncio.sleep(COMMAND_POLL)
            tick += 1
            try:
                now_token = journal.change_token()
                if now_token == token and tick % _RESCAN_EVERY:
                    continue
                token = now_token
                self.poll_commands()
            except Exception:  # a failed look is retried at the next poll
                log.exception("reading commands failed")

    def unheld_command(self, command: Command) -> None:
        """A pending command for a conversation this runtime does not drive (see
        `WorkerOwner`)."""

    def poll_commands(self) -> None:
        """Post each pending command of a conversation this process owns, once (OWN-6)."""
        journal = self.journal
        writer = self.writer
        # Every command up to `top` that is not pending now was answered: the next scan starts
        # at the oldest one still pending, not at the table's beginning.
        top = journal.last_command_id()
        pending = journal.pending_commands(after=self._low)
        if self._posted or self._foreign:  # what is no longer pending was answered
            still = {command.command_id for command in pending}
            self._posted &= still
            self._foreign &= still
        oldest = [c.command_id for c in pending if c.command_id <= top]
        self._low = min(oldest) - 1 if oldest else max(self._low, top)
        for command in pending:
            conv = writer.conversations.get(command.conversation_id)
            if conv is None or conv.epoch is None:
                # Not driven here: its owner (or whoever takes it over) applies it, unless
                # this role finds it is its own after all (a worker's forgotten ones).
                self.unheld_command(command)
                continue
            if command.command_id in self._posted:
                continue
            self._posted.add(command.command_id)
            writer.post(conv, command.event, command.command_id)
