"""Data usage: workspace files per user and project, run logs per user."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.logs.stats import folder_bytes, user_log_dir
from manager.models import Execution, User, UserProject


@dataclass
class ProjectUsage:
    project_id: int
    name: str
    workspace_bytes: int = 0
    files: int = 0
    runs: int = 0


@dataclass
class UserUsage:
    user_id: int
    username: str
    level: str
    workspace_bytes: int = 0
    files: int = 0
    log_bytes: int = 0
    runs: int = 0
    projects: list[ProjectUsage] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.workspace_bytes + self.log_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "level": self.level,
            "workspace_bytes": self.workspace_bytes,
            "files": self.files,
            "log_bytes": self.log_bytes,
            "runs": self.runs,
            "total_bytes": self.total_bytes,
            "projects": [vars(p) for p in self.projects],
        }


def _tree(folder: Path) -> tuple[int, int]:
    size = count = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                count += 1
            except OSError:  # removed while we walked
                continue
    return size, count


def workspace_usage(data_dir: str | Path) -> dict[tuple[int, int], tuple[int, int]]:
    """(bytes, files) by (user id, project id) over every group's workspaces."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    root = Path(data_dir) / "script_groups"
    if not root.is_dir():
        return found
    for group in root.iterdir():
        if not group.is_dir():
            continue
        for user in group.iterdir():
            if not (user.is_dir() and user.name.isdigit()):
                continue
            for project in user.iterdir():
                if not (project.is_dir() and project.name.isdigit()):
                    continue
                key = (int(user.name), int(project.name))
                size, count = _tree(project)
                before = found.get(key, (0, 0))
                found[key] = (before[0] + size, before[1] + count)
    return found


def data_usage(db: DbSession, config: Mapping[str, Any]) -> list[UserUsage]:
    """Every user's workspace bytes (per project), run log bytes and run counts; biggest first."""
    users = {u.id: UserUsage(u.id, u.username, u.user_level) for u in db.scalars(select(User))}
    projects: dict[int, ProjectUsage] = {}
    for project in db.scalars(select(UserProject)):
        if project.user_id in users:
            usage = ProjectUsage(project.id, project.project_name)
            projects[project.id] = usage
            users[project.user_id].projects.append(usage)
    runs = db.execute(
        select(Execution.user_id, Execution.project_id, func.count(Execution.id)).group_by(
            Execution.user_id, Execution.project_id
        )
    )
    for user_id, project_id, count in runs:
        if user_id in users:
            users[user_id].runs += count
        if project_id in projects:
            projects[project_id].runs += count
    for (user_id, project_id), (size, count) in workspace_usage(config["SM_DATA_DIR"]).items():
        if user_id not in users:
            continue
        users[user_id].workspace_bytes += size
        users[user_id].files += count
        if project_id in projects:
            projects[project_id].workspace_bytes += size
            projects[project_id].files += count
    for user in users.values():
        user.log_bytes = folder_bytes(user_log_dir(config["SM_LOG_DIR"], user.user_id))
        user.projects.sort(key=lambda p: (-p.workspace_bytes, p.name))
    return sorted(users.values(), key=lambda u: (-u.total_bytes, u.username))
