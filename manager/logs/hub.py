"""The process's live logs: an open ``RunLog`` per run being written, its pump, the flushers.

``LogHub`` lives in ``app.extensions["sm_logs"]``. The session service starts a pump when a
container starts, the monitor starts one for a live session that has none (after a restart)
and drains it when the session ends; ``append_debug`` writes lifecycle events through it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from manager import metrics
from manager.db import gevent_patched
from manager.logs.pump import Listener, Pump, RunLog, write_row
from manager.logs.store import Line, LogDiskFull, LogWriter, log_path, read_lines
from manager.models import Execution, User, utcnow
from manager.sessions.backend import Handle, SessionBackend

log = logging.getLogger("scriptsmanager")

T = TypeVar("T")
IDLE_CLOSE = 60.0  # seconds after which a run's file is closed when no pump writes to it
HEAD_SCAN = 2000  # lines of a run's log that ``stderr_head`` looks at
MiB = 1024 * 1024


@dataclass(frozen=True)
class LogSettings:
    """The log settings, read once from the app's configuration."""

    log_dir: Path
    max_bytes: int = 50 * MiB
    max_line: int = 16 * 1024
    row_max_bytes: int = 2 * MiB
    batch_interval: float = 0.05
    row_interval: float = 1.0
    drain_timeout: float = 10.0
    read_pace: float = 0.01
    live_pumps: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LogSettings:
        defaults = cls(Path("."))
        return cls(
            log_dir=Path(config["SM_LOG_DIR"]),
            max_bytes=int(config.get("SM_LOG_MAX_BYTES", defaults.max_bytes)),
            max_line=int(config.get("SM_LOG_MAX_LINE", defaults.max_line)),
            row_max_bytes=int(config.get("SM_LOG_ROW_MAX_BYTES", defaults.row_max_bytes)),
            batch_interval=float(config.get("SM_LOG_BATCH_INTERVAL", defaults.batch_interval)),
            row_interval=float(config.get("SM_LOG_ROW_INTERVAL", defaults.row_interval)),
            drain_timeout=float(config.get("SM_LOG_DRAIN_TIMEOUT", defaults.drain_timeout)),
            read_pace=float(config.get("SM_LOG_READ_PACE", defaults.read_pace)),
            # Pumps are background work: only in the serving process, like the monitor.
            live_pumps=bool(config.get("SM_LOG_PUMPS", config.get("SM_START_BACKGROUND"))),
        )


