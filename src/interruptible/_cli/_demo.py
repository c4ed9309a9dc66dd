"""The demo's display: the run followed live, its gate answered, Ctrl-C, the closing words.

The demo's pipeline is the runtime's (`_runtime/_demo.py`); this is what a person sees of it.
Ctrl-C interrupts the *run* (the process catches SIGINT, asks the runtime to interrupt, waits
until the run is interrupted and prints how to resume it); a second Ctrl-C leaves at once
(CLI-5); `interruptible resume RUN_ID`, in a new process, continues it from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NoReturn, TextIO

from .._lifecycle import RunStatus, StepStatus
from .._runtime._demo import DEMO_MODE, SPEED, is_no
from .._runtime._handle import RunHandle
from .._runtime._runtime import Runtime
from .._runtime._snapshot import RunSnapshot
from .._vocabulary import EmitLifecycle, EmitOutput, EmitProgress, JsonValue
from ._shell import DEFAULT_DB, INTERRUPTED, command

DEMO_DB: Final = DEFAULT_DB

# --- the display --------------------------------------------------------------------------------

_STYLE: Final = {
    "pending": "dim",
    "skipped": "dim",
    "scheduled": "cyan",
    "running": "bold cyan",
    "waiting_input": "bold yellow",
    "cancelling": "magenta",
    "retrying": "yellow",
    "completed": "green",
    "failed": "bold red",
    "canceled": "red",
    "interrupted": "bold magenta",
}


def _short(value: JsonValue, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class Display:
    """The run's steps, their statuses and progress: a rich live table, or plain lines."""

    def __init__(self, out: TextIO, *, plain: bool) -> None:
        self.out = out
        self.progress: dict[str, str] = {}
        self.deadlines: dict[str, float] = {}  # a running timer's deadline, for a countdown
        self.note = ""
        # Whether stdout was closed under the display (piped into head), and whom to tell.
        self.closed = False
        self.on_closed: Callable[[], None] | None = None
        self._live: Any = None
        self._last_line: dict[str, str] = {}
        if not plain:
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:  # rich is optional: `pip install interruptible[cli]`
                plain = True
            else:
                console = Console(file=out)
                self._console = console
                self._live = Live(console=console, refresh_per_second=12, transient=False)
        self.plain = plain

    def __enter__(self) -> Display:
        if self._live is not None:
            with self._writing():
                self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Where the display writes: a stdout closed under it is noted once and told to
        `on_closed`, never raised into the tasks that show the run (CLI-5)."""
        try:
            yield
        except BrokenPipeError:
            if not self.closed:
                self.closed = True
                if self.on_closed is not None:
                    self.on_closed()

    def close(self) -> None:
        """Stop the live table (it gives the terminal its cursor back); closing twice is once."""
        live, self._live = self._live, None
        if live is not None:
            with self._writing():
                live.__exit__(None, None, None)

    def pause(self) -> Any:
        """A context in which the terminal is free for a prompt."""
        if self._live is None:
            return contextlib.nullcontext()
        live = self._live

        @contextlib.contextmanager
        def paused() -> Any:
            with self._writing():
                live.stop()
            try:
                yield
            finally:
                with self._writing():
                    live.start()

        return paused()

    def show(self, snapshot: RunSnapshot) -> None:
        """Render the run as it is now."""
        if self.closed:
            return
        with self._writing():
            if self._live is not None:
                self._live.update(self._table(snapshot))
            elif self.plain:  # (a closed live table shows nothing more)
                self._lines(snapshot)

    def say(self, text: str) -> None:
        """A line under the display (or printed, in plain mode)."""
        self.note = text
        if self.plain and text and not self.closed:
            with self._writing():
                print(text, file=self.out, flush=True)

    def _rows(self, snapshot: RunSnapshot) -> list[tuple[str, str, str, str, str]]:
        planned = {step.step_id: step for step in snapshot.steps}
        rows = []
        for definition in DEMO_MODE.steps:
            step = planned.get(definition.step_id)
            status = step.status.value if step is not None else "pending"
            if step is None and snapshot.is_terminal:
                status = "skipped"  # the run ended without planning it (an editor's no)
            attempt = str(step.attempt) if step is not None and step.attempt else ""
            detail = self.progress.get(definition.step_id, "")
            deadline = self.deadlines.get(definition.step_id)
            if step is not None and step.status is StepStatus.running and deadline is not None:
                detail = f"{max(0.0, deadline - time.time()):.1f} s left"
            if step is not None and step.status is StepStatus.completed:
                detail = _short(step.output)
            elif step is not None and step.failure is not None:
                detail = step.failure.message
            rows.append((definition.step_id, definition.label, status, attempt, detail))
        return rows

    def _table(self, snapshot: RunSnapshot) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=f"run {snapshot.run_id}  [{_STYLE.get(snapshot.status.value, '')}]"
            f"{snapshot.status.value}[/]",
            title_justify="left",
            expand=False,
        )
        for column in ("step", "what", "status", "try", "detail"):
            table.add_column(column, no_wrap=column != "detail")
        for step_id, label, status, attempt, detail in self._rows(snapshot):
            table.add_row(
                step_id, label, Text(status, style=_STYLE.get(status, "")), attempt, detail
            )
        hint = self.note or ("Ctrl-C interrupts the run" if not snapshot.is_terminal else "")
        return Group(table, Text(hint, style="dim"))

    def _lines(self, snapshot: RunSnapshot) -> None:
        head = f"run {snapshot.run_id}: {snapshot.status.value}"
        if self._last_line.get("") != head:
            self._last_line[""] = head
            print(head, file=self.out, flush=True)
        for step_id, _label, status, attempt, detail in self._rows(snapshot):
            line = (
                f"  {step_id:<10} {status:<13} {('try ' + attempt) if attempt else '':<6} {detail}"
            )
            if self._last_line.get(step_id) != line and status != "pending":
                self._last_line[step_id] = line
                print(line.rstrip(), file=self.out, flush=True)


# --- following a run ----------------------------------------------------------------------------


def _read_line(fd: int) -> str:
    """One line from `fd`, read below Python's buffered `stdin`: a daemon thread blocked here
    holds no interpreter lock, so the process can exit while it waits (the answer may come
    from another terminal: `interruptible answer`). Raises `EOFError` at the end of input."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1024)
        if not chunk:
            if data:
                break
            raise EOFError
        data += chunk
    return data.decode(errors="replace").rstrip("\r\n")


