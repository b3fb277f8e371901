"""Dashboard health indicators: database, container engine, disk space, backups, discovery."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from manager.backup.service import BackupSettings, list_backups
from manager.extensions import DbSession
from manager.models import ScriptGroup

LOW_DISK_FRACTION = 0.10
BACKUP_STALE = timedelta(hours=36)


@dataclass
class Indicator:
    name: str  # database, engine, disk, backup, catalog
    state: str  # ok, warning, error
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def database(engine: Engine) -> Indicator:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return Indicator("database", "error", f"not reachable: {exc.__class__.__name__}")
    return Indicator("database", "ok", engine.dialect.name)


def container_engine(ping: Mapping[str, Any]) -> Indicator:
    status = ping.get("status")
    if status == "ok":
        isolation = ping.get("isolation")
        detail = f"version {ping.get('version')}" + (
            f", isolation {isolation}" if isolation else ""
        )
        state = "warning" if isolation and isolation != "full" else "ok"
        return Indicator("engine", state, detail)
    return Indicator("engine", "error", str(ping.get("error") or status or "unknown"))


def disk(data_dir: str | Path) -> Indicator:
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError as exc:
        return Indicator("disk", "error", str(exc))
    free = usage.free / usage.total if usage.total else 0.0
    detail = f"{usage.free / 1024**3:.1f} GiB free ({free:.0%})"
    return Indicator("disk", "warning" if free < LOW_DISK_FRACTION else "ok", detail)


def backups(settings: BackupSettings, now: datetime | None = None) -> Indicator:
    found = list_backups(settings)
    if not found or not found[0].created_at:
        state = "warning" if settings.auto else "ok"
        return Indicator("backup", state, "no backup yet")
    last = datetime.fromisoformat(found[0].created_at)
    age = (now or datetime.now()) - last
    stale = settings.auto and age > BACKUP_STALE
    return Indicator("backup", "warning" if stale else "ok", f"last {found[0].created_at}")


def catalog(db: DbSession) -> Indicator:
    invalid = db.scalar(
        select(func.count(ScriptGroup.id)).where(
            ScriptGroup.is_active.is_(True), ScriptGroup.invalid_reason.is_not(None)
        )
    )
    if invalid:
        return Indicator("catalog", "warning", f"{invalid} invalid groups")
    return Indicator("catalog", "ok", "all groups valid")


def indicators(
    db: DbSession, engine: Engine, config: Mapping[str, Any], ping: Mapping[str, Any]
) -> list[Indicator]:
    """Every indicator, in the order the dashboard shows them."""
    return [
        database(engine),
        container_engine(ping),
        disk(config["SM_DATA_DIR"]),
        backups(BackupSettings.from_config(config)),
        catalog(db),
    ]
