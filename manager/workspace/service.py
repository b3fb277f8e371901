"""Whose workspace a request reaches, and the limits on what it may put there.

A workspace is ``data/script_groups/<group dir>/<user id>/<project id>/`` (see
:func:`manager.sessions.workspace.workspace_dir`). Only the project's owner reaches it, or an admin
when ``SM_ADMIN_CAN_ACCESS_ALL_DATA`` allows; viewers may read their own but not change it.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manager.extensions import DbSession
from manager.models import ScriptGroup, User, UserProject
from manager.presenters import visible_groups
from manager.sessions.limits import Limits, merge
from manager.sessions.workspace import disk_usage, human_size, user_group_dir, workspace_dir

# Shown in the browser as they are; anything else is a download. Never HTML or SVG: the
# manager's origin must not render what a script wrote.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
TEXT_SUFFIXES = frozenset(
    {".txt", ".csv", ".tsv", ".json", ".log", ".md", ".yml", ".yaml", ".ini", ".cfg", ".xml", ".py"}
)


class WorkspaceError(Exception):
    """A refused workspace request: ``status`` is the HTTP status, ``message`` for people."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Workspace:
    group: ScriptGroup
    project: UserProject
    root: Path
    owner_dir: Path  # all of the owner's workspaces in the group: what the quota measures
    writable: bool

    @property
    def owner_id(self) -> int:
        return self.project.user_id


def resolve(
    db: DbSession,
    user: User,
    group_id: int,
    project_id: int,
    *,
    data_dir: str | Path,
    admin_access: bool,
    write: bool = False,
) -> Workspace:
    """The workspace of ``project_id`` in ``group_id`` if ``user`` may reach it.

    Raises WorkspaceError: 404 for a group the user cannot see or a project that is not theirs
    (existence is not revealed), 403 for an admin when admin access is off, or a viewer writing.
    """
    group = db.get(ScriptGroup, group_id)
    if group is None or not visible_groups([group], user):
        raise WorkspaceError(404, f"There is no script group with id {group_id}.")
    project = db.get(UserProject, project_id)
    own = project is not None and project.user_id == user.id
    if project is None or (not own and not user.is_admin):
        raise WorkspaceError(404, f"You have no project with id {project_id}.")
    if not own and not admin_access:
        raise WorkspaceError(
            403,
            "Admins may not open other users' workspaces on this server "
            "(SM_ADMIN_CAN_ACCESS_ALL_DATA is off).",
        )
    if write and not user.reaches("operator"):
        raise WorkspaceError(403, "Viewers can look at their files but cannot change them.")
    return Workspace(
        group=group,
        project=project,
        root=workspace_dir(data_dir, group.directory_path, project.user_id, project.id),
        owner_dir=user_group_dir(data_dir, group.directory_path, project.user_id),
        writable=user.reaches("operator"),
    )


def group_limits(defaults: Limits, group: ScriptGroup) -> Limits:
    """The group's limits over the installation's defaults; the defaults if they are broken."""
    try:
        return merge(defaults, (group.metadata_json or {}).get("limits") or {})
    except ValueError:
        return defaults


@dataclass(frozen=True)
class UploadRoom:
    """How many bytes one upload may bring, and the message when it brings more."""

    limit: int
    message: str
    used: int
    quota: int


def upload_room(workspace: Workspace, limits: Limits, max_upload: int) -> UploadRoom:
    """The bytes an upload may bring: the upload limit or what is left of the quota.

    Raises WorkspaceError 507 when the owner's workspaces in the group are already full.
    """
    quota = limits.workspace_quota_bytes
    used = disk_usage(workspace.owner_dir)
    left = quota - used
    if left <= 0:
        raise WorkspaceError(
            507,
            f"The workspaces in this group ({workspace.group.name}) take {human_size(used)} of "
            f"their {human_size(quota)} quota; delete files before uploading more.",
            limit="workspace_quota",
        )
    if max_upload <= left:
        return UploadRoom(
            max_upload,
            f"The file is larger than the upload limit of {human_size(max_upload)} "
            "(SM_MAX_UPLOAD_MB).",
            used,
            quota,
        )
    return UploadRoom(
        left,
        f"The file does not fit: only {human_size(left)} of the {human_size(quota)} workspace "
        f"quota of this group ({workspace.group.name}) is left.",
        used,
        quota,
    )


def preview_type(name: str) -> tuple[str, bool]:
    """(Content-Type, inline) for a download: text as plain text, some images, else binary."""
    lower = name.lower()
    suffix = lower[lower.rfind(".") :] if "." in lower else ""
    if suffix in TEXT_SUFFIXES:
        return "text/plain; charset=utf-8", True
    guessed = mimetypes.guess_type(lower)[0]
    if guessed in INLINE_IMAGES:
        return guessed, True
    return "application/octet-stream", False