def off_hub(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` on a native thread when gevent runs the process, else right here."""
    if gevent_patched():
        import gevent

        result: T = gevent.get_hub().threadpool.apply(function, args)
        return result
    return function(*args)


def stamp_of(moment: datetime) -> str:
    """A naive-UTC (or aware) datetime as a record stamp with milliseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LogHub:
    """Open run logs, pumps and the two background loops (file batches, row copies)."""

    def __init__(self, settings: LogSettings, engine: Engine):
        self.settings = settings
        self.engine = engine
        # Row copies go through their own connections, on a native thread under gevent: a
        # database call there (SQLite's fsync, a lock wait) must not stop every greenlet.
        self._row_engine = create_engine(engine.url, poolclass=NullPool)
        self.listeners: list[Listener] = []  # called with each flushed batch
        # False in a manager process that is not the session monitor's leader: the leader's
        # pumps store the output, this process only serves watchers (lines come over Redis).
        self.pumps_here = True
        self.forward_debug: Callable[[str, str, str], None] | None = None
        self.tick_hooks: list[Callable[[], None]] = []  # called after each flush pass
        # Called when a pump read a session's output to its end: the session monitor looks
        # again soon, so a finished run is recorded without waiting for its next pass.
        self.output_ended: Callable[[], None] | None = None
        self._runs: dict[str, RunLog] = {}
        self._usernames: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ paths and runs

    def username(self, user_id: int) -> str:
        name = self._usernames.get(user_id)
        if name is None:
            # Its own connection: the caller's session may hold unflushed changes (no autoflush).
            with self.engine.connect() as conn:
                name = conn.execute(select(User.username).where(User.id == user_id)).scalar_one()
            self._usernames[user_id] = name
        return name

    def path_for(self, execution: Execution) -> Path:
        """Where ``execution``'s log is (whether or not it exists yet)."""
        if execution.start_time is None:  # not flushed yet: fix the moment that names the folder
            execution.start_time = utcnow()
        return log_path(
            self.settings.log_dir,
            execution.user_id,
            execution.start_time,
            execution.execution_uuid,
        )

    def open(self, execution: Execution) -> RunLog:
        """The run's open log, opening (and resuming) its file the first time."""
        with self._lock:
            run = self._runs.get(execution.execution_uuid)
            if run is None:
                settings = self.settings
                run = RunLog(
                    execution.execution_uuid,
                    execution.user_id,
                    LogWriter(self.path_for(execution)),
                    max_bytes=settings.max_bytes,
                    max_line=settings.max_line,
                    row_max_bytes=settings.row_max_bytes,
                )
                self._runs[execution.execution_uuid] = run
            return run

    def get(self, execution_uuid: str) -> RunLog | None:
        return self._runs.get(execution_uuid)

    def release(self, execution_uuid: str) -> None:
        """Flush and close a run's file (it ended); a later write opens it again."""
        with self._lock:
            run = self._runs.pop(execution_uuid, None)
        if run is None:
            return
        self.sync_row(run, wait=2.0)
        with run.lock:
            run.closed = True
            self.flush(run)
            run.writer.close()
            if run.dropped:
                metrics.LOG_DROPPED.inc(run.dropped)

    # ------------------------------------------------------------------ writing

    def debug(self, execution: Execution, message: str, moment: datetime) -> Line | None:
        """A lifecycle event as a ``debug`` line, in order with the output, flushed now.

        In a process that does not run the pumps (several replicas), the line is handed to the
        one that does (``forward_debug``): one writer per file keeps seqs unique and in order.
        """
        if not self.pumps_here and self.forward_debug is not None:
            self.forward_debug(execution.execution_uuid, message, stamp_of(moment))
            return None
        run = self.open(execution)
        with run.lock:
            line = run.debug(message, stamp_of(moment))
            self.flush(run)
        return line

    def debug_forwarded(self, execution_uuid: str, message: str, stamp: str) -> None:
        """A debug line another process handed over (see ``debug``); written here if the
        pumps run here."""
        if not self.pumps_here:
            return
        with Session(self.engine) as db:
            execution = db.execute(
                select(Execution).where(Execution.execution_uuid == execution_uuid)
            ).scalar_one_or_none()
            if execution is None:
                return
            db.expunge(execution)
        run = self.open(execution)
        with run.lock:
            run.debug(message, stamp)
            self.flush(run)

    def flush(self, run: RunLog) -> list[Line]:
        """Write the run's buffer to its file, then hand the lines to the listeners."""
        with run.lock:
            try:
                lines = run.writer.flush()
            except LogDiskFull as exc:
                lines = self._disk_full(run, exc)
            if lines:
                metrics.LOG_LINES.inc(len(lines))
                for listener in self.listeners:
                    try:
                        listener(run.uuid, lines)
                    except Exception:  # a broken watcher must not stop the pump
                        log.exception("log listener failed for %s", run.uuid)
        return lines

    def _disk_full(self, run: RunLog, exc: LogDiskFull) -> list[Line]:
        """Cut the run's log with a note saying why (written if it fits; the row's
        log_truncated flag says it anyway); what it prints afterwards is not stored."""
        if run.capped:
            return []
        log.warning("log of %s cut: %s", run.uuid, exc)
        run.add(
            "debug",
            "the disk holding the logs is full; this run's further output is not stored "
            "(an admin must free space in SM_LOG_DIR).",
            None,
            truncated=True,
        )
        try:
            return run.writer.flush()
        except LogDiskFull:
            return []

    def sync_row(self, run: RunLog, *, wait: float = 0.0) -> bool:
        """Copy the run's new stdout/stderr to its row; retry for up to ``wait`` seconds."""
        with run.row_lock:
            with run.lock:
                self.flush(run)  # the row never gets ahead of the file
                taken = run.take_row()
                truncated = run.truncated_unsynced
            if not taken and not truncated:
                return True
            deadline = time.monotonic() + wait
            while True:
                try:
                    if off_hub(write_row, self._row_engine, run.uuid, taken, False, truncated):
                        if truncated:
                            run.truncated_unsynced = False
                        return True
                except SQLAlchemyError as exc:
                    log.warning("log %s: cannot update the row: %s", run.uuid, exc)
                if time.monotonic() >= deadline:
                    run.give_back(taken)
                    return False
                time.sleep(0.05)

    def rewrite_row(self, run: RunLog) -> None:
        """Make the row's stdout/stderr match the file again (an earlier manager died)."""
        with run.row_lock:
            texts = run.rebuild_row()
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    if off_hub(write_row, self._row_engine, run.uuid, texts, True, run.capped):
                        run.truncated_unsynced = False
                        return
                except SQLAlchemyError as exc:
                    log.warning("log %s: cannot rewrite the row: %s", run.uuid, exc)
                if time.monotonic() >= deadline:
                    log.warning("log %s: the row's output may lack lines", run.uuid)
                    return
                time.sleep(0.05)

    # ------------------------------------------------------------------ pumps

    def ensure_pump(
        self, execution: Execution, backend: SessionBackend, handle: Handle
    ) -> Pump | None:
        """Start a pump for a live session unless one runs (and unless pumps are off, or run
        by another manager process: see ``pumps_here``)."""
        if not self.settings.live_pumps or not self.pumps_here:
            return None
        run = self.open(execution)
        with run.lock:
            if run.pump is not None and run.pump.alive:
                return run.pump
            pump = run.pump = Pump(self, run, backend, handle)
        pump.start()
        return pump

    def drain(self, execution: Execution, backend: SessionBackend, handle: Handle) -> None:
        """Store everything the ended session printed, before its container is removed.

        Waits for the live pump to reach the end of the output (as long as it makes progress:
        a long backlog is read to its end), then reads whatever it did not get (no pump ran, or
        it broke off) and brings the row up to date.
        """
        run = self.open(execution)
        pump = run.pump
        if pump is not None:
            seen = -1
            while not pump.done.wait(self.settings.drain_timeout):
                if pump.lines == seen:
                    log.warning("log pump %s still reading after the exit; going on", run.uuid)
                    return
                seen = pump.lines
        Pump(self, run, backend, handle, follow=False).run()
        self.sync_row(run, wait=5.0)

    def stderr_head(self, execution: Execution, limit: int = 50, scan: int = HEAD_SCAN) -> str:
        """The first ``limit`` stderr lines among a run's first ``scan`` lines.

        For diagnosing a runner that failed to start, which prints a few lines. Every run's end
        asks, on the event loop: a run that printed 200,000 lines and no stderr must not have
        its whole file read meanwhile (every watcher of every run would wait).
        """
        path = self.path_for(execution)
        head = read_lines(path, limit=limit, streams=["stderr"], until_seq=scan)
        return "\n".join(line.text for line in head)

    # ------------------------------------------------------------------ background

    def start(self) -> None:
        """Start the loops that flush batches and copy output to rows."""
        for name, target in (("sm-log-batches", self._batch_loop), ("sm-log-rows", self._row_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _batch_loop(self) -> None:
        interval = self.settings.batch_interval
        while not self._stop.wait(interval):
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("log batch pass failed")

    def tick(self) -> None:
        """One pass: flush every buffered run, run the hooks, close idle files."""
        now = time.monotonic()
        for run in list(self._runs.values()):
            if run.writer.dirty:
                self.flush(run)
            elif now - run.touched > IDLE_CLOSE and (run.pump is None or not run.pump.alive):
                self.release(run.uuid)
        for hook in self.tick_hooks:
            hook()

    def _row_loop(self) -> None:
        while not self._stop.wait(self.settings.row_interval):
            for run in list(self._runs.values()):
                try:
                    self.sync_row(run)
                except Exception:  # one row must not stop the others
                    log.exception("log row copy failed for %s", run.uuid)
