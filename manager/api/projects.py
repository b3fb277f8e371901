"""The current user's projects, and an admin's view of anyone's."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify
from flask_login import current_user, login_required

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.errors import error_response
from manager.extensions import db
from manager.models import User, UserProject
from manager.projects import (
    ProjectError,
    active_project,
    create_project,
    delete_project,
    reset_user_data,
    set_active,
    update_project,
    user_projects,
)

bp = Blueprint("api_projects", __name__, url_prefix="/api")


def _own_project(project_id: int) -> UserProject:
    project = db.session.get(UserProject, project_id)
    if project is None or project.user_id != current_user.id:
        abort(404, description=f"You have no project with id {project_id}.")
    return project


def _default_name() -> str:
    return str(current_app.config["SM_DEFAULT_PROJECT_NAME"])


def _listing(user: User) -> dict:
    active = active_project(db.session, user, _default_name())
    return {
        "projects": [p.to_dict() for p in user_projects(db.session, user)],
        "active_project_id": active.id if active else None,
        "max_projects": current_app.config["SM_MAX_PROJECTS_PER_USER"],
    }


@bp.get("/projects")
@login_required
def list_projects():
    body = _listing(current_user)
    db.session.commit()
    return jsonify(body)


@bp.post("/projects")
@login_required
def create():
    data = json_body()
    active_project(db.session, current_user, _default_name())  # the default one comes first
    try:
        project = create_project(
            db.session,
            current_user,
            str(data.get("project_name") or data.get("name") or ""),
            str(data.get("description") or ""),
            current_app.config["SM_MAX_PROJECTS_PER_USER"],
        )
    except ProjectError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    audit.record(db.session, "project_created", target=f"project:{project.project_name}")
    db.session.commit()
    return jsonify({"project": project.to_dict()}), 201


@bp.get("/projects/active")
@login_required
def get_active():
    project = active_project(db.session, current_user, _default_name())
    db.session.commit()
    return jsonify({"project": project.to_dict() if project else None})


@bp.post("/projects/<int:project_id>/set-active")
@login_required
def activate(project_id: int):
    project = _own_project(project_id)
    set_active(db.session, current_user, project)
    audit.record(db.session, "project_activated", target=f"project:{project.project_name}")
    db.session.commit()
    return jsonify({"project": project.to_dict()})


@bp.put("/projects/<int:project_id>")
@login_required
def update(project_id: int):
    """Rename (``project_name``) and/or describe (``description``) a project."""
    project = _own_project(project_id)
    data = json_body()
    raw_name = data.get("project_name", data.get("name"))
    if raw_name is not None and not isinstance(raw_name, str):
        return error_response(400, "'project_name' must be text.")
    old_name = project.project_name
    try:
        update_project(
            db.session,
            current_user,
            project,
            raw_name,
            str(data["description"]) if data.get("description") is not None else None,
        )
    except ProjectError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    audit.record(
        db.session,
        "project_updated",
        target=f"project:{project.id}",
        details={"old_name": old_name, "name": project.project_name},
    )
    db.session.commit()
    return jsonify({"project": project.to_dict()})


@bp.delete("/projects/<int:project_id>")
@login_required
def delete(project_id: int):
    """Delete a project; its workspace folders are zipped to the backup folder first."""
    project = _own_project(project_id)
    name = project.project_name
    try:
        kept = delete_project(
            db.session,
            current_user,
            project,
            current_app.config["SM_DATA_DIR"],
            current_app.config["SM_BACKUP_DIR"],
        )
    except ProjectError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    except OSError as exc:
        db.session.rollback()
        current_app.logger.error("deleting project %s: %s", project_id, exc)
        return error_response(
            500, "The project's files could not be archived; nothing was deleted."
        )
    audit.record(
        db.session,
        "project_deleted",
        target=f"project:{project_id}",
        details={"name": name, "archive": kept.name if kept else None},
    )
    active = active_project(db.session, current_user, _default_name())
    db.session.commit()
    return jsonify(
        {
            "deleted": project_id,
            "archive": kept.name if kept else None,
            "active_project_id": active.id if active else None,
        }
    )


# ------------------------------------------------------------------ admin


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, description=f"There is no user with id {user_id}.")
    return user


@bp.get("/admin/users/<int:user_id>/projects")
@login_required
@require_level("admin")
def admin_user_projects(user_id: int):
    body = _listing(_user_or_404(user_id))
    db.session.commit()
    return jsonify(body)


@bp.post("/admin/users/<int:user_id>/reset-data")
@login_required
@require_level("admin")
def admin_reset_data(user_id: int):
    """Archive, then delete a user's workspaces and extra projects; asks for the username."""
    owner = _user_or_404(user_id)
    data = json_body() if _has_body() else {}
    if data.get("confirm") != owner.username:
        return error_response(
            400,
            f"Resetting deletes all of {owner.username}'s files and projects (an archive is kept). "
            f'Confirm by sending {{"confirm": "{owner.username}"}}.',
        )
    try:
        kept, removed = reset_user_data(
            db.session,
            owner,
            current_app.config["SM_DATA_DIR"],
            current_app.config["SM_BACKUP_DIR"],
        )
    except ProjectError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    except OSError as exc:
        db.session.rollback()
        current_app.logger.error("resetting user %s: %s", user_id, exc)
        return error_response(500, "The user's files could not be archived; nothing was deleted.")
    audit.record(
        db.session,
        "user_data_reset",
        target=f"user:{owner.id}",
        details={"archive": kept.name if kept else None, "projects_deleted": removed},
        admin=True,
    )
    active_project(db.session, owner, _default_name())
    db.session.commit()
    return jsonify(
        {"user_id": owner.id, "archive": kept.name if kept else None, "projects_deleted": removed}
    )


def _has_body() -> bool:
    from flask import request

    return bool(request.data or request.form)