def _ask_in_thread(question: str, loop: asyncio.AbstractEventLoop) -> asyncio.Future[str]:
    """The prompt, in a daemon thread (a blocked prompt must never keep the process alive)."""
    future: asyncio.Future[str] = loop.create_future()

    def prompt() -> None:
        try:
            print(question, end="", flush=True)
            answer = _read_line(sys.stdin.fileno())
        except (EOFError, OSError, ValueError):
            answer = "yes"

        def deliver() -> None:
            if not future.done():
                future.set_result(answer)

        loop.call_soon_threadsafe(deliver)

    threading.Thread(target=prompt, daemon=True).start()
    return future


def leave_now(display: Display, run_id: str, db: str) -> NoReturn:
    """A second Ctrl-C: stop the display, say in one line how to go on, and exit 130 at once,
    without waiting for effects that ignore cancellation (CLI-5). The journal is consistent:
    every write is one transaction made on the event loop, which is running this, so none is
    half done; the next process that opens the journal takes the conversation over (OWN-4)."""
    display.close()
    line = (
        f"left at once (second Ctrl-C), without waiting for run {run_id} to stop; the journal "
        f"is consistent: resume with: {command('resume', run_id, db=db)}"
    )
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        print(line, file=sys.stderr, flush=True)
    os._exit(INTERRUPTED)


