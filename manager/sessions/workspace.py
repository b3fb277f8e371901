"""Host-side files of a session: the user's workspace folder and the runner's context file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("scriptsmanager")

RUNNER_UID = 10001


def workspace_dir(data_dir: str | Path, group_dir: str, user_id: int, project_id: int) -> Path:
    """``data/script_groups/<group>/<user id>/<project id>/``: one folder per user, group and
    project, named by ids so a name used again (a user re-created, a project renamed) never
    reaches someone else's files."""
    return Path(data_dir) / "script_groups" / group_dir / str(int(user_id)) / str(int(project_id))


def user_group_dir(data_dir: str | Path, group_dir: str, user_id: int) -> Path:
    """The folder of all of a user's workspaces in a group (what the workspace quota measures)."""
    return Path(data_dir) / "script_groups" / group_dir / str(int(user_id))


def disk_usage(folder: str | Path) -> int:
    """Bytes of disk a folder's files and subfolders take (allocated blocks, like ``du``), so
    sparse files count for what they hold; 0 when it does not exist."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # removed while we walked
                continue
    return total


def human_size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def prepare_workspace(path: str | Path) -> Path:
    """Create a session workspace folder that the runner's uid (10001) can write.

    As root: owned by 10001:10001, mode 0770. Otherwise the folder cannot be given away, so it is
    made world-writable (0777) and a warning says so: run the manager as root (or as uid 10001)
    to keep other local users out of workspaces.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, RUNNER_UID, RUNNER_UID)
        folder.chmod(0o770)
    elif os.geteuid() != RUNNER_UID:
        folder.chmod(0o777)
        log.warning(
            "workspace %s made world-writable (0777) so sessions (uid %d) can write it;"
            " run the manager as root to restrict it to that uid",
            folder,
            RUNNER_UID,
        )
    return folder


def write_context_file(path: str | Path, document: dict[str, Any]) -> Path:
    """Write the runner's context JSON where the session can read it but not change it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document), encoding="utf-8")
    if os.geteuid() == 0:
        os.chown(target, 0, RUNNER_UID)
        target.chmod(0o640)  # readable by the session's group only
    else:
        target.chmod(0o644)
    return target
