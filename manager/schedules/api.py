"""Scheduled runs over JSON: list, create, change (pause/resume), delete; the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user, login_required

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.errors import error_response
from manager.extensions import db
from manager.models import Schedule, Script, User, UserProject, utcnow
from manager.presenters import visible_script_or_404
from manager.schedules import service
from manager.sessions.service import is_interactive

bp = Blueprint("schedules", __name__)


def _error(exc: service.ScheduleError):
    db.session.rollback()
    return error_response(exc.status, exc.message, **exc.extra)


def _view(schedule: Schedule) -> dict[str, Any]:
    script = db.session.get(Script, schedule.script_id)
    project = db.session.get(UserProject, schedule.project_id)
    owner = db.session.get(User, schedule.user_id)
    view = service.schedule_view(
        schedule,
        utcnow(),
        script_name=(script.display_name or script.filename) if script else "",
        project_name=project.project_name if project else "",
    )
    view["username"] = owner.username if owner else None
    return view


def _interactive(script: Script) -> bool:
    return is_interactive(script, Path(current_app.config["SM_SCRIPT_GROUPS_DIR"]))


@bp.get("/api/schedules")
@login_required
def list_schedules():
    """My schedules (admins: ``?all=1`` for everyone's)."""
    everyone = current_user.is_admin and request.args.get("all") in ("1", "true")
    rows = service.list_schedules(db.session, current_user, everyone)
    return jsonify({"schedules": [_view(s) for s in rows]})


@bp.post("/api/schedules")
@require_level("operator")
def create():
    """``{"script_id", "project_id", "cron", "timezone"?, "name"?, "preset_id" | "parameters"}``."""
    data = json_body()
    try:
        script_id = int(data.get("script_id") or "")
    except (TypeError, ValueError):
        return error_response(400, "'script_id' must be the id of a script.", field="script_id")
    script = visible_script_or_404(script_id)
    try:
        schedule = service.create_schedule(
            db.session,
            current_user,
            script,
            data,
            now=utcnow(),
            interactive=_interactive(script),
            max_per_user=int(current_app.config.get("SM_MAX_SCHEDULES_PER_USER", 20)),
        )
    except service.ScheduleError as exc:
        return _error(exc)
    audit.record(
        db.session,
        "schedule_created",
        target=f"schedule:{schedule.id}",
        details={"script_id": script.id, "cron": schedule.cron, "timezone": schedule.timezone},
    )
    db.session.commit()
    return jsonify(_view(schedule)), 201


@bp.get("/api/schedules/<int:schedule_id>")
@login_required
def get(schedule_id: int):
    try:
        schedule = service.own_schedule(db.session, current_user, schedule_id)
    except service.ScheduleError as exc:
        return _error(exc)
    return jsonify(_view(schedule))


@bp.put("/api/schedules/<int:schedule_id>")
@require_level("operator")
def update(schedule_id: int):
    """Change any of name, cron, timezone, project_id, preset_id/parameters, enabled."""
    data = json_body()
    try:
        schedule = service.own_schedule(db.session, current_user, schedule_id)
        script = visible_script_or_404(schedule.script_id)
        owner = db.session.get(User, schedule.user_id) or current_user
        changed = service.update_schedule(db.session, owner, schedule, script, data, utcnow())
    except service.ScheduleError as exc:
        return _error(exc)
    action = "schedule_updated"
    if changed == ["enabled"]:
        action = "schedule_resumed" if schedule.enabled else "schedule_paused"
    audit.record(db.session, action, target=f"schedule:{schedule.id}", details={"fields": changed})
    db.session.commit()
    return jsonify(_view(schedule))


@bp.delete("/api/schedules/<int:schedule_id>")
@login_required
def delete(schedule_id: int):
    try:
        schedule = service.own_schedule(db.session, current_user, schedule_id)
    except service.ScheduleError as exc:
        return _error(exc)
    audit.record(db.session, "schedule_deleted", target=f"schedule:{schedule.id}",
                 details={"name": schedule.name})  # fmt: skip
    db.session.delete(schedule)
    db.session.commit()
    return jsonify({"deleted": schedule_id})


@bp.get("/schedules")
@require_level("operator")
def page():
    """The schedules page: the list (filled by schedules.js) and the form."""
    from manager.api.tags import my_visible_scripts
    from manager.projects import user_projects

    scripts = [
        {"id": s.id, "name": s.display_name or s.filename, "group": s.group.name}
        for s in my_visible_scripts()
        if s.invalid_reason is None and not _interactive(s)
    ]
    projects = user_projects(db.session, current_user)
    rows = [_view(s) for s in service.list_schedules(db.session, current_user)]
    return render_template("schedules.html", scripts=scripts, projects=projects, schedules=rows)
