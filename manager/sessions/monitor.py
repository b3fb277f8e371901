"""Watch live sessions: readiness, exits, run and idle timeouts, reaping, re-adoption.

``tick`` is one pass and is what tests call; ``SessionMonitor.start`` repeats it in the
background of the serving process. State lives in the database and the engine, never only in
memory, so a manager killed and restarted picks up where it was.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import select

from manager import metrics
from manager.extensions import DbSession
from manager.logs.locks import default_holder
from manager.models import Execution, PoolSlot, Script, ScriptProcess, User, utcnow
from manager.sessions.backend import BackendError, ExitStatus, Handle, Target
from manager.sessions.limits import parse_limits
from manager.sessions.service import LIVE_STATES, SessionService, append_debug

log = logging.getLogger("scriptsmanager")

LEADER_LOCK = "session-monitor"

NUDGE_DELAY = 0.1  # seconds after a run's output ended before the monitor looks again
START_DEADLINE = 60  # seconds an interactive session may take to answer its health check
STOP_DEADLINE = 30  # seconds a session may stay "stopping" before it is killed
MEMORY_SAMPLE_EVERY = 5.0  # seconds between two memory samples of one session
QUOTA_CHECK_EVERY = 5.0  # seconds between two measures of one user's workspaces in a group
OUTPUT_CAP = 2 * 1024 * 1024  # bytes of stdout/stderr kept on the row when collected at exit
# Engine calls of one pass made at once. Each waits on the engine, not on this process: one after
# another, 50 sessions ending or starting together made a pass take a minute under load (a
# 1-second batch run was recorded "completed" 90 s after its execute: bench/load).
ENGINE_WORKERS = 8


class Activity:
    """Last proxied request per session, in memory; flushed to ``last_ping`` by the monitor."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, execution_uuid: str) -> None:
        self._seen[execution_uuid] = time.time()

    def pop_all(self) -> dict[str, float]:
        with self._lock:
            seen, self._seen = self._seen, {}
        return seen


def final_state(process: ScriptProcess, status: ExitStatus) -> str:
    if process.stop_reason == "user":
        return "terminated"
    if process.stop_reason in ("timeout", "idle"):
        return "timed_out"
    if process.stop_reason == "workspace_quota":
        return "failed"
    if status.oom_killed:
        return "killed"
    if status.error == "gone":
        return "lost"
    if process.stop_reason == "start_timeout":
        return "failed"
    return "completed" if status.exit_code == 0 else "failed"


