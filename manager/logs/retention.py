"""Delete run logs: one by one, by retention (days by the owner's role), and the daily job.

A run's log is its ``execution_logs`` row (output columns, parameters) and its file under
``<SM_LOG_DIR>/executions/<user>/<day>/``. Live runs are never deleted. Retention applies to
runs that ended more than ``SM_RETENTION_DAYS_<LEVEL>`` days ago (0 or less: kept forever).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from manager.extensions import DbSession, db
from manager.logs import locks
from manager.logs.store import file_size, log_path
from manager.models import LEVELS, Execution, ScriptProcess, User, utcnow

log = logging.getLogger("scriptsmanager")

LIVE_STATUSES = ("starting", "running", "stopping")
JOB_NAME = "log_retention"
JOB_TTL = timedelta(hours=2)
BATCH = 200


@dataclass
class DeleteReport:
    """What a deletion removed."""

    deleted: int = 0
    files_removed: int = 0
    bytes_freed: int = 0
    execution_ids: list[str] = field(default_factory=list)
    by_level: dict[str, int] = field(default_factory=dict)

    def add(self, other: DeleteReport, level: str | None = None) -> None:
        """Add another report's counts (under ``level`` when given)."""
        self.deleted += other.deleted
        self.files_removed += other.files_removed
        self.bytes_freed += other.bytes_freed
        self.execution_ids.extend(other.execution_ids)
        if level is not None and other.deleted:
            self.by_level[level] = self.by_level.get(level, 0) + other.deleted

    def to_dict(self, with_ids: bool = True) -> dict[str, Any]:
        """The report as JSON; ``with_ids`` False leaves the run ids out."""
        shown = asdict(self)
        if not with_ids:
            shown.pop("execution_ids")
        return shown


def retention_days(config: Mapping[str, Any], level: str) -> int:
    """Days a ``level`` user's logs are kept (0: forever)."""
    defaults = {"viewer": 7, "operator": 30, "developer": 90, "admin": 365}
    return int(config.get(f"SM_RETENTION_DAYS_{level.upper()}", defaults.get(level, 0)))


def _ended_before(cutoff: datetime) -> Any:
    return func.coalesce(Execution.end_time, Execution.start_time) < cutoff


