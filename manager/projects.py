"""User projects: the default project, the active project, limits and workspace folders."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.models import User, UserProject, utcnow

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
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ProjectError(
            "Project name must start with a letter or digit and use only "
            "letters, digits, '.', '_' or '-' (at most 100 characters)."
        )
    count = session.execute(
        select(func.count(UserProject.id)).where(UserProject.user_id == user.id)
    ).scalar_one()
    if count >= max_projects:
        raise ProjectError(
            f"You already have {count} projects, the most allowed "
            f"(SM_MAX_PROJECTS_PER_USER={max_projects}).",
            status=429,
        )
    clash = session.execute(
        select(UserProject.id).where(
            UserProject.user_id == user.id, func.lower(UserProject.project_name) == name.lower()
        )
    ).first()
    if clash:
        raise ProjectError(f"You already have a project named {name!r}.", status=409)
    project = UserProject(user_id=user.id, project_name=name, description=description[:2000])
    session.add(project)
    session.flush()
    return project


def set_active(session: DbSession, user: User, project: UserProject) -> None:
    if project.user_id != user.id:
        raise ProjectError("That project is not yours.", status=404)
    user.active_project_id = project.id
    user.active_project = project
    project.last_accessed = utcnow()


def workspace_path(data_dir: str, group_dir: str, username: str, project_name: str) -> Path:
    """``data/script_groups/<group>/<user>/<project>/``: one folder per user, group and project."""
    return Path(data_dir) / "script_groups" / group_dir / username / project_name