def health_ok(host: str, port: int, timeout: float = 0.5) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/_sm/health")
        # The runner answers 200 once the script has run; a legacy script (the seed's
        # port-based interface) serves its own app on the port: any answer means it is up.
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def in_parallel(jobs: Sequence[Callable[[], Any]], workers: int = ENGINE_WORKERS) -> list[Any]:
    """Run ``jobs`` on up to ``workers`` threads (greenlets in the gevent server) and wait for
    all; each job's result, or the exception it raised, in the jobs' order."""
    results: list[Any] = [None] * len(jobs)
    pending = iter(enumerate(jobs))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            index, job = item
            try:
                results[index] = job()
            except Exception as exc:  # handed to the caller, which knows what it means
                results[index] = exc

    if len(jobs) <= 1 or workers <= 1:
        work()
        return results
    threads = [
        threading.Thread(target=work, name="sm-monitor-engine", daemon=True)
        for _ in range(min(workers, len(jobs)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@dataclass(frozen=True)
class Probe:
    """What the engine said about one session in this pass, asked beside the other sessions'
    (no database in it): how it ended, or where it answers and whether it is ready, or its
    memory."""

    status: ExitStatus | None = None
    target: Target | None = None
    ready: bool = False
    stats: dict[str, Any] | None = None


class Monitor:
    """One pass over the live sessions; see the module docstring.

    A pass has three steps: the engine is asked about every session at once (``Probe``), the
    answers are recorded one session at a time (each committed), and what the engine must then
    do (remove ended containers, stop timed-out sessions) is done at once again. A run's end is
    committed before its container is removed, so nobody waits for the engine to see it.
    """

    def __init__(
        self,
        service: SessionService,
        activity: Activity,
        clock: Callable[[], datetime] = utcnow,
        health_check: Callable[[str, int], bool] = health_ok,
        start_deadline: float = START_DEADLINE,
    ):
        self.health_check = health_check
        self.start_deadline = start_deadline  # SM_SESSION_START_TIMEOUT
        self.service = service
        self.backend = service.backend
        self.activity = activity
        self.clock = clock
        self._last_snapshot: str | None = None
        self._sampled: dict[int, float] = {}  # process id -> monotonic time of the last sample
        self._stopping: dict[int, datetime] = {}  # process id -> when this monitor saw "stopping"
        self.quota_every = QUOTA_CHECK_EVERY
        self._measured: dict[tuple[str, int], tuple[float, int]] = {}  # -> (when, bytes)
        self._ended: list[tuple[int, Any, int, bool]] = []  # warm-pool intent of ended sessions
        self._running: set[str] | None = None  # container ids running at this pass's start
        self._engine_work: list[Callable[[], None]] = []  # after this pass's commits, at once
        self.workers = ENGINE_WORKERS

    def tick(self, db: DbSession) -> None:
        self._flush_activity(db)
        try:
            # One listing for the pass: only sessions not running in it are asked one by one
            # (an engine call per session per pass made a pass take a minute under load).
            self._running = self.backend.running_ids()
        except BackendError as exc:
            log.warning("monitor: listing the running sessions: %s", exc.message)
            self._running = None
        sessions = [
            (process, *self._handle(db, process)) for process in self.service.live_processes(db)
        ]
        questions = [
            self._question(process, handle, execution) for process, handle, execution in sessions
        ]
        probes = in_parallel(questions, self.workers)
        for (process, handle, execution), probe in zip(sessions, probes, strict=True):
            try:
                if isinstance(probe, Exception):
                    raise probe
                self._check(db, process, handle, execution, probe)
            except BackendError as exc:
                log.warning("monitor: session %s: %s %s", process.id, exc.message, exc.detail)
            db.commit()
        self._do_engine_work()
        self._reap_orphans(db)
        self._write_snapshot(db)
        pool = self.service.pool
        ended, self._ended = self._ended, []
        if pool is not None:
            # After the sessions' own commits: a failed intent row must not undo them.
            pool.record_intents(db, ended)
            pool.maintain(db)

    # ------------------------------------------------------------- per session

    def _handle(self, db: DbSession, process: ScriptProcess) -> tuple[Handle, Execution | None]:
        execution = db.get(Execution, process.execution_id) if process.execution_id else None
        uuid = execution.execution_uuid if execution else f"process-{process.id}"
        return self.backend.load_state(uuid, process.backend_state or {}), execution

    def _question(
        self, process: ScriptProcess, handle: Handle, execution: Execution | None
    ) -> Callable[[], Probe]:
        """What to ask the engine about this session in this pass; the call it returns uses
        no database (it runs beside the other sessions')."""
        if execution is None or not process.backend_state:
            return Probe
        listed = self._running is not None and handle.state.get("container_id") in self._running
        starting = process.status == "starting"
        sample = process.status == "running" and self._sample_due(process.id)
        backend, health_check = self.backend, self.health_check

        def ask() -> Probe:
            status = None if listed else backend.poll(handle)
            if status is not None:
                return Probe(status=status)
            if starting:
                target = backend.address(handle)
                ready = target is not None and health_check(target.host, target.port)
                return Probe(target=target, ready=ready)
            return Probe(stats=backend.stats(handle) if sample else None)

        return ask

    def _do_engine_work(self) -> None:
        work, self._engine_work = self._engine_work, []
        for failure in in_parallel(work, self.workers):
            if isinstance(failure, Exception):
                log.warning("monitor: %s", failure)

    def _stop(self, db: DbSession, process: ScriptProcess, *, reason: str, **how: Any) -> None:
        """Mark the session stopping now; the engine stops it at the end of the pass."""
        engine_stop = self.service.request_stop(db, process, reason=reason, **how)
        if engine_stop is not None:
            self._engine_work.append(engine_stop)

    def _check(
        self,
        db: DbSession,
        process: ScriptProcess,
        handle: Handle,
        execution: Execution | None,
        probe: Probe,
    ) -> None:
        if execution is None:
            process.status = "ended"
            return
        if not process.backend_state:
            # A request is starting its container right now; give it time before judging (in
            # this process: all the time it takes; in another, START_DEADLINE).
            if execution.execution_uuid in self.service.starting:
                return
            age = (self.clock() - process.started_at).total_seconds()
            if age > START_DEADLINE:
                self.finish(db, process, execution, handle, ExitStatus(None, error="gone"))
            return
        if probe.status is not None:
            self.finish(db, process, execution, handle, probe.status)
            return
        if self.service.logs is not None:  # a session re-adopted after a restart has no pump
            self.service.logs.ensure_pump(execution, self.backend, handle)
        now = self.clock()
        age = (now - process.started_at).total_seconds()
        if process.status == "starting":
            target = probe.target
            if probe.ready and target is not None:
                process.status = execution.status = "running"
                process.backend_state = {
                    **(process.backend_state or {}),
                    "address": [target.host, target.port],
                }
                append_debug(execution, f"ready after {age:.2f} s")
                metrics.START_LATENCY.observe(age)
            elif age > self.start_deadline:
                append_debug(
                    execution,
                    f"did not answer within {self.start_deadline:g} s "
                    "(SM_SESSION_START_TIMEOUT); stopping",
                )
                self._stop(db, process, reason="start_timeout", now=True)
            return
        if process.status == "stopping":
            self._kill_if_stuck(process, execution, handle, now)
            return
        if probe.stats:
            seen = max(
                probe.stats.get("memory_peak_bytes") or 0, probe.stats.get("memory_bytes") or 0
            )
            if seen > (execution.peak_memory_bytes or 0):  # the highest seen, or the engine's peak
                execution.peak_memory_bytes = seen
        if self._over_quota(db, process, execution):
            return
        run_timeout = int((execution.limits or {}).get("run_timeout") or 0)
        if run_timeout and age > run_timeout:
            append_debug(execution, f"run timeout of {run_timeout} s reached; stopping")
            execution.timed_out = True
            self._stop(db, process, reason="timeout", timeout=3)
            return
        idle_timeout = int((execution.limits or {}).get("idle_timeout") or 0)
        last = process.last_ping or process.started_at
        if process.interactive and idle_timeout and (now - last).total_seconds() > idle_timeout:
            append_debug(execution, f"idle for more than {idle_timeout} s; stopping")
            execution.timed_out = True
            self._stop(db, process, reason="idle", timeout=3)

    def _kill_if_stuck(
        self, process: ScriptProcess, execution: Execution, handle: Handle, now: datetime
    ) -> None:
        """A stop the engine did not carry out (it failed, or the manager died in between)
        must not leave the session running uncounted: kill it after STOP_DEADLINE."""
        seen = self._stopping.setdefault(process.id, now)
        if (now - seen).total_seconds() > STOP_DEADLINE:
            append_debug(execution, f"still running {STOP_DEADLINE} s after the stop; killing")
            self._stopping[process.id] = now
            self._engine_work.append(functools.partial(self.backend.stop, handle, now=True))

    def _over_quota(self, db: DbSession, process: ScriptProcess, execution: Execution) -> bool:
        """Stop a session whose user's workspaces in its group went past the quota.

        Measured every ``quota_every`` seconds per (group, user); the files stay, nothing is
        deleted, and no other user's folder is looked at.
        """
        script = db.get(Script, process.script_id)
        quota = (execution.limits or {}).get("workspace_quota")
        if script is None or not quota:
            return False
        key = (script.group.directory_path, process.user_id)
        moment = time.monotonic()
        last = self._measured.get(key)
        if last is None or moment - last[0] >= self.quota_every:
            last = (moment, self.service.workspace_usage(*key))
            self._measured[key] = last
        limits = parse_limits({"workspace_quota": quota})
        if last[1] <= limits.workspace_quota_bytes:
            return False
        message = "stopped: " + self.service.quota_message(script.group, last[1], limits)
        append_debug(execution, message)
        execution.error_output = (execution.error_output or "") + message + "\n"
        self._stop(db, process, reason="workspace_quota", timeout=3)
        return True

    def _sample_due(self, process_id: int) -> bool:
        """Whether to sample this session's memory in this pass (every MEMORY_SAMPLE_EVERY s)."""
        now = time.monotonic()
        if now - self._sampled.get(process_id, -MEMORY_SAMPLE_EVERY) < MEMORY_SAMPLE_EVERY:
            return False
        self._sampled[process_id] = now
        return True

    def finish(
        self,
        db: DbSession,
        process: ScriptProcess,
        execution: Execution,
        handle: Handle,
        status: ExitStatus,
    ) -> None:
        """Record how a session ended and keep its output; its container is removed at the end
        of the pass, after this is committed (``_remove``)."""
        from manager.proxy import forget_session

        forget_session(execution.execution_uuid)  # its address may go to the next session
        logs = self.service.logs
        if status.error != "gone":
            # First, before this session writes anything: the pump's row copy must not wait
            # for a lock this session would hold.
            self._collect_output(execution, handle)
        now = self.clock()
        state = final_state(process, status)
        if status.error and status.error != "gone":
            append_debug(execution, f"engine error: {status.error}")
        errors = logs.stderr_head(execution) if logs is not None else execution.error_output
        if status.exit_code in (126, 127) and "exec" in (errors or ""):
            # The runner never started: the image lacks it or is damaged.
            append_debug(
                execution,
                f"image {execution.image} is broken: the runner could not "
                "start; an admin should rebuild it (Admin → Environments)",
            )
        execution.status = state
        execution.exit_code = status.exit_code
        execution.oom_killed = bool(status.oom_killed)
        execution.end_time = now
        execution.duration_seconds = max(0, int((now - execution.start_time).total_seconds()))
        if status.oom_killed:
            append_debug(
                execution, f"killed: out of memory (limit {execution.limits.get('memory')})"
            )
        if execution.peak_memory_bytes:
            append_debug(execution, f"peak memory {execution.peak_memory_bytes / 2**20:.1f} MiB")
        append_debug(
            execution,
            f"ended: {state}, exit code {status.exit_code}, {execution.duration_seconds} s",
        )
        self._sampled.pop(process.id, None)
        self._stopping.pop(process.id, None)
        process.status = "ended"
        process.ended_at = now
        self._engine_work.append(functools.partial(self._remove, handle))
        script = db.get(Script, process.script_id)
        if script is not None and process.project_id is not None and script.group.pool_size:
            # A session of the group just ended: its user may well run another (warm pool).
            self._ended.append((process.user_id, script.group, process.project_id,
                                process.interactive))  # fmt: skip

    def _remove(self, handle: Handle) -> None:
        """An ended session's container, folder and open log file go (no database here)."""
        try:
            self.backend.remove(handle)
        except BackendError as exc:
            log.warning("removing %s: %s", handle.execution_uuid, exc.message)
        self.service.remove_session_dir(handle.execution_uuid)
        if self.service.logs is not None:
            self.service.logs.release(handle.execution_uuid)

    def _collect_output(self, execution: Execution, handle: Handle) -> None:
        if self.service.logs is not None:
            # The pump stores the output; let it read to the end before the container goes.
            self.service.logs.drain(execution, self.backend, handle)
            return
        out: list[str] = []
        err: list[str] = []
        size = 0
        try:
            for line in self.backend.logs(handle):
                size += len(line.text) + 1
                if size > OUTPUT_CAP:
                    err.append(f"[output truncated at {OUTPUT_CAP} bytes]")
                    break
                (out if line.stream == "stdout" else err).append(line.text)
        except BackendError as exc:
            append_debug(execution, f"could not read output: {exc.message}")
        execution.output = "\n".join(out) + ("\n" if out else "")
        execution.error_output = (
            (execution.error_output or "") + "\n".join(err) + ("\n" if err else "")
        )

    # ------------------------------------------------------------- housekeeping

    def report_activity(self, db: DbSession) -> None:
        """A standby process's pass: only the proxy activity it saw goes to the rows."""
        self._flush_activity(db)

    def _flush_activity(self, db: DbSession) -> None:
        seen = self.activity.pop_all()
        if not seen:
            return
        rows = db.execute(
            select(ScriptProcess, Execution.execution_uuid)
            .join(Execution, Execution.id == ScriptProcess.execution_id)
            .where(Execution.execution_uuid.in_(list(seen)), ScriptProcess.status.in_(LIVE_STATES))
        )
        for process, uuid in rows:
            moment = datetime.fromtimestamp(seen[uuid], UTC).replace(tzinfo=None)
            if process.last_ping is None or moment > process.last_ping:
                process.last_ping = moment
        db.commit()

    def _reap_orphans(self, db: DbSession) -> None:
        """Remove containers of this installation whose execution is not live in the database."""
        try:
            handles = self.backend.list_sessions()
        except BackendError as exc:
            log.warning("listing sessions: %s", exc.message)
            return
        if not handles:
            return
        live = {
            uuid
            for (uuid,) in db.execute(
                select(Execution.execution_uuid)
                .join(ScriptProcess, ScriptProcess.execution_id == Execution.id)
                .where(ScriptProcess.status.in_(LIVE_STATES))
            )
        }
        slots = {row.slot: row for row in db.execute(select(PoolSlot)).scalars()}
        for found in handles:
            handle = found
            slot = found.state.get("pool_slot")
            if slot is not None:
                # A warm-pool container: its execution label is fixed at pool-<slot>; the
                # slot row says which run it serves now, if any.
                row = slots.get(slot)
                if row is not None and row.state != "handed":
                    continue  # a standby: the pool trims it
                if row is not None and row.execution_uuid:
                    handle = Handle(execution_uuid=row.execution_uuid, state=found.state)
            if handle.execution_uuid in live:
                continue
            # Created just now by a request whose row is not committed yet? Leave it a moment.
            created = handle.state.get("created")
            if isinstance(created, (int, float)) and time.time() - created < 30:
                continue
            log.info("removing orphan session container %s", handle.execution_uuid)
            try:
                self.backend.stop(handle, now=True)
                self.backend.remove(handle)
            except BackendError as exc:
                log.warning("orphan %s: %s", handle.execution_uuid, exc.message)

    def _write_snapshot(self, db: DbSession) -> None:
        """``data/system/active_sessions.json`` for operators who look at the disk."""
        rows = db.execute(
            select(ScriptProcess, Execution, User.username, Script.filename)
            .join(Execution, Execution.id == ScriptProcess.execution_id)
            .join(User, User.id == ScriptProcess.user_id)
            .join(Script, Script.id == ScriptProcess.script_id)
            .where(ScriptProcess.status.in_(LIVE_STATES))
            .order_by(ScriptProcess.id)
        ).all()
        sessions = [
            {
                "execution_id": execution.execution_uuid,
                "status": process.status,
                "user": username,
                "script": filename,
                "script_id": process.script_id,
                "project_id": process.project_id,
                "interactive": process.interactive,
                "proxy_url": execution.proxy_url,
                "started_at": process.started_at.isoformat(),
                "last_activity": (process.last_ping or process.started_at).isoformat(),
            }
            for process, execution, username, filename in rows
        ]
        text = json.dumps({"sessions": sessions}, indent=2)
        if text == self._last_snapshot:
            return
        path = self.service.config.data_dir / "system" / "active_sessions.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self._last_snapshot = text


class SessionMonitor:
    """Run ``Monitor.tick`` every ``interval`` seconds inside an app context.

    With several manager processes exactly one runs the monitor and the log pumps: the holder of
    a lease (``job_locks`` row ``LEADER_LOCK``) renewed on every pass. The others only report
    the proxy activity they saw, and take over when the lease runs out (the holder died).
    """

    def __init__(self, app: Any, monitor: Monitor, interval: float, lease: float = 10.0):
        self.app = app
        self.monitor = monitor
        self.interval = interval
        self.lease = max(lease, 3 * interval)
        self.holder = f"{default_holder()}:{uuid4().hex[:8]}"
        self.leader = False
        self._stop = threading.Event()
        self._nudged = threading.Event()  # the pause ends early (stop, or a run's output ended)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        hub = self.app.extensions.get("sm_logs")
        if hub is not None:
            hub.output_ended = self.nudge
        self._thread = threading.Thread(target=self._run, name="sm-session-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake_event().set()
        self._nudged.set()

    def nudge(self) -> None:
        """A session's output ended: pass again in a moment (its container exits right after
        writing the end), not at the next interval. A batch run is recorded done that much
        sooner; under load a pass waited up to a whole interval behind it."""
        timer = threading.Timer(NUDGE_DELAY, lambda: self._wake_event().set())
        timer.daemon = True
        timer.start()

    def _wake_event(self) -> threading.Event:
        pool = self.monitor.service.pool
        return pool.wake if pool is not None and self.leader else self._nudged

    def _lead(self, engine: Any) -> bool:
        """Take or renew the lease; tell the log hub whether pumps run in this process."""
        from manager.logs import locks

        was = self.leader
        if was:
            self.leader = locks.renew(engine, LEADER_LOCK, self.holder, ttl=self.lease)
        if not self.leader:
            self.leader = locks.acquire(
                engine, LEADER_LOCK, self.holder, ttl=timedelta(seconds=self.lease)
            ) or locks.take_over_dead(engine, LEADER_LOCK, self.holder, ttl=self.lease)
        if self.leader != was:
            log.info("session monitor: %s", "leading" if self.leader else "standing by")
        hub = self.app.extensions.get("sm_logs")
        if hub is not None:
            hub.pumps_here = self.leader
        return self.leader

    def _run(self) -> None:
        from manager.extensions import db

        while not self._stop.is_set():
            with self.app.app_context():
                try:
                    if self._lead(db.engine):
                        self.monitor.tick(db.session)
                    else:
                        self.monitor.report_activity(db.session)
                except Exception:  # the monitor must outlive any one bad pass
                    log.exception("session monitor pass failed")
                    db.session.rollback()
                finally:
                    db.session.remove()
            self._pause()
        if self.leader:
            from manager.logs import locks

            with self.app.app_context():
                pool = self.monitor.service.pool
                if pool is not None:  # standbys do not outlive their manager
                    try:
                        pool.release_all(db.session)
                    finally:
                        db.session.remove()
                locks.release(db.engine, LEADER_LOCK, self.holder)

    def _pause(self) -> None:
        """Wait ``interval`` seconds, or less when a request woke the warm pool's filler or a
        run's output ended (the pool clears its event when it fills)."""
        self._wake_event().wait(self.interval)
        self._nudged.clear()
