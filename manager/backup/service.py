"""Make, list, delete and restore system backups; report their status.

Functions take a :class:`BackupSettings` (read once from the app's configuration) and, where
they need it, a SQLAlchemy engine: no Flask globals, so the CLI, the API and the scheduler share
them.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from manager.backup import archive, dump

GIB = 1024**3
T = TypeVar("T")


def inline(work: Callable[[], T]) -> T:
    """Run ``work`` here (see :func:`create_backup`'s ``offload``)."""
    return work()


LOGS_FOLDER = "backup_logs"


class BackupError(Exception):
    """A backup request that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class BackupSettings:
    data_dir: Path
    log_dir: Path
    backup_dir: Path
    database_url: str
    exclude: tuple[str, ...] = ()
    retention_days: int = 30
    max_bytes: int = 0
    compress: bool = True
    schedule_time: str = "02:00"
    auto: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BackupSettings:
        return cls(
            data_dir=Path(config["SM_DATA_DIR"]),
            log_dir=Path(config["SM_LOG_DIR"]),
            backup_dir=Path(config["SM_BACKUP_DIR"]),
            database_url=str(config["SQLALCHEMY_DATABASE_URI"]),
            exclude=tuple(config.get("SM_BACKUP_EXCLUDE_PATTERNS") or ()),
            retention_days=int(config.get("SM_BACKUP_RETENTION_DAYS") or 0),
            max_bytes=int(float(config.get("SM_MAX_BACKUP_SIZE_GB") or 0) * GIB),
            compress=bool(config.get("SM_COMPRESS_BACKUPS", True)),
            schedule_time=str(config.get("SM_BACKUP_SCHEDULE_TIME") or ""),
            auto=bool(config.get("SM_AUTO_BACKUP", True)),
        )


@dataclass
class BackupInfo:
    date: str
    file: str
    path: str
    size_bytes: int
    created_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BackupResult:
    backup: BackupInfo
    data_files: int
    log_files: int
    bytes_in: int
    vanished: list[str]
    removed_by_retention: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        shown["backup"] = self.backup.to_dict()
        return shown


class RunLog:
    """The per-day log of backup runs: ``backup/backup_logs/backup_YYYYMMDD.log``."""

    def __init__(self, backup_dir: Path, now: datetime):
        self.path = backup_dir / LOGS_FOLDER / f"backup_{now:%Y%m%d}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")


def _info(path: Path) -> BackupInfo:
    made = archive.archive_time(path.name)
    return BackupInfo(
        date=path.parent.name,
        file=path.name,
        path=str(path),
        size_bytes=path.stat().st_size,
        created_at=made.isoformat() if made else None,
    )


def list_backups(settings: BackupSettings) -> list[BackupInfo]:
    """Every archive under the backup folder, newest first."""
    found: list[BackupInfo] = []
    if not settings.backup_dir.is_dir():
        return found
    for day in settings.backup_dir.iterdir():
        if not (day.is_dir() and archive.DAY_RE.match(day.name)):
            continue
        for path in day.iterdir():
            if archive.ARCHIVE_RE.match(path.name):
                try:
                    found.append(_info(path))
                except FileNotFoundError:  # deleted meanwhile
                    continue
    return sorted(found, key=lambda info: (info.created_at or "", info.file), reverse=True)


def check_day(day: str) -> str:
    """``day`` if it is a YYYY-MM-DD date, else BackupError 400."""
    try:
        if archive.DAY_RE.match(day):
            datetime.strptime(day, "%Y-%m-%d")
            return day
    except ValueError:
        pass
    raise BackupError(400, f"{day!r} is not a backup date: use YYYY-MM-DD, e.g. 2026-01-31.")


def delete_backup(settings: BackupSettings, day: str) -> list[str]:
    """Delete every archive of ``day`` (its folder); return the files removed."""
    folder = settings.backup_dir / check_day(day)
    if not folder.is_dir():
        raise BackupError(404, f"There is no backup of {day}.")
    removed = sorted(p.name for p in folder.iterdir() if archive.ARCHIVE_RE.match(p.name))
    shutil.rmtree(folder)
    return removed


def apply_retention(settings: BackupSettings, today: datetime) -> list[str]:
    """Delete the day folders older than the retention (0: keep all); return their names."""
    if settings.retention_days <= 0 or not settings.backup_dir.is_dir():
        return []
    cutoff = (today - timedelta(days=settings.retention_days)).strftime("%Y-%m-%d")
    removed = []
    for day in sorted(settings.backup_dir.iterdir()):
        if day.is_dir() and archive.DAY_RE.match(day.name) and day.name < cutoff:
            shutil.rmtree(day, ignore_errors=True)
            removed.append(day.name)
    return removed


def find_backup(settings: BackupSettings, ref: str) -> Path:
    """The archive ``ref`` names: a date (its newest archive), a file name, or a path."""
    ref = ref.strip()
    if not ref:
        raise BackupError(400, "Name the backup to restore: a date (YYYY-MM-DD) or a file name.")
    if archive.DAY_RE.match(ref):
        day_backups = [b for b in list_backups(settings) if b.date == check_day(ref)]
        if not day_backups:
            raise BackupError(404, f"There is no backup of {ref}.")
        return Path(day_backups[0].path)
    if archive.ARCHIVE_RE.match(ref):
        for info in list_backups(settings):
            if info.file == ref:
                return Path(info.path)
        raise BackupError(404, f"There is no backup file {ref} under {settings.backup_dir}.")
    path = Path(ref)
    if path.is_file() and archive.ARCHIVE_RE.match(path.name):
        return path
    raise BackupError(404, f"{ref} is neither a backup date, nor a backup file name, nor a file.")


def _skipped(settings: BackupSettings) -> set[Path]:
    skip = {settings.backup_dir.resolve()}
    if dump.engine_of(settings.database_url) == "sqlite":
        live = dump.sqlite_path(settings.database_url).resolve()
        skip |= {Path(f"{live}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")}
    return skip


def alembic_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def create_backup(
    settings: BackupSettings,
    *,
    now: datetime | None = None,
    reason: str = "manual",
    revision: str | None = None,
    offload: Callable[[Callable[[], Any]], Any] = inline,
) -> BackupResult:
    """Write one archive now; remove backups past retention afterwards.

    ``offload`` runs the archive writing (compression: CPU and disk) elsewhere, e.g. in a
    native thread so a gevent worker keeps serving meanwhile.

    Raises BackupError: 507 past SM_MAX_BACKUP_SIZE_GB, 500 when the dump fails (the message
    says why); a failed backup leaves no archive behind, and its log says what happened.
    """
    now = now or datetime.now()
    note = RunLog(settings.backup_dir, now)
    folder = settings.backup_dir / now.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d_%H%M%S")
    target = folder / f"data_backup_{stamp}.tar.gz"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"data_backup_{stamp}_{counter}.tar.gz"
    partial = target.with_name(target.name + ".partial")
    engine = dump.engine_of(settings.database_url)
    note(f"backup started ({reason}): {target.name}, {engine} database")
    try:
        with tempfile.TemporaryDirectory(dir=settings.backup_dir, prefix=".dump-") as staging:
            database_file = dump.dump_database(settings.database_url, Path(staging))
            manifest = {
                "created_at": now.isoformat(timespec="seconds"),
                "reason": reason,
                "engine": engine,
                "database_file": database_file.name,
                "alembic_revision": revision,
                "excluded": list(settings.exclude),
            }
            sources = archive.Sources(
                settings.data_dir, settings.log_dir, _skipped(settings), settings.exclude
            )
            written = offload(
                lambda: archive.write_archive(
                    partial,
                    sources,
                    database_file,
                    manifest,
                    max_bytes=settings.max_bytes,
                    compresslevel=6 if settings.compress else 0,
                    note=note,
                )
            )
        partial.rename(target)
    except archive.ArchiveTooLarge as exc:
        partial.unlink(missing_ok=True)
        gib = settings.max_bytes / GIB
        message = (
            f"The backup was stopped: it grew past the maximum of {gib:g} GiB "
            "(SM_MAX_BACKUP_SIZE_GB). Raise the maximum or add exclude patterns "
            "(SM_BACKUP_EXCLUDE_PATTERNS)."
        )
        note(f"backup FAILED: {exc}")
        raise BackupError(507, message, limit="max_backup_size") from exc
    except (dump.DumpError, OSError) as exc:
        partial.unlink(missing_ok=True)
        note(f"backup FAILED: {exc}")
        raise BackupError(500, f"The backup failed: {exc}") from exc
    finally:
        _remove_empty(folder)
    removed = apply_retention(settings, now)
    info = _info(target)
    note(
        f"backup done: {target.name}, {info.size_bytes} bytes, {written.data_files} data files, "
        f"{written.log_files} log files"
        + (f"; removed by retention: {', '.join(removed)}" if removed else "")
    )
    return BackupResult(
        info, written.data_files, written.log_files, written.bytes_in, written.vanished, removed
    )


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: it holds the archive
        folder.rmdir()


def disk_use(settings: BackupSettings) -> dict[str, int]:
    """Bytes the backups take, and the free and total space where they are written."""
    used = sum(info.size_bytes for info in list_backups(settings))
    probe = settings.backup_dir if settings.backup_dir.exists() else settings.backup_dir.parent
    try:
        usage = shutil.disk_usage(probe)
        free, total = usage.free, usage.total
    except OSError:
        free = total = 0
    return {"backups_bytes": used, "free_bytes": free, "total_bytes": total}
