"""Fire due schedules: one manager process at a time, each slot once, with the manual checks.

Every manager process ticks (every ``SM_SCHEDULER_INTERVAL`` seconds); a tick first takes the
``scheduler`` database lock (:mod:`manager.logs.locks`), so only one process looks at due
schedules at a time. A due schedule's next run is moved past ``now`` by a compare-and-set
``UPDATE`` committed before the run starts: even two processes that both think it is due
cannot both claim the same slot. A manager that was down over several slots fires the
schedule once when it comes back, not once per missed slot (the next run is computed from
``now``). A slot whose run fails to start is not retried; the schedule shows why.

The run goes through :meth:`SessionService.execute`, the path of a manual run, as the owner:
role, script level, quotas and limits are checked when it fires. A deactivated owner's
schedule is paused instead of run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from manager import audit
from manager.dashboard import may_see
from manager.extensions import DbSession
from manager.logs import locks
from manager.models import Execution, ParameterPreset, Schedule, Script, User, utcnow
from manager.schedules.service import next_after
from manager.sessions.service import SessionError, SessionService, append_debug, is_interactive

log = logging.getLogger("scriptsmanager")

LOCK_NAME = "scheduler"
LOCK_TTL = timedelta(minutes=10)
SCHEDULED_TAG = "scheduled"


@dataclass
class Fired:
    schedule_id: int
    status: str  # started, refused, paused, skipped
    message: str = ""
    execution_id: str | None = None


def due(db: DbSession, now: datetime) -> list[Schedule]:
    return list(
        db.execute(
            select(Schedule)
            .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
            .order_by(Schedule.next_run_at, Schedule.id)
        ).scalars()
    )


def claim(db: DbSession, schedule: Schedule, now: datetime) -> bool:
    """Move the schedule's next run past ``now``, if nobody did meanwhile; commits."""
    slot = schedule.next_run_at
    following = next_after(schedule.cron, schedule.timezone, now)
    result = db.execute(
        update(Schedule)
        .where(Schedule.id == schedule.id, Schedule.next_run_at == slot, Schedule.enabled)
        .values(next_run_at=following)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    db.refresh(schedule)
    return getattr(result, "rowcount", 0) == 1


def _parameters(db: DbSession, schedule: Schedule, script: Script) -> dict[str, Any]:
    if schedule.preset_id is not None:
        preset = db.get(ParameterPreset, schedule.preset_id)
        if preset is not None:
            known = {d["name"] for d in script.parameters or []}
            return {k: v for k, v in preset.parameters.items() if k in known}
    return dict(schedule.parameters or {})


def _record(schedule: Schedule, now: datetime, status: str, message: str = "") -> None:
    schedule.last_run_at = now
    schedule.last_status = status
    schedule.last_message = message or None


def fire(db: DbSession, service: SessionService, schedule: Schedule, now: datetime) -> Fired:
    """Start the schedule's run as its owner (the slot is already claimed); record the outcome."""
    user = db.get(User, schedule.user_id)
    script = db.get(Script, schedule.script_id)
    if user is None or not user.is_active:
        schedule.enabled = False
        schedule.paused_reason = "Paused: its owner's account is deactivated."
        _record(schedule, now, "paused", schedule.paused_reason)
        db.commit()
        return Fired(schedule.id, "paused", schedule.paused_reason)
    if script is None or not may_see(script, user):
        _record(schedule, now, "refused", "The script is not available to its owner any more.")
        db.commit()
        return Fired(schedule.id, "refused", schedule.last_message or "")
    if is_interactive(script, service.config.groups_dir):
        _record(schedule, now, "refused", "The script now serves a web interface: not a batch run.")
        db.commit()
        return Fired(schedule.id, "refused", schedule.last_message or "")
    values = _parameters(db, schedule, script)
    target = f"script:{script.id}"
    try:
        started = service.execute(db, user, script, values, schedule.project_id)
    except SessionError as exc:
        db.rollback()
        schedule = db.get(Schedule, schedule.id) or schedule
        _record(schedule, now, "refused" if exc.status < 500 else "failed", exc.message)
        execution_id = exc.extra.get("execution_id")
        schedule.last_execution_uuid = execution_id or schedule.last_execution_uuid
        audit.record(db, "scheduled_run_refused", target=target, user=user,
                     details={"schedule_id": schedule.id, "status": exc.status,
                              "reason": exc.message})  # fmt: skip
        db.commit()
        return Fired(schedule.id, schedule.last_status or "refused", exc.message, execution_id)
    execution = db.get(Execution, started.execution.id) or started.execution
    execution.tags = ",".join(filter(None, [execution.tags, SCHEDULED_TAG]))
    append_debug(execution, f"started by schedule {schedule.id} ({schedule.name})")
    _record(schedule, now, "started")
    schedule.last_execution_uuid = execution.execution_uuid
    schedule.run_count = (schedule.run_count or 0) + 1
    audit.record(db, "script_executed", target=target, user=user,
                 details={"execution_id": execution.execution_uuid, "schedule_id": schedule.id,
                          "project_id": schedule.project_id})  # fmt: skip
    db.commit()
    return Fired(schedule.id, "started", execution_id=execution.execution_uuid)


def tick(
    db: DbSession,
    service: SessionService,
    *,
    now: datetime | None = None,
    holder: str | None = None,
) -> list[Fired] | None:
    """Fire every due schedule once; None when another process holds the scheduler lock."""
    now = now or utcnow()
    holder = holder or locks.default_holder()
    engine = db.get_bind()
    if not locks.acquire(engine, LOCK_NAME, holder, ttl=LOCK_TTL, now=now):  # type: ignore[arg-type]
        return None
    fired: list[Fired] = []
    try:
        for schedule in due(db, now):
            if not claim(db, schedule, now):
                fired.append(Fired(schedule.id, "skipped", "claimed by another process"))
                continue
            try:
                fired.append(fire(db, service, schedule, now))
            except SQLAlchemyError as exc:
                db.rollback()
                log.exception("schedule %s: %s", schedule.id, exc)
                fired.append(Fired(schedule.id, "failed", str(exc.__class__.__name__)))
    finally:
        locks.release(engine, LOCK_NAME, holder, result={"fired": len(fired)})  # type: ignore[arg-type]
    return fired


class Scheduler:
    """The background loop: a tick every ``interval`` seconds in an app context."""

    def __init__(
        self,
        app: Flask,
        interval: float,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.app = app
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sm-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self.thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def run_once(self) -> list[Fired] | None:
        from manager.extensions import db
        from manager.sessions.runtime import runtime

        with self.app.app_context():
            try:
                return tick(db.session, runtime().service, now=self.clock())
            except SQLAlchemyError as exc:
                db.session.rollback()
                log.warning("scheduler tick failed: %s", exc)
                return None
            finally:
                db.session.remove()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()


def start_scheduler(app: Flask) -> Scheduler | None:
    """Start the scheduler loop (``SM_SCHEDULER_INTERVAL`` seconds; 0 turns it off)."""
    interval = float(app.config.get("SM_SCHEDULER_INTERVAL", 5) or 0)
    if interval <= 0:
        return None
    return Scheduler(app, interval).start()
