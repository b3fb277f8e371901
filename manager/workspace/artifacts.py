"""Run artifacts: the workspace files a run created or changed.

A file belongs to a run when its modification time falls between the run's start and its end.
That needs no hook in the run's lifecycle and no snapshot: a file changed again by a later run
has a later time and is not counted for the earlier one. Once a run has ended its list is
recorded on the execution row (the first time anybody asks), so later changes never reach it;
each listed file then says whether it is still as the run left it. Runs of the same project that
overlap in time each list what was written while they ran.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from manager.extensions import DbSession
from manager.models import Execution, Script
from manager.sessions.workspace import workspace_dir
from manager.workspace import safefs

MAX_ARTIFACTS = 500
LIVE_STATES = ("starting", "running", "stopping")


def _epoch(moment: datetime) -> float:
    """A naive UTC datetime from the database as seconds since the epoch."""
    return moment.replace(tzinfo=UTC).timestamp()


def changed_files(root: Path, since: float, until: float) -> list[dict[str, Any]]:
    """Regular files of ``root`` modified in [since, until], newest first, at most 500."""
    try:
        root_fd = safefs.open_root(root)
    except OSError:
        return []
    try:
        found: list[dict[str, Any]] = [
            {"path": e.path, "size": e.size, "modified": e.mtime}
            for e in safefs.walk(root_fd)
            if e.kind == "file" and since <= e.mtime <= until
        ]
    finally:
        os.close(root_fd)
    found.sort(key=lambda item: (-float(item["modified"]), str(item["path"])))
    return found[:MAX_ARTIFACTS]


def run_workspace(data_dir: str | Path, execution: Execution, script: Script | None) -> Path | None:
    if script is None or execution.project_id is None:
        return None
    return workspace_dir(data_dir, script.group.directory_path, execution.user_id,
                         execution.project_id)  # fmt: skip


def run_artifacts(
    db: DbSession, execution: Execution, script: Script | None, data_dir: str | Path
) -> list[dict[str, Any]]:
    """The run's files, each with ``current`` (still as the run left it) and ``exists``.

    A live run is scanned up to now and nothing is stored; an ended run is scanned once and the
    list recorded on its row (the caller commits).
    """
    root = run_workspace(data_dir, execution, script)
    if execution.artifacts is None:
        if root is None:
            return []
        live = execution.status in LIVE_STATES or execution.end_time is None
        until = datetime.now(UTC).timestamp() if live else _epoch(execution.end_time)  # type: ignore[arg-type]
        found = changed_files(root, _epoch(execution.start_time), until)
        if live:
            return [{**item, "current": True, "exists": True} for item in found]
        execution.artifacts = found
        db.flush()
    return [{**item, **_now_state(root, item)} for item in execution.artifacts or []]


def _now_state(root: Path | None, item: dict[str, Any]) -> dict[str, bool]:
    if root is None:
        return {"current": False, "exists": False}
    try:
        root_fd = safefs.open_root(root)
    except OSError:
        return {"current": False, "exists": False}
    try:
        parts = safefs.split_path(item["path"])
        with safefs.parent_of(root_fd, parts) as parent:
            info = safefs.entry_stat(parent, parts[-1])
    except (OSError, safefs.UnsafePath):
        return {"current": False, "exists": False}
    finally:
        os.close(root_fd)
    same = info.st_size == item["size"] and abs(info.st_mtime - item["modified"]) < 1e-6
    return {"current": same, "exists": True}


def artifacts_view(
    db: DbSession, execution: Execution, script: Script | None, data_dir: str | Path
) -> list[dict[str, Any]]:
    """The run's files with a download link each, for the log page and the API.

    Records the list of an ended run on first use and commits that (it is a cache of facts
    that no longer change, not a user action).
    """
    recorded = execution.artifacts is not None
    files = run_artifacts(db, execution, script, data_dir)
    if not recorded and execution.artifacts is not None:
        db.commit()
    if script is None or execution.project_id is None:
        return files
    base = f"/api/data/{script.group_id}/{execution.project_id}/"
    for item in files:
        if item["exists"]:
            item["download_url"] = base + quote(item["path"])
    return files
