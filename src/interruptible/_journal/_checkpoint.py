"""The SQLite journal's checkpointer: WAL checkpoints on a thread of their own.

Theory of operation
-------------------
In WAL mode a commit appends pages to the `-wal` file; a *checkpoint* copies them back into the
database file (and, unless `synchronous=OFF`, fsyncs both) so that the log can start over.
SQLite's default runs a checkpoint inside the commit that takes the log past 1,000 pages, so one
commit in a few hundred pays for all of them, on the writer's thread: for the embedded runtime,
that is the event loop. Measured on a 1,000-step run with `synchronous=NORMAL`, these inline
checkpoints were about a sixth of a step's time.

So the journal's connection turns the automatic checkpoint off (`wal_autocheckpoint=0`) and a
`Checkpointer` runs it instead: a daemon thread with its own connection, started the first time
it is needed, that runs `PRAGMA wal_checkpoint(PASSIVE)` each time the writer has appended
`every` rows since the last request (a row changes at most one leaf page, so this bounds the log
at about SQLite's own threshold). A passive checkpoint waits for no reader and no writer; SQLite
releases the GIL while it copies and syncs, so on a machine with a second core it costs the
writer nothing. Should the writer outpace it, the log grows until the checkpointer catches up;
it never blocks an append. A checkpoint that fails is logged and tried again at the next request:
the log keeps every commit, so nothing is lost, only the file is larger. If the thread cannot
open its connection at all, `note` tells the writer to checkpoint inline, as SQLite would have.

`close` stops the thread before the journal closes its own connection; that connection, the last
one, then checkpoints what is left and removes the log, as SQLite does.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Final

logger = logging.getLogger("interruptible.journal")

# Rows appended between two checkpoint requests: SQLite's default threshold is 1,000 pages.
DEFAULT_EVERY: Final = 1000


class Checkpointer:
    """Runs passive WAL checkpoints of one SQLite file on a thread of its own."""

    def __init__(self, path: str, synchronous: str, every: int = DEFAULT_EVERY) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 row, got {every}")
        self.path = path
        self.synchronous = synchronous
        self.every = every
        self.checkpoints = 0  # checkpoints completed (for tests and benchmarks)
        self.failures = 0
        self._pending = 0  # rows appended since the last request
        self._wanted = threading.Event()
        self._stopping = False
        self._dead = False  # the thread could not connect: the writer checkpoints inline
        self._thread: threading.Thread | None = None

    def note(self, rows: int) -> bool:
        """The writer appended `rows` rows; request a checkpoint once `every` have piled up.

        True when a checkpoint is due and the thread cannot run it: the caller runs it inline.
        """
        self._pending += rows
        if self._pending < self.every:
            return False
        self._pending = 0
        self.request()
        return self._dead

    def request(self) -> None:
        """Ask for a checkpoint now (starts the thread the first time)."""
        if self._stopping:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"interruptible checkpointer {self.path}", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        """Stop the thread and wait for it (a checkpoint in progress finishes first)."""
        self._stopping = True
        self._wanted.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            self.failures += 1
            self._dead = True
            logger.warning(
                "journal %s: the checkpointer could not connect (%s); checkpoints run inline",
                self.path,
                exc,
            )
            return
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    self.failures += 1
                    logger.warning("journal %s: a WAL checkpoint failed: %s", self.path, exc)
                else:
                    self.checkpoints += 1
        finally:
            conn.close()
