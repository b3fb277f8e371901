"""Personal tags on scripts: read and set them, search by them, list all of mine."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit, tags
from manager.api.common import json_body
from manager.errors import error_response
from manager.extensions import db
from manager.models import Script, ScriptGroup
from manager.presenters import visible_groups, visible_script_or_404, visible_scripts
from manager.template_globals import current_language

bp = Blueprint("api_tags", __name__, url_prefix="/api")


def _limits() -> tags.TagLimits:
    return tags.TagLimits.from_config(current_app.config)


def my_visible_scripts() -> list[Script]:
    """Every script the current user may see, group by group."""
    groups = db.session.execute(select(ScriptGroup).order_by(ScriptGroup.name)).scalars().all()
    return [
        s
        for g in visible_groups(list(groups), current_user)
        for s in visible_scripts(g, current_user)
    ]


@bp.get("/scripts/<int:script_id>/tags")
@login_required
def get_tags(script_id: int):
    script = visible_script_or_404(script_id)
    view = tags.tag_view(db.session, current_user.id, script)
    return jsonify({**view, "limits": _limits().to_dict()})


@bp.put("/scripts/<int:script_id>/tags")
@login_required
def put_tags(script_id: int):
    """Replace my tags on the script: ``{"tags": ["daily", "reports"]}`` or ``"daily,reports"``."""
    script = visible_script_or_404(script_id)
    data = json_body()
    if "tags" not in data:
        return error_response(400, 'Send {"tags": [...]}: the list of your tags for this script.')
    try:
        saved = tags.set_user_tags(db.session, current_user.id, script.id, data["tags"], _limits())
    except tags.TagError as exc:
        db.session.rollback()
        return error_response(400, str(exc), field="tags", limits=_limits().to_dict())
    audit.record(
        db.session, "script_tags_updated", target=f"script:{script.id}", details={"tags": saved}
    )
    db.session.commit()
    view = tags.tag_view(db.session, current_user.id, script)
    return jsonify({**view, "limits": _limits().to_dict()})


@bp.get("/scripts/search-tags")
@login_required
def search_tags():
    """Scripts carrying ``?tags=a,b``: ``match=all`` (AND) or ``any`` (OR, the default);
    ``source=user``, ``system`` or ``all`` (the default)."""
    match = (request.args.get("match") or "any").lower()
    if match not in ("all", "any"):
        return error_response(400, f"'match' must be 'all' (every tag) or 'any', not {match!r}.")
    source = (request.args.get("source") or "all").lower()
    if source not in ("all", "user", "system"):
        return error_response(400, f"'source' must be 'all', 'user' or 'system', not {source!r}.")
    try:
        wanted = tags.parse_query(request.args.get("tags"))
    except tags.TagError as exc:
        return error_response(400, str(exc), field="tags")
    from manager.i18n import localized

    language = current_language()
    found = tags.search(
        db.session,
        current_user.id,
        my_visible_scripts(),
        wanted,
        match_all=match == "all",
        source=source,
    )
    results: list[dict[str, Any]] = [
        {
            "id": script.id,
            "group_id": script.group_id,
            "filename": script.filename,
            "name": localized((script.metadata_json or {}).get("display_name"), language)
            or script.display_name
            or script.filename,
            "tags": merged,
        }
        for script, merged in found
    ]
    return jsonify({"tags": wanted, "match": match, "source": source, "scripts": results})


@bp.get("/user/tags")
@login_required
def my_tags():
    """All my tags with how many scripts carry each; ``?q=da`` for suggestions starting so."""
    limits = _limits()
    prefix = request.args.get("q") or ""
    if prefix and not limits.suggestions:
        return error_response(404, "Tag suggestions are turned off on this installation.")
    return jsonify(
        {
            "tags": tags.all_user_tags(db.session, current_user.id, prefix),
            "limits": limits.to_dict(),
        }
    )
