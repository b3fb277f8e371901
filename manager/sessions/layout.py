"""Startup step: move workspaces and log files named after usernames to folders named by ids.

Older installations kept ``data/script_groups/<group>/<username>/<project name>/`` and
``logs/executions/<username>/<day>/execution_<uuid>.log``; a user re-created under an old name
would have seen the old user's files. Now both are keyed by ids (see DESIGN.md). This step moves
what it can prove belongs to someone and leaves the rest where no user can reach it:

* a log file belongs to the user its execution row names (exact, by the uuid in its name);
  a file without a row stays where it is;
* a workspace ``<group>/<name>/<project name>`` belongs to the user called ``name`` when that
  user has a project of that name and nothing in the folder is older than the user and the
  project (else it was left by an earlier user of the name); otherwise it is moved aside to
  ``<group>/_unclaimed/<name>/<project name>`` for an admin to look at.

Safe to run twice and by two processes at once (a file lock; every move is one rename, and a
target that exists is never overwritten). ``scriptsmanager init-db`` and ``serve`` run it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from manager.extensions import DbSession
from manager.models import Execution, User, UserProject

log = logging.getLogger("scriptsmanager")

UNCLAIMED = "_unclaimed"
_LOG_NAME = re.compile(r"^execution_(.+)\.log$")
_CLOCK_SLACK = 2.0  # seconds: file systems round modification times


@dataclass
class LayoutReport:
    workspaces_moved: list[tuple[str, str]] = field(default_factory=list)
    workspaces_unclaimed: list[str] = field(default_factory=list)
    logs_moved: int = 0
    logs_left: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # target existed: nothing overwritten

    def summary(self) -> str:
        return (
            f"{len(self.workspaces_moved)} workspaces moved to id folders, "
            f"{len(self.workspaces_unclaimed)} set aside as unclaimed, "
            f"{self.logs_moved} log files moved, {len(self.logs_left)} left without an owner, "
            f"{len(self.skipped)} skipped (target exists)"
        )


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _move(source: Path, target: Path, report: LayoutReport) -> bool:
    """Rename ``source`` to ``target`` unless ``target`` exists (never overwrite)."""
    if target.exists():
        report.skipped.append(str(source))
        log.warning("layout: %s not moved: %s already exists", source, target)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except FileNotFoundError:  # another process moved it first
        return False
    return True


def _oldest_mtime(folder: Path) -> float:
    oldest = folder.lstat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                oldest = min(oldest, os.lstat(os.path.join(root, name)).st_mtime)
    return oldest


def _epoch(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def migrate_workspaces(db: DbSession, data_dir: str | Path, report: LayoutReport) -> None:
    root = Path(data_dir) / "script_groups"
    users_by_name = {u.username: u for u in db.execute(select(User)).scalars()}
    user_ids = {str(u.id) for u in users_by_name.values()}
    projects: dict[int, list[UserProject]] = {}
    for row in db.execute(select(UserProject)).scalars():
        projects.setdefault(row.user_id, []).append(row)
    for group in _subdirs(root):
        for owner in _subdirs(group):
            name = owner.name
            if name == UNCLAIMED:
                continue
            user = users_by_name.get(name)
            for folder in _subdirs(owner):
                if name in user_ids and folder.name.isdigit():
                    mine = {str(p.id) for p in projects.get(int(name), [])}
                    if folder.name in mine:
                        continue  # already <user id>/<project id>
                if name.isdigit() and user is None:
                    continue  # an id folder (of a user since removed): not a name
                project = next(
                    (p for p in projects.get(user.id if user else -1, [])
                     if p.project_name == folder.name), None,
                )  # fmt: skip
                born = max(_epoch(user.created_at if user else None),
                           _epoch(project.created_at if project else None))  # fmt: skip
                if user is not None and project is not None:
                    if _oldest_mtime(folder) + _CLOCK_SLACK >= born:
                        target = group / str(user.id) / str(project.id)
                        if _move(folder, target, report):
                            report.workspaces_moved.append((str(folder), str(target)))
                        continue
                    log.warning(
                        "layout: %s holds files older than user %r: left by an earlier user "
                        "of that name, set aside",
                        folder,
                        name,
                    )
                target = group / UNCLAIMED / name / folder.name
                if _move(folder, target, report):
                    report.workspaces_unclaimed.append(str(target))
            with contextlib.suppress(OSError):
                owner.rmdir()  # only when empty


def migrate_logs(db: DbSession, log_dir: str | Path, report: LayoutReport) -> None:
    root = Path(log_dir) / "executions"
    usernames = set(db.execute(select(User.username)).scalars())
    user_ids = {str(i) for i in db.execute(select(User.id)).scalars()}
    for owner in _subdirs(root):
        if owner.name in user_ids and owner.name not in usernames:
            continue  # an id folder, and no user is called that: already migrated
        for day in _subdirs(owner):
            for path in sorted(day.iterdir()):
                match = _LOG_NAME.match(path.name)
                if not match:
                    continue
                user_id = db.execute(
                    select(Execution.user_id).where(Execution.execution_uuid == match.group(1))
                ).scalar()
                if user_id is None:
                    report.logs_left.append(str(path))
                    continue
                if str(user_id) == owner.name:
                    continue
                if _move(path, root / str(user_id) / day.name / path.name, report):
                    report.logs_moved += 1
            with contextlib.suppress(OSError):
                day.rmdir()
        with contextlib.suppress(OSError):
            owner.rmdir()


def migrate_layout(db: DbSession, data_dir: str | Path, log_dir: str | Path) -> LayoutReport:
    """Move username-named workspaces and logs to id-named folders; see the module docstring."""
    report = LayoutReport()
    with _exclusive(Path(data_dir) / "system" / "layout.lock"):
        migrate_workspaces(db, data_dir, report)
        migrate_logs(db, log_dir, report)
    if report.workspaces_moved or report.workspaces_unclaimed or report.logs_moved:
        log.info("layout: %s", report.summary())
    return report
