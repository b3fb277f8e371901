"""The current user's projects."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify
from flask_login import current_user, login_required

from manager import audit
from manager.api.common import json_body
from manager.errors import error_response
from manager.extensions import db
from manager.models import UserProject
from manager.projects import ProjectError, active_project, create_project, set_active, user_projects

bp = Blueprint("api_projects", __name__, url_prefix="/api/projects")


def _own_project(project_id: int) -> UserProject:
    project = db.session.get(UserProject, project_id)
    if project is None or project.user_id != current_user.id:
        abort(404, description=f"You have no project with id {project_id}.")
    return project


@bp.get("")
@login_required
def list_projects():
    active = active_project(db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"])
    db.session.commit()
    return jsonify(
        {
            "projects": [p.to_dict() for p in user_projects(db.session, current_user)],
            "active_project_id": active.id if active else None,
        }
    )


@bp.post("")
@login_required
def create():
    data = json_body()
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


@bp.get("/active")
@login_required
def get_active():
    project = active_project(
        db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
    )
    db.session.commit()
    return jsonify({"project": project.to_dict() if project else None})


@bp.post("/<int:project_id>/set-active")
@login_required
def activate(project_id: int):
    project = _own_project(project_id)
    set_active(db.session, current_user, project)
    audit.record(db.session, "project_activated", target=f"project:{project.project_name}")
    db.session.commit()
    return jsonify({"project": project.to_dict()})


@bp.put("/<int:project_id>")
@login_required
def update(project_id: int):
    project = _own_project(project_id)
    data = json_body()
    if "description" in data:
        project.description = str(data["description"])[:2000]
    audit.record(db.session, "project_updated", target=f"project:{project.project_name}")
    db.session.commit()
    return jsonify({"project": project.to_dict()})
