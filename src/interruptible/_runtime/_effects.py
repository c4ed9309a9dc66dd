"""The effect manager: carries out `start_effect` and `cancel_effects` with asyncio tasks.

Theory of operation
-------------------
Each `start_effect` becomes one asyncio task, registered under its effect id while it lives. The
task waits the directive's `delay` (a retry's backoff), reports `effect_started` (unless the
runtime already journaled it together with the directive's cause, see `_writer.py`), runs the
step class's executor under the policy's `timeout`, and reports exactly one answer:
`effect_completed`, `effect_failed` or `effect_canceled`. Reporting is a synchronous hand-off
to the runtime's writer; the answer and the task's removal from the live table happen with no
`await` between them, so a cancel either finds the task alive (and the task answers
`effect_canceled`) or finds it gone (and its answer is already queued): every cancelled effect
answers once (RT-5).

A progress report is journaled like an answer, except that a report still waiting for its
commit is replaced by the effect's next one (RT-19): the journal keeps the latest value per
commit, not every report.

`cancel_effects` cancels each task at once (not at the next step boundary), after calling the
executor's `cancel` hook when it has one. A synchronous system callable is run inline on the loop
(no task): nothing could interrupt it anyway, and a task would cost more than the call.

A cancelled task answers when it has really stopped, not when it was asked to (RT-24): a tool's
worker thread cannot be stopped, so its executor waits for it (`_executors._in_thread`), and an
executor may swallow `CancelledError` and go on. So each cancel (and each policy timeout, which
is a cancel with its own answer) arms a timer of the step's `cancel_grace`; if the task has not
answered when it fires, the manager answers for it (`effect_lost`, `abandoned_after_cancel`, or
a `timeout` failure) with a warning, and drops whatever the task does later (RT-26).

When the runtime closes, or loses the right to write a conversation, live tasks are cancelled
*quietly*: they report nothing, and the next process that opens the journal restarts them
(RT-8).

Whatever an executor hands back, its effect answers (RT-22): an output that is not JSON, or
is over the payload limits (`_limits.py`), fails the step as `invalid_output`; failure details
over them are replaced by a short note; an exception whose text cannot be made, or is huge, is
described in a bounded message. Building an answer never raises, so no task ends without one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from .._codec import unicode_text
from .._core import Outcome
from .._errors import PayloadLimitError, shown
from .._lifecycle import StepClass
from .._limits import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, text_exceeds, value_exceeds
from .._vocabulary import (
    CancelEffects,
    EffectCanceled,
    EffectCompleted,
    EffectFailed,
    EffectLost,
    EffectProgress,
    EffectStarted,
    Event,
    FailureCategory,
    JsonValue,
    StartEffect,
    effect_event,
)
from ._executors import Effect, EffectError, Executor, FunctionExecutor, bind_current

log: Final = logging.getLogger("interruptible.runtime")

Post = Callable[[str, Event], None]
# Queue a progress report in the place of the effect's previous one, if that still waits (RT-19).
PostLatest = Callable[[str, Event, Any], Any]
PostAndWait = Callable[[str, Event], Awaitable[Outcome]]
FirstStart = Callable[[str, str, str], float | None]

# A string this short is within MAX_PAYLOAD_BYTES as JSON text whatever it holds: a character
# takes at most 12 (a surrogate pair escaped, "\\ud83d\\ude00"), plus the quotes.
_SHORT_STRING: Final = (MAX_PAYLOAD_BYTES - 2) // 12
# An integer this small is written as text by any interpreter (Python refuses 4,300 digits).
_SMALL_INT: Final = 2**64

# The `effect_lost` reason of an effect the runtime stopped waiting for after a cancel (RT-26).
ABANDONED_REASON: Final = "abandoned_after_cancel"

# A failure message is for people: past this many characters the rest is cut (and counted).
MAX_MESSAGE: Final = 65_536


def json_normalized(value: JsonValue, what: str = "the value") -> JsonValue:
    """`value` as the journal will give it back (tuples become lists, ...); raises if not JSON.

    Live state must equal replayed state (RT-11), so every value entering an event goes through
    the same JSON round trip the journal applies. A value over the payload limits (RT-22)
    raises `PayloadLimitError` naming `what`; one that is not JSON, `TypeError` or `ValueError`.
    """
    kind = type(value)
    if kind is str:
        if len(value) <= _SHORT_STRING and (value.isascii() or _is_unicode(value)):
            return value
    elif kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a JSON number")
        return value
    elif kind is bool or value is None or (kind is int and -_SMALL_INT < value < _SMALL_INT):
        return value
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        if not value_exceeds(value, MAX_PAYLOAD_DEPTH):
            raise  # not the value's depth: the caller's own stack is that deep
        raise PayloadLimitError(what, "depth", MAX_PAYLOAD_DEPTH) from None
    unicode_text(text, value)  # a surrogate would not come back equal: not JSON text
    if len(text) > MAX_PAYLOAD_BYTES:
        raise PayloadLimitError(what, "bytes", MAX_PAYLOAD_BYTES, len(text))
    if len(text) > 2 * MAX_PAYLOAD_DEPTH and text_exceeds(text, MAX_PAYLOAD_DEPTH):
        raise PayloadLimitError(what, "depth", MAX_PAYLOAD_DEPTH)
    return json.loads(text)


def _is_unicode(text: str) -> bool:
    """Whether a string is Unicode text (no surrogate code point, which JSON would not keep)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _bounded(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE:,} characters cut)"


