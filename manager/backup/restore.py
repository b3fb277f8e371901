"""Restore a backup into place (the live data folder, logs and database) or into a folder.

Restoring into place replaces the database's content and writes the archived files over the
live ones (files the backup does not hold are left alone). It is refused without ``confirm``
when a manager is running on that database or the database holds users: restoring is
undoable only by another restore.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from manager.backup import archive, dump
from manager.backup.service import BackupError, BackupSettings, RunLog, find_backup
from manager.logs import locks

HEARTBEAT = "manager_heartbeat"
HEARTBEAT_FRESH = timedelta(minutes=3)


@dataclass
class RestoreReport:
    backup: str
    target: str
    engine: str
    data_files: int = 0
    log_files: int = 0
    database_restored: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manager_running(engine: Engine, now: datetime | None = None) -> bool:
    """Whether a serving manager beat its heart on this database in the last minutes."""
    try:
        row = locks.state(engine, HEARTBEAT)
    except SQLAlchemyError:
        return False
    seen = row and row.get("last_finished_at")
    return bool(seen and (now or datetime.utcnow()) - seen < HEARTBEAT_FRESH)


def user_count(engine: Engine) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM users")).scalar() or 0)
    except SQLAlchemyError:  # no schema yet: nothing to overwrite
        return 0


def _release_backup_lock(url: str, engine: Engine | None) -> None:
    """The dump was taken while the backup held its lock: free it in the restored copy."""
    sql_engine = engine or create_engine(url)
    try:
        with sql_engine.begin() as conn:
            conn.execute(
                text("UPDATE job_locks SET holder = NULL, expires_at = NULL WHERE name = :name"),
                {"name": "system_backup"},
            )
    finally:
        if engine is None:
            sql_engine.dispose()


def _manifest(path: Path) -> dict[str, Any]:
    try:
        return archive.read_manifest(path)
    except ValueError as exc:
        raise BackupError(400, str(exc)) from exc


def restore_into_folder(settings: BackupSettings, ref: str, target: Path) -> RestoreReport:
    """Unpack a backup into an empty folder: ``data/`` (SQLite database inside), ``logs/``."""
    source = find_backup(settings, ref)
    manifest = _manifest(source)
    target = target.expanduser()
    if not target.is_absolute():
        raise BackupError(400, f"Give the target folder as an absolute path, not {str(target)!r}.")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(409, f"The target folder {target} is not empty: choose an empty one.")
    for live in (settings.data_dir, settings.log_dir, settings.backup_dir):
        if target.resolve() == live.resolve() or live.resolve() in target.resolve().parents:
            raise BackupError(
                400, f"{target} is inside the manager's own folders: restore in place instead."
            )
    report = RestoreReport(source.name, str(target), manifest["engine"])
    report.data_files = archive.extract(source, "data", target / "data")
    report.log_files = archive.extract(source, "logs", target / "logs")
    archive.extract(source, "database", target / "database")
    dump_file = target / "database" / manifest["database_file"]
    if manifest["engine"] == "sqlite":
        dump_file.replace(target / "data" / dump.SQLITE_DUMP)
        (target / "database").rmdir()
        report.database_restored = True
        report.notes.append(
            f"Run a manager on it with SM_DATA_DIR={target / 'data'} SM_LOG_DIR={target / 'logs'}."
        )
    else:
        report.notes.append(
            "Load the database with: pg_restore --no-owner --no-privileges -d <database> "
            f"{dump_file}"
        )
    RunLog(settings.backup_dir, datetime.now())(f"restored {source.name} into {target}")
    return report


def restore_in_place(
    settings: BackupSettings,
    ref: str,
    *,
    confirm: bool = False,
    live: bool = False,
    engine: Engine | None = None,
) -> RestoreReport:
    """Put a backup's database, data and run logs back where this manager keeps them.

    ``live``: the caller is a running manager (the API). Raises BackupError 409 when
    confirmation is needed, 400 when the backup is of another database engine.
    """
    source = find_backup(settings, ref)
    manifest = _manifest(source)
    current = dump.engine_of(settings.database_url)
    if manifest["engine"] != current:
        raise BackupError(
            400,
            f"{source.name} holds a {manifest['engine']} database; this manager uses {current}. "
            "Restore it into a folder instead.",
        )
    own_engine = engine is None
    sql_engine = engine or create_engine(settings.database_url)
    try:
        running = live or manager_running(sql_engine)
        users = user_count(sql_engine)
    finally:
        if own_engine:
            sql_engine.dispose()
    if not confirm and (running or users):
        why = (
            "a manager is running on this database"
            if running
            else f"the database holds {users} users"
        )
        raise BackupError(
            409,
            f"Restoring {source.name} would replace the live database ({why}). "
            'Confirm to go on (--yes on the command line, "confirm": true in the API).',
            needs_confirmation=True,
        )
    report = RestoreReport(source.name, "in place", current)
    with tempfile.TemporaryDirectory(dir=settings.backup_dir, prefix=".restore-") as staging:
        archive.extract(source, "database", Path(staging))
        try:
            dump.load_database(settings.database_url, Path(staging) / manifest["database_file"])
        except dump.DumpError as exc:
            raise BackupError(500, f"The database could not be restored: {exc}") from exc
    report.database_restored = True
    _release_backup_lock(settings.database_url, engine)
    report.data_files = archive.extract(source, "data", settings.data_dir)
    report.log_files = archive.extract(source, "logs", settings.log_dir)
    RunLog(settings.backup_dir, datetime.now())(f"restored {source.name} in place")
    return report
