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
command wakes the owners at once, an answer wakes its sender, a released lease wakes the
workers. A *worker* does not sweep the whole journal: it claims conversations with work in one
transaction of the journal's (`claim_work`, WRK-1), up to its limit of live ones, when a
notification says there may be some and every `SWEEP` seconds (leases expire silently), and it
claims back, under a new epoch, a conversation whose write failed with the connection (WRK-6).
A *client* owns nothing: every request goes to the owner as a command (WRK-5).
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
from ._writer import Conversation, Item, Writer, has_run_to_drive

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
# How many conversations a worker claims in one transaction (it claims again at once if it
# got that many).
_CLAIM_BATCH: Final = 32


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
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        self.role = role
        self.limit = limit
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
        self._claim_soon = False
        self._next_sweep = 0.0
        # Commands seen pending for conversations another owner drives (not reloaded again).
        self._foreign: set[int] = set()
        self.claims = 0  # conversations claimed by `claim` (for tests and benchmarks)

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
        if self.role == "worker":
            self.writer.on_idle = self._idled

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

    # --- a worker's claims (spec/workers.md) ----------------------------------------------------

    def claim(self) -> int:
        """Claim conversations with work from the shared journal, up to `limit` live ones held
        here (WRK-1), and drive them; how many it claimed."""
        journal: Any = self.journal
        claimed = journal.claim_work(
            self.owner_id, limit=self.limit, at=self.clock(), max_claims=_CLAIM_BATCH
        )
        for row in claimed:
            try:
                conv = self.adopt_claimed(
                    row.conversation_id,
                    row.epoch,
                    row.previous_owner,
                    row.reason,
                    active=row.active,
                )
            except JournalError:
                # Claimed, not adopted (the journal failed meanwhile): the next sweep's
                # `reconcile` finds it owned here with work, and adopts it.
                self.writer.conversations.pop(row.conversation_id, None)
                log.warning("could not take up claimed conversation %r", row.conversation_id)
                continue
            if not conv.inbox and conv.active is not False and not has_run_to_drive(conv.state):
                # Marked active, nothing to do (a migrated journal; a run that settled in a
                # write whose marker was lost): clear it, or it counts against the limit.
                with contextlib.suppress(StaleOwnerError):
                    journal.mark(conv.conversation_id, row.epoch, False)
                    conv.active = False
        self.claims += len(claimed)
        if len(claimed) == _CLAIM_BATCH:
            self._claim_soon = True  # there may be more: claim again at the next turn
        return len(claimed)

    def _idled(self, conv: Conversation) -> None:
        """The writer cleared a conversation's marker: a slot is free under the limit."""
        self._claim_soon = True
        if self.listener is not None:
            self.listener.nudge()

    def reclaim_failed(self) -> None:
        """Claim back, under a new epoch, each conversation held here whose write failed with
        the journal (a lost connection): what that write did is unknown, so the conversation is
        folded again from the journal, and its live effects are answered as lost (WRK-6)."""
        writer = self.writer
        for cid, conv in list(writer.conversations.items()):
            error = conv.fenced
            if conv.epoch is None or not isinstance(error, JournalError):
                continue
            fresh = Conversation(cid, initial_state(cid), 0)
            try:
                claimed = self.journal.claim(
                    cid, self.owner_id, conv.epoch, reason="write_failed", at=self.clock()
                )
            except StaleOwnerError:  # another owner has it now, or this one's reply was lost
                writer.conversations[cid] = fresh
                record = self.journal.owner(cid)
                if record is not None and record.owner_id == self.owner_id:
                    self.adopt_claimed(cid, record.epoch, None, "write_failed")
                else:
                    fresh.owner = record
                continue
            writer.conversations[cid] = fresh
            self.adopt_claimed(cid, claimed.epoch, self.owner_id, "write_failed")

    def reconcile(self) -> int:
        """Take up every conversation the journal says this worker owns, with work, that it
        does not drive at that epoch: a claim whose reply was lost with the connection, one
        whose taking up failed, one forgotten and then only read (WRK-1). How many."""
        writer = self.writer
        journal: Any = self.journal
        taken = 0
        for cid, epoch, active in journal.owned_with_work(self.owner_id):
            conv = writer.conversations.get(cid)
            if conv is not None and conv.epoch == epoch:
                continue  # driven here (or fenced, for `reclaim_failed`)
            if conv is not None and conv.epoch is not None:  # held at an older epoch
                writer.let_go(
                    conv,
                    StaleOwnerError(
                        f"conversation {cid!r} is at epoch {epoch} in the journal, held here at "
                        f"{conv.epoch}; it is folded again",
                        conversation_id=cid,
                        reason="stale_owner",
                    ),
                )
            writer.conversations.pop(cid, None)
            self.adopt_claimed(cid, epoch, None, "reconciled", active=active)
            taken += 1
        return taken

    def evict_idle(self) -> int:
        """Forget the conversations held here that have nothing to drive (no run to drive, no
        queued event, no waiter, no live effect): a worker's memory holds its live work, not
        every conversation it ever drove. It still owns them; a command for one folds it again
        from the journal (`poll_commands`, WRK-1). How many it forgot."""
        writer = self.writer
        effects = writer.effects
        gone = [
            cid
            for cid, conv in writer.conversations.items()
            if conv.active is False
            and not conv.inbox
            and not conv.waiters
            and conv.fenced is None
            and not has_run_to_drive(conv.state)
            and not effects.has_live(cid)
        ]
        for cid in gone:
            del writer.conversations[cid]
        return len(gone)

    def _reload(self, conversation_id: str) -> Conversation | None:
        """A conversation this worker owns in the journal but forgot (`evict_idle`), folded
        again from the journal; None when another owner has it."""
        record = self.journal.owner(conversation_id)
        if record is None or record.owner_id != self.owner_id:
            return None
        self.writer.conversations.pop(conversation_id, None)  # a view of it: folded anew
        return self.adopt_claimed(conversation_id, record.epoch, None, "reloaded", active=False)

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
        if self.role != "worker":
            return
        if commands or claims or self._claim_soon:
            await asyncio.sleep(0)  # the commands just posted are written first
            self._claim_soon = False
            if sweep:
                self._foreign.clear()
                self.reclaim_failed()
                self.reconcile()
                self.evict_idle()
            self.claim()
            if self._claim_soon:
                self.listener.nudge()

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
            if (
                (conv is None or conv.epoch is None)
                and self.role == "worker"
                and command.command_id not in self._foreign
            ):
                # Ours but forgotten (`evict_idle`; perhaps read since, as a view), or
                # another's, or nobody's yet (a claim takes it): the journal says which.
                if self._reload(command.conversation_id) is None:
                    self._foreign.add(command.command_id)
                continue  # reloading posted its pending commands, this one among them
            if conv is None or conv.epoch is None:
                continue  # not ours: its owner (or whoever takes it over) applies it
            if command.command_id in self._posted:
                continue
            self._posted.add(command.command_id)
            writer.post(conv, command.event, command.command_id)
