"""User projects: the default project, the active project, limits and workspace folders."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update

from manager.extensions import DbSession
from manager.models import Execution, ScriptProcess, User, UserProject, utcnow
from manager.workspace.archive import write_zip

LIVE_STATES = ("starting", "running", "stopping")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ProjectError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def user_projects(session: DbSession, user: User) -> list[UserProject]:
    return list(
        session.execute(
            select(UserProject).where(UserProject.user_id == user.id).order_by(UserProject.id)
        ).scalars()
    )


def active_project(
    session: DbSession, user: User, default_name: str = "project_default", create: bool = True
) -> UserProject | None:
    """The user's active project; the default one is created on first use when ``create``."""
    if user.active_project is not None:
        return user.active_project
    project = (
        session.execute(
            select(UserProject).where(UserProject.user_id == user.id, UserProject.is_default)
        )
        .scalars()
        .first()
    )
    if project is None and create:
        project = UserProject(
            user_id=user.id, project_name=default_name, is_default=True, description=""
        )
        session.add(project)
        session.flush()
    if project is not None:
        user.active_project_id = project.id
        user.active_project = project
    return project


def create_project(
    session: DbSession, user: User, name: str, description: str = "", max_projects: int = 50
) -> UserProject:
    name = check_name(session, user, name)
    count = session.execute(
        select(func.count(UserProject.id)).where(UserProject.user_id == user.id)
    ).scalar_one()
    if count >= max_projects:
        raise ProjectError(
            f"You already have {count} projects, the most allowed "
            f"(SM_MAX_PROJECTS_PER_USER={max_projects}).",
            status=429,
        )
    project = UserProject(user_id=user.id, project_name=name, description=description[:2000])
    session.add(project)
    session.flush()
    return project


def check_name(
    session: DbSession, user: User, name: str, project: UserProject | None = None
) -> str:
    """The stripped name if it is valid and not used by another of the user's projects."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ProjectError(
            "Project name must start with a letter or digit and use only "
            "letters, digits, '.', '_' or '-' (at most 100 characters)."
        )
    clash = session.execute(
        select(UserProject.id).where(
            UserProject.user_id == user.id,
            func.lower(UserProject.project_name) == name.lower(),
            UserProject.id != (project.id if project is not None else -1),
        )
    ).first()
    if clash:
        raise ProjectError(f"You already have a project named {name!r}.", status=409)
    return name


def update_project(
    session: DbSession, user: User, project: UserProject, name: str | None, description: str | None
) -> None:
    """Rename and/or describe a project; its folders are keyed by id, so nothing moves."""
    if name is not None:
        project.project_name = check_name(session, user, name, project)
    if description is not None:
        project.description = description[:2000]


def set_active(session: DbSession, user: User, project: UserProject) -> None:
    if project.user_id != user.id:
        raise ProjectError("That project is not yours.", status=404)
    user.active_project_id = project.id
    user.active_project = project
    project.last_accessed = utcnow()


def project_folders(
    data_dir: str | Path, user_id: int, project_id: int | None = None
) -> list[Path]:
    """The user's workspace folders in every group (``<group>/<user id>/[<project id>]``)."""
    base = Path(data_dir) / "script_groups"
    pattern = f"*/{int(user_id)}" + (f"/{int(project_id)}" if project_id is not None else "")
    return sorted(p for p in base.glob(pattern) if p.is_dir() and not p.is_symlink())


def _live_sessions(session: DbSession, user_id: int, project_id: int | None) -> int:
    query = select(func.count(ScriptProcess.id)).where(
        ScriptProcess.user_id == user_id, ScriptProcess.status.in_(LIVE_STATES)
    )
    if project_id is not None:
        query = query.where(ScriptProcess.project_id == project_id)
    return int(session.execute(query).scalar_one())


def archive_folders(
    folders: list[Path], data_dir: str | Path, backup_dir: str | Path, user_id: int, label: str
) -> Path:
    """Zip the folders (named ``<group>/...`` inside) to ``backup/projects/<user id>/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    target = Path(backup_dir) / "projects" / str(int(user_id)) / f"{stamp}-{label}.zip"
    base = Path(data_dir) / "script_groups"
    trees = [(folder, f"{folder.relative_to(base).as_posix()}/") for folder in folders]
    return write_zip(target, trees)


def _forget_project(session: DbSession, project: UserProject) -> None:
    """Runs keep their logs without the project; the row goes."""
    session.execute(
        update(Execution).where(Execution.project_id == project.id).values(project_id=None)
    )
    session.execute(
        update(ScriptProcess).where(ScriptProcess.project_id == project.id).values(project_id=None)
    )
    session.execute(
        update(User).where(User.active_project_id == project.id).values(active_project_id=None)
    )
    session.delete(project)


def delete_project(
    session: DbSession, user: User, project: UserProject, data_dir: str, backup_dir: str
) -> Path | None:
    """Delete a project and its workspace folders, archived first; returns the archive.

    Raises ProjectError 409 for the default project or one with a live session.
    """
    if project.is_default:
        raise ProjectError(
            "The default project cannot be deleted; every user keeps one. Rename it instead.", 409
        )
    if _live_sessions(session, project.user_id, project.id):
        raise ProjectError(
            f"Project {project.project_name!r} has a running session; stop it first.", 409
        )
    folders = project_folders(data_dir, project.user_id, project.id)
    kept = (
        archive_folders(folders, data_dir, backup_dir, project.user_id, f"project_{project.id}")
        if folders
        else None
    )
    if user.active_project_id == project.id:
        user.active_project_id = None
        user.active_project = None
    _forget_project(session, project)
    session.flush()
    for folder in folders:
        shutil.rmtree(folder)
    return kept


def reset_user_data(
    session: DbSession, owner: User, data_dir: str, backup_dir: str
) -> tuple[Path | None, int]:
    """Archive then delete all of a user's workspaces and projects but the default one.

    Returns (the archive or None when there was nothing, projects deleted). Raises
    ProjectError 409 while the user has a live session.
    """
    if _live_sessions(session, owner.id, None):
        raise ProjectError(
            f"{owner.username} has a running session; stop it before resetting their data.", 409
        )
    folders = project_folders(data_dir, owner.id)
    kept = archive_folders(folders, data_dir, backup_dir, owner.id, "reset") if folders else None
    removed = 0
    for project in user_projects(session, owner):
        if not project.is_default:
            _forget_project(session, project)
            removed += 1
    session.flush()
    owner.active_project_id = None
    for folder in folders:
        shutil.rmtree(folder)
    return kept, removed
