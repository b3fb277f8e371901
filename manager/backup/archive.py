"""Write and read backup archives: ``backup/YYYY-MM-DD/data_backup_YYYYMMDD_HHMMSS.tar.gz``.

An archive holds ``manifest.json``, ``database/<dump>`` (see :mod:`manager.backup.dump`),
``data/...`` (the data folder less the exclude patterns, the live SQLite files and the backup
folder) and ``logs/executions/...`` (run logs, never excluded: they are the runs' output).
A file that grows while it is archived is taken up to its size when it was reached; one that
vanishes is left out and noted in the run's log.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

ARCHIVE_RE = re.compile(r"^data_backup_(\d{8})_(\d{6})(?:_\d+)?\.tar\.gz$")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MANIFEST = "manifest.json"
FORMAT = 1
CHUNK = 1024 * 1024


class ArchiveTooLarge(OSError):
    """The archive grew past the configured maximum; the partial file is removed."""

    def __init__(self, limit: int):
        super().__init__(f"the backup grew past SM_MAX_BACKUP_SIZE_GB ({limit} bytes)")
        self.limit = limit


class CappedWriter(io.RawIOBase):
    """A binary file that raises ArchiveTooLarge once more than ``limit`` bytes are written."""

    def __init__(self, raw: IO[bytes], limit: int):
        self.raw = raw
        self.limit = limit
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        if self.limit > 0 and self.written + size > self.limit:
            raise ArchiveTooLarge(self.limit)
        self.raw.write(data)
        self.written += size
        return size

    def flush(self) -> None:
        self.raw.flush()


@dataclass
class Sources:
    """What one backup takes in."""

    data_dir: Path
    log_dir: Path
    skip: set[Path] = field(default_factory=set)  # absolute paths left out (live DB, backups)
    exclude: Sequence[str] = ()


@dataclass
class WriteReport:
    data_files: int = 0
    log_files: int = 0
    bytes_in: int = 0
    vanished: list[str] = field(default_factory=list)


def excluded(relative: Path, patterns: Sequence[str]) -> bool:
    """A path whose name or any folder name (or whole relative path) matches a pattern."""
    text = relative.as_posix()
    return any(
        fnmatch.fnmatch(text, pattern)
        or any(fnmatch.fnmatch(part, pattern) for part in relative.parts)
        for pattern in patterns
    )


def walk(root: Path, skip: set[Path], patterns: Sequence[str]) -> Iterator[Path]:
    """Files (and symlinks) under ``root`` in a stable order, less skipped and excluded ones."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if here / d not in skip and not excluded((here / d).relative_to(root), patterns)
        )
        for name in sorted(files):
            path = here / name
            if path in skip or excluded(path.relative_to(root), patterns):
                continue
            yield path
        for d in list(dirs):  # symlinked folders are archived as links, not followed
            if (here / d).is_symlink():
                dirs.remove(d)
                yield here / d


def _add(tar: tarfile.TarFile, path: Path, name: str, report: WriteReport) -> bool:
    try:
        info = tar.gettarinfo(str(path), arcname=name)
        if info.isreg():
            with path.open("rb") as handle:
                # gettarinfo's size: a file growing meanwhile is taken up to that size.
                tar.addfile(info, handle)
            report.bytes_in += info.size
        else:
            tar.addfile(info)
    except FileNotFoundError:
        report.vanished.append(name)
        return False
    return True


def write_archive(
    target: Path,
    sources: Sources,
    database_dump: Path,
    manifest: dict[str, Any],
    *,
    max_bytes: int = 0,
    compresslevel: int = 6,
    note: Callable[[str], None] = lambda _line: None,
) -> WriteReport:
    """Write the archive to ``target`` (ArchiveTooLarge past ``max_bytes``, 0: no cap)."""
    report = WriteReport()
    with target.open("wb") as raw:
        capped = CappedWriter(raw, max_bytes)
        with tarfile.open(
            fileobj=capped, mode="w:gz", compresslevel=compresslevel, format=tarfile.PAX_FORMAT
        ) as tar:
            tar.add(str(database_dump), arcname=f"database/{database_dump.name}")
            if sources.data_dir.is_dir():
                for path in walk(sources.data_dir, sources.skip, sources.exclude):
                    name = "data/" + path.relative_to(sources.data_dir).as_posix()
                    report.data_files += _add(tar, path, name, report)
            executions = sources.log_dir / "executions"
            if executions.is_dir():
                for path in walk(executions, sources.skip, ()):
                    name = "logs/executions/" + path.relative_to(executions).as_posix()
                    report.log_files += _add(tar, path, name, report)
            manifest = {
                **manifest,
                "format": FORMAT,
                "data_files": report.data_files,
                "log_files": report.log_files,
                "bytes_in": report.bytes_in,
            }
            body = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(body)
            info.mtime = int(datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(body))
        capped.flush()
    for name in report.vanished:
        note(f"left out (removed while the backup ran): {name}")
    return report


def read_manifest(archive: Path) -> dict[str, Any]:
    """The archive's manifest (ValueError when it is not one of our archives)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise ValueError(f"{archive.name} has no {MANIFEST}")
            data = json.loads(member.read())
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{archive.name} is not a readable backup archive: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{archive.name}: unknown backup format")
    return data


def extract(archive: Path, prefix: str, target: Path) -> int:
    """Extract the members under ``prefix/`` into ``target`` (safely); return how many."""
    count = 0
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.name.startswith(prefix + "/"):
                continue
            member.name = member.name[len(prefix) + 1 :]
            if not member.name:
                continue
            tar.extract(member, target, filter="data")
            count += 1
    return count


def archive_time(name: str) -> datetime | None:
    """When an archive named ``data_backup_YYYYMMDD_HHMMSS.tar.gz`` was made."""
    match = ARCHIVE_RE.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
