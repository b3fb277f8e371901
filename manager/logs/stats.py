"""A user's log statistics and storage: runs, success rate, favourites, trend, quota."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select

from manager.extensions import DbSession
from manager.logs.retention import LIVE_STATUSES, retention_days
from manager.logs.store import log_path
from manager.models import Execution, Script, User, UserProject, utcnow

TOP = 5
DEFAULT_QUOTA_MB = 500
DEFAULT_WARN_PERCENT = 80


def _text_size() -> Any:
    """Characters of a run's output columns (about their bytes)."""
    return (
        func.coalesce(func.length(Execution.output), 0)
        + func.coalesce(func.length(Execution.error_output), 0)
        + func.coalesce(func.length(Execution.debug_output), 0)
    )


def user_log_dir(log_dir: str | Path, user_id: int) -> Path:
    """The folder holding all of a user's run log files."""
    return log_path(log_dir, user_id, datetime(2000, 1, 1), "x").parent.parent


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # removed while we walked
                continue
    return total


@dataclass
class StorageUsage:
    """What a user's logs take and how that compares with the quota."""

    used_bytes: int
    file_bytes: int
    database_bytes: int
    quota_bytes: int
    percent: float
    warning: bool
    exceeded: bool
    message: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def storage_usage(
    db: DbSession, config: Mapping[str, Any], user_id: int, username: str
) -> StorageUsage:
    """Log files on disk plus output kept in the database, against ``SM_LOG_QUOTA_MB``."""
    database_bytes = int(
        db.execute(select(func.sum(_text_size())).where(Execution.user_id == user_id)).scalar() or 0
    )
    file_bytes = folder_bytes(user_log_dir(config["SM_LOG_DIR"], user_id))
    used = database_bytes + file_bytes
    quota = int(config.get("SM_LOG_QUOTA_MB", DEFAULT_QUOTA_MB)) * 1024 * 1024
    warn_at = int(config.get("SM_LOG_QUOTA_WARN_PERCENT", DEFAULT_WARN_PERCENT))
    percent = round(100.0 * used / quota, 1) if quota > 0 else 0.0
    exceeded = quota > 0 and used >= quota
    warning = quota > 0 and percent >= warn_at
    message = None
    if exceeded:
        message = (
            f"Your logs use {_mb(used)} of your {_mb(quota)} quota: delete old runs "
            "(or ask an admin for more space)."
        )
    elif warning:
        message = f"Your logs use {percent:.0f} % of your {_mb(quota)} quota."
    return StorageUsage(
        used, file_bytes, database_bytes, quota, percent, warning, exceeded, message
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _day(value: Any) -> str:
    return value.isoformat()[:10] if isinstance(value, date) else str(value)[:10]


def user_stats(
    db: DbSession,
    config: Mapping[str, Any],
    user: User,
    *,
    days: int = 30,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the statistics panel shows for ``user``."""
    mine = Execution.user_id == user.id
    by_status = dict(
        db.execute(
            select(Execution.status, func.count()).where(mine).group_by(Execution.status)
        ).all()
    )
    total = sum(by_status.values())
    finished = sum(count for status, count in by_status.items() if status not in LIVE_STATUSES)
    completed = by_status.get("completed", 0)
    average = db.execute(
        select(func.avg(Execution.duration_seconds)).where(
            mine, Execution.duration_seconds.is_not(None)
        )
    ).scalar()
    script_name = func.coalesce(Script.display_name, Script.filename)
    scripts = db.execute(
        select(Execution.script_id, script_name, func.count().label("runs"))
        .outerjoin(Script, Script.id == Execution.script_id)
        .where(mine)
        .group_by(Execution.script_id, script_name)
        .order_by(func.count().desc(), Execution.script_id)
        .limit(TOP)
    ).all()
    projects = db.execute(
        select(Execution.project_id, UserProject.project_name, func.count().label("runs"))
        .outerjoin(UserProject, UserProject.id == Execution.project_id)
        .where(mine)
        .group_by(Execution.project_id, UserProject.project_name)
        .order_by(func.count().desc(), Execution.project_id)
        .limit(TOP)
    ).all()
    return {
        "total_runs": total,
        "by_status": by_status,
        "live_runs": total - finished,
        "success_rate": round(completed / finished, 4) if finished else None,
        "average_duration_seconds": round(float(average), 1) if average is not None else None,
        "most_used_scripts": [
            {"script_id": sid, "script_name": name, "runs": runs} for sid, name, runs in scripts
        ],
        "most_used_projects": [
            {"project_id": pid, "project_name": name, "runs": runs} for pid, name, runs in projects
        ],
        "trend": trend(db, user.id, days=days, now=now),
        "storage": storage_usage(db, config, user.id, user.username).to_dict(),
        "largest_runs": largest_runs(db, user.id),
        "retention_days": retention_days(config, user.user_level),
    }


def trend(
    db: DbSession, user_id: int, *, days: int = 30, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Runs per day (all, completed, failed) over the last ``days`` days, zeros included."""
    today = (now or utcnow()).date()
    first = today - timedelta(days=days - 1)
    day = func.date(Execution.start_time)
    rows = db.execute(
        select(
            day,
            func.count(),
            func.sum(case((Execution.status == "completed", 1), else_=0)),
            func.sum(
                case((Execution.status.in_(("failed", "timed_out", "killed", "lost")), 1), else_=0)
            ),
        )
        .where(
            Execution.user_id == user_id,
            Execution.start_time >= datetime.combine(first, datetime.min.time()),
        )
        .group_by(day)
    ).all()
    counted = {_day(d): (int(n), int(ok or 0), int(bad or 0)) for d, n, ok, bad in rows}
    series = []
    for offset in range(days):
        key = (first + timedelta(days=offset)).isoformat()
        runs, ok, bad = counted.get(key, (0, 0, 0))
        series.append({"date": key, "runs": runs, "completed": ok, "failed": bad})
    return series


def largest_runs(db: DbSession, user_id: int, limit: int = TOP) -> list[dict[str, Any]]:
    """The user's biggest ended runs: what to delete first to free space."""
    size = _text_size().label("size")
    rows = db.execute(
        select(Execution.execution_uuid, Execution.start_time, size)
        .where(Execution.user_id == user_id, Execution.status.not_in(LIVE_STATUSES))
        .order_by(size.desc(), Execution.id.desc())
        .limit(limit)
    ).all()
    return [
        {"execution_id": uuid, "start_time": start.isoformat(), "size": int(n)}
        for uuid, start, n in rows
        if n
    ]
