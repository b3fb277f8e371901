"""The log pump: a live session's output goes to its log file, its execution row, its watchers.

One ``Pump`` per live session follows ``backend.logs(since=<last stored engine stamp>,
follow=True)``. Each line is numbered and buffered by the run's ``RunLog``; the hub's flusher
writes buffers to the files every ``flush_interval`` (one ``write`` per batch) and hands the
flushed lines to its listeners (the Socket.IO rooms), and copies new stdout/stderr to the row
at most every ``db_interval``. After a manager restart the pump carries on from the last stored
line: since the file is written before anything else learns of a line, nothing is doubled, and
since the engine keeps the output, nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import OperationalError

from manager.logs.store import TRUNCATION_MARK, Line, LogWriter, iter_lines, now_stamp
from manager.models import Execution
from manager.sessions.backend import BackendError, Handle, SessionBackend

if TYPE_CHECKING:
    from manager.logs.hub import LogHub

log = logging.getLogger("scriptsmanager")

YIELD_EVERY = 64  # lines a busy pump reads before letting other greenlets run
BUFFER_LIMIT = 1024 * 1024  # buffered bytes that make a busy pump flush before the next tick
WAITED = 0.0005  # seconds between two lines that show the read had to wait for output
ROW_STREAMS = {"stdout": "output", "stderr": "error_output"}
CUT_ROOM = 128  # the capture's cut marker after SM_LOG_MAX_LINE bytes of a line

Listener = Callable[[str, list[Line]], None]


class RunLog:
    """One run's open log: its writer, the caps, and the output the row does not have yet."""

    def __init__(
        self,
        execution_uuid: str,
        user_id: int,
        writer: LogWriter,
        *,
        max_bytes: int,
        max_line: int,
        row_max_bytes: int,
    ):
        self.uuid = execution_uuid
        self.user_id = user_id
        self.writer = writer
        self.path = writer.path
        self.max_bytes = max_bytes
        self.max_line = max_line
        self.row_max_bytes = row_max_bytes
        self.cursor = writer.resume.cursor  # engine stamp of the last container line read
        self.capped = writer.resume.capped
        # The row's log_truncated flag is not set yet (a capped file: an earlier manager may
        # have died before setting it; setting it twice does no harm).
        self.truncated_unsynced = self.capped
        self.notes: set[str] = set()  # debug notes from the backend stored by this process
        # A file that already holds output was written by an earlier manager: the row may lag.
        self.row_stale = writer.resume.cursor is not None
        self.lock = threading.RLock()
        self.row_lock = threading.Lock()  # row copies in order, one at a time
        self.closed = False
        self.dropped = 0
        self.touched = time.monotonic()
        self.pump: Pump | None = None
        self._row: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._row_bytes = {"stdout": 0, "stderr": 0}

    def add(self, stream: str, text: str, stamp: str | None, truncated: bool = False) -> bool:
        """Store one container line (or a ``debug`` note about the output), within the caps.

        A ``truncated`` note closes the output: it is stored with ``TRUNCATION_MARK`` and
        what follows is dropped. False once the log is closed.
        """
        with self.lock:
            if self.closed:
                return False
            if stamp:
                self.cursor = stamp
            if self.capped:
                self.dropped += 1
                return True
            if truncated:
                self._truncate(text, stamp)
                return True
            note = stream == "debug"
            # A note about the end of the output comes again when a drain reads after a live
            # pump: store it once. (Notes with a stamp are resumed past, like lines.)
            if note and stamp is None and text in self.notes:
                return True
            if len(text) * 4 > self.max_line:  # chars: up to 4 bytes each
                text = self._cut(text)
            # Notes count too: a session writing garbage into its capture file makes many.
            if self.writer.size + len(text) + 64 > self.max_bytes:
                self.dropped += 1
                self._truncate(
                    f"this run reached the log size cap of {self.max_bytes} bytes"
                    " (SM_LOG_MAX_BYTES); its further output is not stored.",
                    None,
                )
                return True
            self.writer.append(stream, text, stamp)
            if note:
                if stamp is None and len(self.notes) < 64:
                    self.notes.add(text)
            else:
                self._queue_row(stream, text)
            self.touched = time.monotonic()
            return True

    def _truncate(self, note: str, stamp: str | None) -> None:
        self.capped = True
        self.truncated_unsynced = True
        # The manager's clock, not the capture's: the note is not a container line, so a
        # resumed pump still starts after the last one stored.
        self.writer.append("debug", f"{TRUNCATION_MARK} {note}")
        self.touched = time.monotonic()

    def _cut(self, text: str) -> str:
        data = text.encode("utf-8", "replace")
        # The capture cuts lines itself and adds a marker; cut only what it did not.
        if len(data) <= self.max_line + CUT_ROOM:
            return text
        kept = data[: self.max_line].decode("utf-8", "ignore")
        return f"{kept} [line cut: {len(data)} bytes, SM_LOG_MAX_LINE={self.max_line}]"

    def _queue_row(self, stream: str, text: str) -> None:
        size = self._row_bytes[stream]
        if size >= self.row_max_bytes:
            return
        size += len(text) + 1
        self._row[stream].append(text)
        if size >= self.row_max_bytes:
            self._row[stream].append(f"[more output in the log file {self.path.name}]")
        self._row_bytes[stream] = size

    def debug(self, message: str, stamp: str) -> Line:
        with self.lock:
            self.touched = time.monotonic()
            return self.writer.append("debug", message, stamp)

    def take_row(self) -> dict[str, str]:
        """The row's new text per stream (``{}`` when nothing is new); the caller flushed."""
        with self.lock:
            taken = {s: "\n".join(t) + "\n" for s, t in self._row.items() if t}
            self._row = {"stdout": [], "stderr": []}
            return taken

    def give_back(self, taken: dict[str, str]) -> None:
        """Put back what could not be written to the row, ahead of anything newer."""
        with self.lock:
            for stream, text in taken.items():
                self._row[stream].insert(0, text[:-1])

    def rebuild_row(self) -> dict[str, str]:
        """The row's stdout/stderr from the file (after a restart), capped like the live path."""
        self._row = {"stdout": [], "stderr": []}
        self._row_bytes = {"stdout": 0, "stderr": 0}
        for count, line in enumerate(iter_lines(self.path, streams=ROW_STREAMS)):
            self._queue_row(line.stream, line.text)
            if min(self._row_bytes.values()) >= self.row_max_bytes:
                break
            if count % 2048 == 2047:
                time.sleep(0)  # a long file must not starve the other greenlets
        rebuilt = {s: "\n".join(t) + "\n" if t else "" for s, t in self._row.items()}
        self._row = {"stdout": [], "stderr": []}
        self.row_stale = False
        return rebuilt


