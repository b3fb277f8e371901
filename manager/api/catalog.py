"""Script groups and scripts over JSON."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.catalog.discovery import refresh_group, refresh_script, update_script_metadata
from manager.catalog.errors import MetadataError
from manager.catalog.fields import EDITABLE_SCRIPT_FIELDS
from manager.catalog.history import field_changes, field_states
from manager.errors import error_response
from manager.extensions import db
from manager.models import ScriptGroup
from manager.presenters import (
    group_view,
    runnable_counts,
    script_view,
    visible_groups,
    visible_script_or_404,
    visible_scripts,
)
from manager.template_globals import current_language

bp = Blueprint("api_catalog", __name__, url_prefix="/api")


def _group_or_404(group_id: int) -> ScriptGroup:
    group = db.session.get(ScriptGroup, group_id)
    if group is None or not visible_groups([group], current_user):
        abort(404, description=f"No script group with id {group_id} is available to you.")
    return group


@bp.get("/script-groups")
@login_required
def groups():
    language = current_language()
    rows = db.session.execute(select(ScriptGroup).order_by(ScriptGroup.name)).scalars().all()
    counts = runnable_counts(db.session, current_user)
    return jsonify(
        {
            "groups": [
                group_view(g, language, current_user, counts.get(g.id, 0))
                for g in visible_groups(list(rows), current_user)
            ]
        }
    )


@bp.get("/script-groups/<int:group_id>/scripts")
@login_required
def group_scripts(group_id: int):
    group = _group_or_404(group_id)
    language = current_language()
    return jsonify(
        {
            "group": group_view(group, language, current_user),
            "scripts": [
                script_view(s, language, current_user) for s in visible_scripts(group, current_user)
            ],
        }
    )


# POST, not the seed's GET: a state change is never a GET (CSRF).
@bp.post("/script-groups/<int:group_id>/refresh")
@require_level("developer")
def group_refresh(group_id: int):
    group = _group_or_404(group_id)
    refresh_group(
        db.session,
        group,
        current_app.config["SM_SCRIPT_GROUPS_DIR"],
        envs_dir=current_app.config["SM_CONDA_ENVS_DIR"],
    )
    audit.record(db.session, "group_refreshed", target=f"group:{group.directory_path}")
    db.session.commit()
    return group_scripts(group_id)


@bp.get("/scripts/<int:script_id>/metadata")
@login_required
def get_metadata(script_id: int):
    script = visible_script_or_404(script_id)
    body = script_view(script, current_language(), current_user)
    body["metadata"] = script.metadata_json
    return jsonify(body)


@bp.put("/scripts/<int:script_id>/metadata")
@require_level("developer")
def put_metadata(script_id: int):
    script = visible_script_or_404(script_id)
    changes = json_body()
    before = field_states(script, [f for f in changes if f in EDITABLE_SCRIPT_FIELDS])
    try:
        update_script_metadata(db.session, script, changes)
    except MetadataError as exc:
        db.session.rollback()
        return error_response(400, exc.message, field=exc.field)
    audit.record(
        db.session,
        "script_metadata_updated",
        target=f"script:{script.id}",
        details={
            "fields": sorted(changes),
            "changes": field_changes(before, field_states(script, before)),
        },
    )
    db.session.commit()
    return get_metadata(script_id)


@bp.post("/scripts/<int:script_id>/refresh-metadata")
@require_level("developer")
def refresh_metadata(script_id: int):
    script = visible_script_or_404(script_id)
    refresh_script(db.session, script, current_app.config["SM_SCRIPT_GROUPS_DIR"])
    audit.record(db.session, "script_metadata_refreshed", target=f"script:{script.id}")
    db.session.commit()
    return get_metadata(script_id)