def _exception_text(exc: BaseException) -> str:
    """`str(exc)`, or what it is when its text cannot be made (its `__str__` raises)."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose text cannot be shown>"


E = TypeVar("E")


class _Live:
    """One live effect: its task, and what a cancel needs."""

    __slots__ = (
        "abandoned",
        "cancelled",
        "directive",
        "effect",
        "entered",
        "executor",
        "grace",
        "queued",
        "quiet",
        "sequence",
        "task",
        "timed_out",
    )

    def __init__(self, directive: StartEffect, executor: Executor | None) -> None:
        self.directive = directive
        self.executor = executor
        self.effect: Effect | None = None
        self.task: asyncio.Task[None] | None = None
        self.quiet = False
        self.sequence = 0
        self.entered = False  # the task's body has begun (a task cancelled before never does)
        self.queued: Any = None  # where its latest progress report waits to be journaled
        self.cancelled = False  # a `cancel_effects` asked it to stop
        self.timed_out = False  # its policy's timeout asked it to stop
        self.grace: asyncio.TimerHandle | None = None  # when the runtime stops waiting (RT-26)
        self.abandoned = False  # answered for it past its grace: what it does later is dropped


class EffectManager:
    """Runs effects as tasks, one executor per step class, and reports their lifecycle."""

    def __init__(
        self,
        executors: Mapping[StepClass, Executor],
        *,
        post: Post,
        post_and_wait: PostAndWait,
        first_start: FirstStart,
        clock: Callable[[], float],
        ids: Callable[[], str],
        post_latest: PostLatest | None = None,
    ) -> None:
        self.executors = dict(executors)
        self._post = post
        self._post_latest = post_latest
        self._post_and_wait = post_and_wait
        self._first_start = first_start
        self._clock = clock
        self._ids = ids
        self._live: dict[str, _Live] = {}
        self._loop_thread = threading.get_ident()
        # An effect run inline answers before anything could report for it: its reports drop.
        self._inline_reporter = _Reporter(self, None)

    # --- what the runtime asks ------------------------------------------------------------------

    def can_start_now(self, directive: StartEffect) -> bool:
        """Whether the runtime may journal `effect_started` together with the directive's cause."""
        return directive.delay <= 0 and directive.step_class in self.executors

    def start(
        self, d: StartEffect, started_at: float | None, first_started_at: float | None
    ) -> None:
        """Carry out a `start_effect`; `started_at` is set when its start is already journaled."""
        executor = self.executors.get(d.step_class)
        if (
            started_at is not None
            and isinstance(executor, FunctionExecutor)
            and executor.is_inline(d.input)
        ):
            effect = self._effect(d, started_at, first_started_at, None)
            try:
                output = executor.call_inline(effect)
            except Exception as exc:
                self._post(d.conversation_id, self._failed(d, exc))
            else:
                self._post(d.conversation_id, self._completed(d, output))
            return
        live = _Live(d, executor)
        self._live[d.effect_id] = live
        live.task = asyncio.get_running_loop().create_task(
            self._run(live, d, started_at, first_started_at), name=f"effect {d.effect_id}"
        )

    def cancel(self, d: CancelEffects) -> None:
        """Carry out a `cancel_effects`: call each executor's hook, cancel each task, at once."""
        for effect_id in d.effect_ids:
            live = self._live.get(effect_id)
            if live is None or live.task is None:
                continue  # it has answered already; that answer is on its way to the journal
            hook = getattr(live.executor, "cancel", None)
            if hook is not None and live.effect is not None:
                try:
                    hook(live.effect)
                except Exception:
                    log.exception("the cancel hook of %s raised", effect_id)
            if not live.entered:
                # Cancelled before its first step, the task would end without running a line of
                # its body, so without answering: answer for it here.
                live.task.cancel(d.reason)
                start = live.directive
                self._answer(live, start, self._canceled(start))
                continue
            live.cancelled = True
            self._stop(live, d.reason)

    def _stop(self, live: _Live, reason: str) -> None:
        """Cancel a live effect's task and give it its grace to answer (RT-24, RT-26)."""
        assert live.task is not None
        live.task.cancel(reason)
        if live.grace is None:
            live.grace = asyncio.get_running_loop().call_later(
                live.directive.policy.cancel_grace, self._abandon, live
            )

    def _time_out(self, live: _Live) -> None:
        """The policy's timeout passed: stop the effect; it answers as timed out (RT-12)."""
        if self._live.get(live.directive.effect_id) is not live or live.task is None:
            return
        live.timed_out = True
        hook = getattr(live.executor, "cancel", None)
        if hook is not None and live.effect is not None:
            try:
                hook(live.effect)
            except Exception:
                log.exception("the cancel hook of %s raised", live.directive.effect_id)
        self._stop(live, "timeout")

    def _abandon(self, live: _Live) -> None:
        """An effect asked to stop has not answered within its grace: answer for it, loudly.

        Its task (a thread, or an executor that ignores cancellation) may still be running: a
        cancel is journaled `effect_lost` (`abandoned_after_cancel`), so the step can go on; a
        timeout fails the attempt as `timeout`, as one that stopped would (RT-26).
        """
        d = live.directive
        if self._live.get(d.effect_id) is not live or live.quiet:
            return
        log.warning(
            "the %s step %r of run %r (idempotency key %s) did not stop within its %ss cancel "
            "grace: abandoned, it may still be running",
            d.step_class.value,
            d.step_id,
            d.run_id,
            d.idempotency_key,
            d.policy.cancel_grace,
        )
        live.abandoned = True
        if live.timed_out and not live.cancelled:
            event = self._failed(d, TimeoutError())
        else:
            event = effect_event(EffectLost, d, self._ids(), self._clock(), ABANDONED_REASON)
        self._answer(live, d, event)
        live.quiet = True  # what the task does later is not reported (it is logged, below)

    def cancel_quietly(self, conversation_id: str | None = None) -> list[asyncio.Task[None]]:
        """Cancel live effects (of one conversation, or all) without reporting anything."""
        tasks = []
        for live in list(self._live.values()):
            task = live.task
            if task is None or (
                conversation_id is not None and live.directive.conversation_id != conversation_id
            ):
                continue
            live.quiet = True
            task.cancel("runtime closing")
            if not live.entered:
                self._live.pop(live.directive.effect_id, None)
            tasks.append(task)
        return tasks

    def has_live(self, conversation_id: str) -> bool:
        """Whether an effect of the conversation is still running (or cancelling)."""
        return any(
            live.directive.conversation_id == conversation_id for live in self._live.values()
        )

    def live_effect_ids(self) -> list[str]:
        """The effects running now (for tests and `inspect`)."""
        return list(self._live)

    def cancelling_tasks(self) -> list[asyncio.Task[None]]:
        """Tasks asked to cancel that have not answered yet."""
        return [
            live.task
            for live in self._live.values()
            if live.task is not None and live.task.cancelling() and not live.quiet
        ]

    # --- the effect's task ----------------------------------------------------------------------

    async def _run(
        self,
        live: _Live,
        d: StartEffect,
        started_at: float | None,
        first_started_at: float | None,
    ) -> None:
        cid = d.conversation_id
        live.entered = True
        try:
            if started_at is None:
                if d.delay > 0:
                    await asyncio.sleep(d.delay)
                started_at = self._clock()
                started = effect_event(EffectStarted, d, self._ids(), started_at)
                outcome = await self._post_and_wait(cid, started)
                if not outcome.applied:
                    return  # stale or late: the step no longer waits for this effect
                first_started_at = self._first_start(cid, d.run_id, d.step_id)
            effect = self._effect(d, started_at, first_started_at, live)
            live.effect = effect
            bind_current(effect)  # this task's own context: visible to the executor only
            executor = live.executor
            if executor is None:
                raise EffectError(
                    FailureCategory.not_found,
                    f"no executor for step class {d.step_class.value!r}; pass one in "
                    f"Runtime(executors={{...}})",
                    retryable=False,
                )
            timeout = d.policy.timeout
            if timeout is None:
                output = await executor.execute(effect)
            else:
                # Not `asyncio.timeout`: a timed-out effect gets the cancel's grace too (RT-26).
                deadline = asyncio.get_running_loop().call_later(timeout, self._time_out, live)
                try:
                    output = await executor.execute(effect)
                finally:
                    deadline.cancel()
        except asyncio.CancelledError:
            if live.quiet:
                raise
            if live.timed_out and not live.cancelled:  # its timeout stopped it, not a cancel
                self._answer(live, d, self._failed(d, TimeoutError()))
            else:
                self._answer(live, d, self._canceled(d))
            return
        except Exception as exc:
            timed_out = live.timed_out and not live.cancelled
            self._answer(live, d, self._failed(d, TimeoutError() if timed_out else exc))
            return
        if live.timed_out and not live.cancelled:  # a thread that returned past its timeout
            self._answer(live, d, self._failed(d, TimeoutError()))
            return
        self._answer(live, d, self._completed(d, output))

    def _answer(self, live: _Live, d: StartEffect, event: Event) -> None:
        # No await between the removal and the report: a cancel sees one or the other.
        if self._live.get(d.effect_id) is live:
            del self._live[d.effect_id]
        if live.grace is not None:
            live.grace.cancel()
            live.grace = None
        # The task's context holds the effect, whose reporter holds `live`: let go of both so
        # the answered effect is freed by reference counting, not left to the cyclic GC.
        live.task = None
        live.effect = None
        live.queued = None
        if not live.quiet:
            self._post(d.conversation_id, event)
        elif live.abandoned:
            log.warning(
                "the abandoned effect %s (idempotency key %s) ended after all: %s",
                d.effect_id,
                d.idempotency_key,
                type(event).__name__,
            )

    def _effect(
        self,
        d: StartEffect,
        started_at: float,
        first_started_at: float | None,
        live: _Live | None,
    ) -> Effect:
        return Effect(
            conversation_id=d.conversation_id,
            run_id=d.run_id,
            step_id=d.step_id,
            effect_id=d.effect_id,
            attempt=d.attempt,
            step_class=d.step_class,
            input=d.input,
            policy=d.policy,
            idempotency_key=d.idempotency_key,
            started_at=started_at,
            first_started_at=first_started_at if first_started_at is not None else started_at,
            report=self._inline_reporter if live is None else _Reporter(self, live),
        )

    def _report(self, reporter: _Reporter, value: JsonValue) -> None:
        """Journal one progress report of a live effect (called on the loop's thread); a report
        not yet journaled is replaced by the next one (RT-19)."""
        live = reporter.live
        if live is None or self._live.get(live.directive.effect_id) is not live:
            return  # the effect has answered already: progress after the answer is dropped
        d = live.directive
        live.sequence += 1
        event = effect_event(EffectProgress, d, self._ids(), self._clock(), live.sequence, value)
        if self._post_latest is None:
            self._post(d.conversation_id, event)
        else:
            live.queued = self._post_latest(d.conversation_id, event, live.queued)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop (and its thread) that progress reports must reach."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def _call_soon_threadsafe(self, report: Callable[[JsonValue], None], value: JsonValue) -> None:
        self._loop.call_soon_threadsafe(report, value)

    # --- the answers ----------------------------------------------------------------------------

    def _completed(self, d: StartEffect, output: JsonValue) -> Event:
        try:
            output = json_normalized(output, f"the output of the {d.step_class.value} step")
        except PayloadLimitError as exc:
            message = exc.message
        except Exception as exc:  # anything else normalizing raises: not JSON (RT-11)
            message = (
                f"the {d.step_class.value} step returned a value that is not JSON: "
                f"{_exception_text(exc)}"
            )
        else:
            return effect_event(EffectCompleted, d, self._ids(), self._clock(), output)
        invalid = EffectError(FailureCategory.invalid_output, message, retryable=False)
        return self._failed(d, invalid)

    def _failed(self, d: StartEffect, exc: BaseException) -> Event:
        details: JsonValue = None
        if isinstance(exc, EffectError):
            category, retryable = exc.category, exc.retryable
            message = exc.message if type(exc.message) is str else shown(exc.message)
            try:
                details = json_normalized(exc.details, "the failure's details")
            except PayloadLimitError as error:
                details = error.message
            except Exception:  # not JSON: kept as a short description
                details = shown(exc.details)
        elif isinstance(exc, TimeoutError):
            category, message, retryable = FailureCategory.timeout, _timeout_message(d), True
        else:
            category, retryable = FailureCategory.executor_error, False
            message = f"{type(exc).__name__}: {_exception_text(exc)}"
        return effect_event(
            EffectFailed,
            d,
            self._ids(),
            self._clock(),
            category,
            _bounded(message),
            retryable,
            details,
        )

    def _canceled(self, d: StartEffect) -> Event:
        return effect_event(EffectCanceled, d, self._ids(), self._clock())


class _Reporter:
    """`Effect.progress` of one effect: hops to the loop's thread, then journals the report.

    An object rather than a closure: a closure that names itself (to hop threads) is a
    reference cycle, and one per effect would leave every step's directive to the cyclic GC.
    """

    __slots__ = ("live", "manager")

    def __init__(self, manager: EffectManager, live: _Live | None) -> None:
        self.manager = manager
        self.live = live  # None for effects run inline: they cannot report while they run

    def __call__(self, value: JsonValue) -> None:
        # Normalized in the reporter's own thread: a value over the limits raises to it (RT-22).
        value = json_normalized(value, "the progress value")
        manager = self.manager
        if threading.get_ident() != manager._loop_thread:
            manager._call_soon_threadsafe(self, value)
            return
        manager._report(self, value)


def _timeout_message(d: StartEffect) -> str:
    return f"the {d.step_class.value} step took longer than its {d.policy.timeout}s timeout"