class Pump:
    """Follow one session's output into its ``RunLog`` until the stream ends."""

    def __init__(
        self,
        hub: LogHub,
        run: RunLog,
        backend: SessionBackend,
        handle: Handle,
        *,
        follow: bool = True,
    ):
        self.hub = hub
        self.run_log = run
        self.backend = backend
        self.handle = handle
        self.follow = follow
        self.pace = hub.settings.read_pace if follow else 0.0
        self.done = threading.Event()
        self.lines = 0
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"sm-log-pump-{self.run_log.uuid[:8]}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return not self.done.is_set()

    def run(self) -> None:
        """Pump until the session's output ends (it exited, or the engine broke off)."""
        run = self.run_log
        try:
            if run.row_stale:  # the file was written by an earlier manager process
                self.hub.rewrite_row(run)
                if self.follow:
                    run.debug(f"log pump resumed after line {run.writer.last_seq}", now_stamp())
                    self.hub.flush(run)
            stream = self.backend.logs(self.handle, since=run.cursor, follow=self.follow)
            clock, pace = time.monotonic, self.pace
            read_at = paused_at = clock()
            for line in stream:
                now = clock()
                waited = now - read_at > WAITED  # the read itself, not the yields below
                if not run.add(line.stream, line.text, line.timestamp, line.truncated):
                    break
                self.lines += 1
                if self.lines % YIELD_EVERY == 0:
                    if run.writer.pending_bytes > BUFFER_LIMIT:
                        self.hub.flush(run)
                    time.sleep(0)  # gevent: let the flusher, the sockets and requests run
                if pace and waited and now - paused_at > pace:
                    # That read waited for output: it trickles in, and reading it line by
                    # line costs a wake-up a line. Let a few milliseconds of it gather (at
                    # most every other moment, so a pump never falls behind).
                    time.sleep(pace)
                    paused_at = clock()
                read_at = clock()
        except BackendError as exc:
            # The monitor starts a new pump for a session still live; it resumes from here.
            self.error = exc.message
            log.warning("log pump %s: %s %s", run.uuid, exc.message, exc.detail)
        finally:
            self.hub.flush(run)
            self.hub.sync_row(run)
            self.done.set()
        ended = self.hub.output_ended
        if ended is not None and self.follow and self.error is None:
            ended()


def write_row(
    engine: Engine,
    execution_uuid: str,
    texts: dict[str, str],
    replace: bool,
    truncated: bool = False,
) -> bool:
    """Append (or with ``replace`` set) stdout/stderr on the row, and set ``log_truncated``
    when ``truncated``; False when SQLite is busy.

    On SQLite the write does not wait for the lock: under gevent a waiting SQLite call blocks
    every greenlet, including the one holding the lock. The caller retries later instead.
    """
    values: dict[str, Any] = {}
    for stream, text in texts.items():
        column = getattr(Execution, ROW_STREAMS[stream])
        values[ROW_STREAMS[stream]] = text if replace else func.coalesce(column, "") + text
    if truncated:
        values["log_truncated"] = True
    if not values:
        return True
    statement = update(Execution).where(Execution.execution_uuid == execution_uuid)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        previous = (0, 2)
        if sqlite:
            previous = (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0,
                        conn.exec_driver_sql("PRAGMA synchronous").scalar() or 2)  # fmt: skip
            # No fsync for this commit either: it blocks every greenlet for milliseconds, and
            # the row is only a copy of the log file, which is the record.
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        try:
            conn.execute(statement.values(**values))
            conn.commit()
        except OperationalError as exc:
            conn.rollback()
            if sqlite and "locked" in str(exc).lower():
                return False
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(previous[0])}")
                conn.exec_driver_sql(f"PRAGMA synchronous={int(previous[1])}")
    return True