async def follow(
    rt: Runtime,
    handle: RunHandle,
    display: Display,
    *,
    ask: bool,
    answer_after: float = 1.5 / SPEED,
    on_sigint: Callable[[], None] | None = None,
    db: str = DEMO_DB,
) -> RunSnapshot:
    """Show the run until it is interrupted or ends, answering its gate; Ctrl-C interrupts it,
    a second Ctrl-C leaves at once (`db` names the journal in what it prints)."""
    loop = asyncio.get_running_loop()
    subscription = rt.subscribe(handle.conversation_id)
    interrupting = False
    tasks: set[asyncio.Task[Any]] = set()  # kept referenced until done

    def spawn(coro: Any) -> None:
        task = loop.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def interrupt(reason: str = "ctrl-c") -> None:
        nonlocal interrupting
        if interrupting:
            if reason == "ctrl-c":
                leave_now(display, handle.run_id, db)
            return
        interrupting = True
        display.say("interrupting the run…")
        spawn(interrupt_quietly(reason))

    async def interrupt_quietly(reason: str) -> None:
        # The run may have ended a moment before: then there is nothing to interrupt.
        with contextlib.suppress(Exception):
            await rt.interrupt_run(handle.conversation_id, reason, run_id=handle.run_id)

    # Nobody reads the run any more (piped into head): stop it as Ctrl-C would, resumable.
    display.on_closed = lambda: interrupt("output closed")

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint or interrupt)
        installed = True

    async def answer_gate(step_id: str) -> None:
        if ask:
            with display.pause():
                reply = await _ask_in_thread("Publish the brief? [Y/n] ", loop)
            value: JsonValue = {"approved": reply.strip().lower() not in ("n", "no")}
        else:
            display.say(f"the editor answers the gate in {answer_after:g} s (use --ask to answer)")
            await asyncio.sleep(answer_after)
            value = {"approved": True, "by": "demo-editor"}
        with contextlib.suppress(Exception):
            await handle.provide_input(step_id, value)
        display.say("the editor said no: nothing will be published" if is_no(value) else "")

    async def consume() -> None:
        async for directive in subscription:
            if isinstance(directive, EmitProgress):
                progress = directive.progress
                if isinstance(progress, dict) and "done" in progress:
                    display.progress[directive.step_id] = (
                        f"{progress['done']}/{progress['of']} {progress.get('city', '')}"
                    )
                elif isinstance(progress, dict) and "deadline" in progress:
                    display.deadlines[directive.step_id] = progress["deadline"]
            elif (
                isinstance(directive, EmitLifecycle)
                and directive.status == StepStatus.waiting_input.value
                and directive.step_id is not None
            ):
                spawn(answer_gate(directive.step_id))
            now = rt.snapshot(handle.conversation_id, handle.run_id)
            display.show(now)
            if not any(step.status is StepStatus.cancelling for step in now.steps):
                quiet.set()
            else:
                quiet.clear()
            if isinstance(directive, EmitOutput):
                return

    async def tick() -> None:
        # Redraws for the timer's countdown only; state changes arrive by subscription.
        while True:
            await asyncio.sleep(0.2)
            if display.deadlines:
                display.show(rt.snapshot(handle.conversation_id, handle.run_id))

    quiet = asyncio.Event()  # no step is waiting for its cancel to be answered
    consumer = loop.create_task(consume())
    ticker = loop.create_task(tick())
    try:
        current = rt.snapshot(handle.conversation_id, handle.run_id)
        display.show(current)
        for step in current.steps:
            if step.status is StepStatus.waiting_input:
                spawn(answer_gate(step.step_id))
        final = await handle.wait()
        if final.status is RunStatus.interrupted and any(
            step.status is StepStatus.cancelling
            for step in rt.snapshot(handle.conversation_id, handle.run_id).steps
        ):
            # Show the interrupted step pending again, once its effect answered the cancel.
            quiet.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await quiet.wait()
            final = rt.snapshot(handle.conversation_id, handle.run_id)
        display.show(final)
        return final
    finally:
        subscription.close()
        consumer.cancel()
        ticker.cancel()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def closing_words(snapshot: RunSnapshot, out: TextIO, *, db: str = DEMO_DB) -> int:
    """What to print once the run settled, and the exit status."""
    if snapshot.status is RunStatus.interrupted:
        print(f"run {snapshot.run_id} interrupted ({snapshot.reason}).", file=out)
        print(f"resume with: {command('resume', snapshot.run_id, db=db)}", file=out)
        return INTERRUPTED
    if snapshot.status is RunStatus.completed:
        published = isinstance(snapshot.output, Mapping) and snapshot.output.get("published")
        what = "the brief was published" if published else "the editor said no: not published"
        print(f"run {snapshot.run_id} completed: {what}.", file=out)
        return 0
    error = snapshot.error
    why = f": {error.category.value}: {error.message}" if error is not None else ""
    print(f"run {snapshot.run_id} {snapshot.status.value}{why}", file=out)
    return 1


def out_stream() -> TextIO:
    """Where the demo writes (stdout)."""
    return sys.stdout
