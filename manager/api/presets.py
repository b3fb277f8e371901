"""Parameter presets over JSON: list, save, change, delete, run."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required

from manager import audit, presets
from manager.api.common import json_body
from manager.errors import error_response
from manager.extensions import db
from manager.models import ParameterPreset, Script, User
from manager.presenters import visible_script_or_404
from manager.projects import active_project
from manager.sessions.pool import current_pool

bp = Blueprint("api_presets", __name__, url_prefix="/api")


def _error(exc: presets.PresetError):
    db.session.rollback()
    return error_response(exc.status, exc.message, **exc.extra)


def _project(raw: Any):
    if raw in (None, ""):
        return active_project(
            db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
        )
    return presets.own_project(db.session, current_user, raw)


def _view(preset: ParameterPreset) -> dict[str, Any]:
    owner = db.session.get(User, preset.user_id)
    return presets.preset_view(preset, current_user, owner.username if owner else None)


def _script_of(preset: ParameterPreset) -> Script:
    return visible_script_or_404(preset.script_id)


@bp.get("/scripts/<int:script_id>/presets")
@login_required
def list_presets(script_id: int):
    """My presets of this script in ``?project_id=`` (default: the active project) and the
    ones others shared."""
    script = visible_script_or_404(script_id)
    try:
        project = _project(request.args.get("project_id"))
    except presets.PresetError as exc:
        return _error(exc)
    rows = presets.presets_for(db.session, current_user, script, project.id)
    db.session.commit()
    pool = current_pool()
    if pool is not None:  # the run form is open: warm a standby (sessions/pool.py)
        pool.note_page(db.session, current_user, script.group, project.id, [script])
    return jsonify(
        {"script_id": script.id, "project_id": project.id, "presets": [_view(p) for p in rows]}
    )


@bp.post("/scripts/<int:script_id>/presets")
@login_required
def create(script_id: int):
    """Save ``{"name", "parameters", "project_id"?, "shared"?}``; secrets are left out."""
    script = visible_script_or_404(script_id)
    data = json_body()
    try:
        project = _project(data.get("project_id"))
        preset, dropped = presets.create_preset(db.session, current_user, script, project, data)
    except presets.PresetError as exc:
        return _error(exc)
    audit.record(
        db.session,
        "preset_created",
        target=f"preset:{preset.id}",
        details={"script_id": script.id, "name": preset.name, "shared": preset.shared},
    )
    db.session.commit()
    return jsonify({**_view(preset), "secrets_not_stored": dropped}), 201


@bp.put("/presets/<int:preset_id>")
@login_required
def update(preset_id: int):
    data = json_body()
    try:
        preset = presets.own_preset(db.session, current_user, preset_id)
        script = _script_of(preset)
        dropped = presets.update_preset(db.session, current_user, preset, script, data)
    except presets.PresetError as exc:
        return _error(exc)
    audit.record(
        db.session,
        "preset_updated",
        target=f"preset:{preset.id}",
        details={"fields": sorted(set(data) & {"name", "parameters", "shared"})},
    )
    db.session.commit()
    return jsonify({**_view(preset), "secrets_not_stored": dropped})


@bp.delete("/presets/<int:preset_id>")
@login_required
def delete(preset_id: int):
    try:
        preset = presets.own_preset(db.session, current_user, preset_id)
    except presets.PresetError as exc:
        return _error(exc)
    audit.record(
        db.session, "preset_deleted", target=f"preset:{preset.id}", details={"name": preset.name}
    )
    db.session.delete(preset)
    db.session.commit()
    return jsonify({"deleted": preset_id})


@bp.post("/presets/<int:preset_id>/run")
@login_required
def run(preset_id: int):
    """Run the preset's script with its values (``parameters`` in the body add to them, e.g. a
    secret), in ``project_id`` (default: the active project). Answers like the execute API."""
    from manager.api.sessions import _start  # the very path of POST /scripts/<id>/execute

    data = json_body() if request.data else {}
    try:
        preset = presets.usable_preset(db.session, current_user, preset_id)
        script = _script_of(preset)
        values = presets.run_values(preset, script, data.get("parameters"))
    except presets.PresetError as exc:
        return _error(exc)
    project_id = data.get("project_id")
    if project_id in (None, "") and preset.user_id == current_user.id:
        project_id = preset.project_id
    return _start(
        script,
        {"parameters": values, "project_id": project_id, "on_conflict": data.get("on_conflict")},
    )
