"""The daily backup, run exactly once a day however many manager processes wake up for it.

Every backup (daily or asked for) takes the ``system_backup`` job lock
(:mod:`manager.logs.locks`), so two never run at once; the daily one also marks its day done,
so a second process, or the same one restarted, does not run it again. The thread also beats
the manager's heart (``manager_heartbeat``) so that a restore can tell a manager is running.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import Engine, Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from manager.backup import restore
from manager.backup.service import (
    BackupError,
    BackupResult,
    BackupSettings,
    alembic_revision,
    create_backup,
    disk_use,
    list_backups,
)
from manager.logs import locks
from manager.logs.retention import next_run, parse_time_of_day
from manager.models import JobLock, utcnow

log = logging.getLogger("scriptsmanager")

JOB_NAME = "system_backup"
JOB_TTL = timedelta(hours=6)
RETRY_AFTER = 300.0
HEARTBEAT_EVERY = 60.0


def run_backup(
    engine: Engine,
    settings: BackupSettings,
    *,
    period: str | None = None,
    reason: str = "manual",
    holder: str | None = None,
    now: datetime | None = None,
    offload: Any = None,
) -> BackupResult | None:
    """Take the backup lock and back up; None when another backup runs (or ``period`` is done).

    With ``period`` (the scheduled run's day) a day already backed up is not backed up again.
    Raises BackupError when the backup itself fails (the lock is given back).
    """
    holder = holder or locks.default_holder()
    if not locks.acquire(engine, JOB_NAME, holder, ttl=JOB_TTL, period=period):
        return None
    result: BackupResult | None = None
    error: str | None = None
    try:
        result = create_backup(
            settings,
            now=now,
            reason=reason,
            revision=alembic_revision(engine),
            offload=offload or native_thread,
        )
        return result
    except BackupError as exc:
        error = exc.message
        raise
    finally:
        summary: dict[str, Any] = {"reason": reason, "at": utcnow().isoformat(timespec="seconds")}
        if result is not None:
            summary.update(ok=True, file=result.backup.file, size_bytes=result.backup.size_bytes)
        else:
            summary.update(ok=False, error=error or "interrupted")
        locks.release(engine, JOB_NAME, holder, period=period if result else None, result=summary)


def native_thread(work: Any) -> Any:
    """Run ``work`` in a native thread under gevent (the loop goes on), else right here."""
    from manager.db import gevent_patched

    if not gevent_patched():
        return work()
    import gevent

    return gevent.get_hub().threadpool.apply(work)


def status(engine: Engine, settings: BackupSettings, now: datetime | None = None) -> dict[str, Any]:
    """Last backup (and how the last attempt went), next scheduled one, disk use."""
    now = now or datetime.now()
    backups = list_backups(settings)
    lock = locks.state(engine, JOB_NAME) or {}
    running = bool(lock.get("holder")) and (lock.get("expires_at") or now) > utcnow()
    next_at = None
    if settings.auto and settings.schedule_time:
        next_at = next_run(now, parse_time_of_day(settings.schedule_time)).isoformat()
    last_result = lock.get("last_result") or {}
    return {
        "enabled": settings.auto,
        "schedule_time": settings.schedule_time,
        "running": running,
        "last_backup": backups[0].to_dict() if backups else None,
        "last_attempt": last_result or None,
        "last_scheduled_day": lock.get("last_period"),
        "next_backup": next_at,
        "count": len(backups),
        "retention_days": settings.retention_days,
        "max_backup_size_bytes": settings.max_bytes,
        "exclude_patterns": list(settings.exclude),
        "backup_dir": str(settings.backup_dir),
        "disk": disk_use(settings),
    }


def beat(engine: Engine) -> None:
    """Record that a manager serves on this database now (for restore's safety check)."""
    table = JobLock.__table__
    assert isinstance(table, Table)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        conn.execute(
            insert(table).values(name=restore.HEARTBEAT, last_result={}).on_conflict_do_nothing()
        )
        conn.execute(
            update(JobLock)
            .where(JobLock.name == restore.HEARTBEAT)
            .values(last_finished_at=utcnow())
        )


class BackupJobs:
    """A thread: the daily backup at ``at`` (local time), and the heartbeat every minute."""

    def __init__(self, app: Flask, at: time | None):
        self.app = app
        self.at = at
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sm-backup-jobs", daemon=True)

    def start(self) -> BackupJobs:
        self.thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def _engine(self) -> Engine:
        from manager.extensions import db

        with self.app.app_context():
            return db.engine

    def _loop(self) -> None:
        engine = self._engine()
        settings = BackupSettings.from_config(self.app.config)
        due = self._first_due()
        while True:
            try:
                beat(engine)
            except SQLAlchemyError as exc:
                log.warning("manager heartbeat not recorded: %s", exc)
            if due is not None and datetime.now() >= due:
                due = self._run_daily(engine, settings, due)
            if self._stop.wait(HEARTBEAT_EVERY):
                return

    def _first_due(self) -> datetime | None:
        if self.at is None:
            return None
        now = datetime.now()
        today = datetime.combine(now.date(), self.at)
        # A manager that was down at the set time catches up: the lock's period makes that a
        # no-op when another process already backed up today.
        return today if now >= today else next_run(now, self.at)

    def _run_daily(self, engine: Engine, settings: BackupSettings, due: datetime) -> datetime:
        period = date.today().isoformat()
        try:
            result = run_backup(engine, settings, period=period, reason="daily")
        except (BackupError, SQLAlchemyError, OSError) as exc:
            log.error("daily backup failed: %s", exc)
            return datetime.now() + timedelta(seconds=RETRY_AFTER * 12)
        if result is None:
            state = locks.state(engine, JOB_NAME) or {}
            if state.get("last_period") != period:  # another backup runs now: try again soon
                return datetime.now() + timedelta(seconds=RETRY_AFTER)
        else:
            log.info("daily backup written: %s", result.backup.path)
        assert self.at is not None
        return next_run(datetime.now(), self.at)


def start_backup_jobs(app: Flask) -> BackupJobs:
    """Start the backup thread (the daily backup when SM_AUTO_BACKUP; the heartbeat always)."""
    raw = str(app.config.get("SM_BACKUP_SCHEDULE_TIME") or "")
    at = parse_time_of_day(raw) if app.config.get("SM_AUTO_BACKUP") and raw else None
    return BackupJobs(app, at).start()