def delete_executions(
    db_session: DbSession, log_dir: str | Path, ids: Sequence[int]
) -> DeleteReport:
    """Delete these runs' rows and files, skipping live runs; the caller commits.

    Sessions rows that pointed at a deleted run keep their history without the link.
    """
    report = DeleteReport()
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        rows = db_session.execute(
            select(Execution.id, Execution.execution_uuid, Execution.start_time, Execution.user_id)
            .join(User, User.id == Execution.user_id)
            .where(Execution.id.in_(chunk), Execution.status.not_in(LIVE_STATUSES))
        ).all()
        if not rows:
            continue
        found = [row.id for row in rows]
        db_session.execute(
            update(ScriptProcess)
            .where(ScriptProcess.execution_id.in_(found))
            .values(execution_id=None)
        )
        db_session.execute(delete(Execution).where(Execution.id.in_(found)))
        for row in rows:
            path = log_path(log_dir, row.user_id, row.start_time, row.execution_uuid)
            size = file_size(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                report.files_removed += 1
                report.bytes_freed += size
                _remove_empty_dirs(path.parent, Path(log_dir))
            report.execution_ids.append(row.execution_uuid)
        report.deleted += len(rows)
    return report


def _remove_empty_dirs(folder: Path, root: Path) -> None:
    """Remove the day (and user) folder when the deleted file was its last one."""
    for candidate in (folder, folder.parent):
        if candidate == root or root not in candidate.parents:
            return
        try:
            candidate.rmdir()
        except OSError:  # not empty (or already gone): keep it
            return


def expired_ids(
    db_session: DbSession,
    config: Mapping[str, Any],
    now: datetime,
    *,
    user_id: int | None = None,
    levels: Iterable[str] = LEVELS,
) -> dict[str, list[int]]:
    """Ids of ended runs past their owner's retention, by owner level."""
    found: dict[str, list[int]] = {}
    for level in levels:
        days = retention_days(config, level)
        if days <= 0:
            continue
        query = (
            select(Execution.id)
            .join(User, User.id == Execution.user_id)
            .where(
                User.user_level == level,
                Execution.status.not_in(LIVE_STATUSES),
                _ended_before(now - timedelta(days=days)),
            )
        )
        if user_id is not None:
            query = query.where(Execution.user_id == user_id)
        found[level] = list(db_session.execute(query.order_by(Execution.id)).scalars())
    return found


def apply_retention(
    db_session: DbSession,
    config: Mapping[str, Any],
    *,
    now: datetime | None = None,
    user_id: int | None = None,
) -> DeleteReport:
    """Delete every ended run past retention (of one user, or everyone); commits per level."""
    report = DeleteReport()
    log_dir = config["SM_LOG_DIR"]
    for level, ids in expired_ids(db_session, config, now or utcnow(), user_id=user_id).items():
        report.add(delete_executions(db_session, log_dir, ids), level)
        db_session.commit()
    return report


def delete_older_than(
    db_session: DbSession, log_dir: str | Path, user_id: int, cutoff: datetime
) -> DeleteReport:
    """Delete one user's ended runs that ended before ``cutoff`` (before retention would)."""
    ids = db_session.execute(
        select(Execution.id).where(
            Execution.user_id == user_id,
            Execution.status.not_in(LIVE_STATUSES),
            _ended_before(cutoff),
        )
    ).scalars()
    return delete_executions(db_session, log_dir, list(ids))


def run_retention(
    app: Flask,
    *,
    period: str | None = None,
    holder: str | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> DeleteReport | None:
    """The daily job: apply retention to everyone, unless another process does or did today.

    Returns None when the lock was not taken (someone else runs it, or ``period`` is done).
    ``force`` runs even if the period is already done (never while another process runs it).
    """
    period = period or date.today().isoformat()
    holder = holder or locks.default_holder()
    with app.app_context():
        engine = db.engine
        taken = locks.acquire(
            engine, JOB_NAME, holder, ttl=JOB_TTL, period=None if force else period
        )
        if not taken:
            return None
        report: DeleteReport | None = None
        try:
            report = apply_retention(db.session, app.config, now=now)
            log.info(
                "log retention: %s runs deleted, %s files, %s bytes freed",
                report.deleted,
                report.files_removed,
                report.bytes_freed,
            )
        finally:
            db.session.remove()
            summary = report.to_dict(with_ids=False) if report else {"error": "failed"}
            locks.release(
                engine, JOB_NAME, holder, period=period if report else None, result=summary
            )
        return report


def parse_time_of_day(raw: str) -> time:
    """``"HH:MM"`` as a time; ValueError with a readable message otherwise."""
    try:
        hours, minutes = (int(part) for part in raw.strip().split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValueError(f"expected a time of day as HH:MM, got {raw!r}") from None


def next_run(now: datetime, at: time) -> datetime:
    """The next local moment ``at`` strictly after ``now``."""
    candidate = datetime.combine(now.date(), at)
    return candidate if candidate > now else candidate + timedelta(days=1)


class DailyJobs:
    """A thread that runs the retention job every day at ``at`` (local time)."""

    def __init__(self, app: Flask, at: time):
        self.app = app
        self.at = at
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sm-daily-jobs", daemon=True)

    def start(self) -> DailyJobs:
        self.thread.start()
        return self

    def stop(self, timeout: float | None = 5) -> None:
        self._stop.set()
        self.thread.join(timeout)

    def _loop(self) -> None:
        # A manager that was down at the set time catches up at start: the lock's period
        # makes that a no-op when another process already ran today's job.
        if datetime.now().time() >= self.at:
            self._run_once()
        while not self._stop.wait(
            (next_run(datetime.now(), self.at) - datetime.now()).total_seconds()
        ):
            self._run_once()

    def _run_once(self) -> None:
        try:
            run_retention(self.app)
        except (SQLAlchemyError, OSError) as exc:
            log.exception("log retention failed: %s", exc)


def start_daily_jobs(app: Flask) -> DailyJobs | None:
    """Start the daily retention thread (``SM_RETENTION_TIME``, "" disables it)."""
    raw = str(app.config.get("SM_RETENTION_TIME", "03:00") or "")
    if not raw:
        return None
    return DailyJobs(app, parse_time_of_day(raw)).start()
