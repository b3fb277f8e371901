"""Turn catalog rows into what pages and the JSON API show, in the user's language."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.i18n import localized
from manager.models import Script, ScriptGroup, User
from manager.sessions.service import is_interactive


def visible(user: User, required_level: str) -> bool:
    return user.reaches(required_level)


def can_edit(user: User) -> bool:
    return user.reaches("developer")


def localize_parameter(definition: dict[str, Any], language: str) -> dict[str, Any]:
    shown = dict(definition)
    shown["description"] = localized(definition.get("description"), language)
    label = definition.get("label") or definition.get("display_name")
    shown["label"] = localized(label, language) if label else definition.get("name", "")
    return shown


def script_view(script: Script, language: str, user: User) -> dict[str, Any]:
    meta = script.metadata_json or {}
    tags = meta.get("tags")
    if not isinstance(tags, list):
        tags = [t.strip() for t in (script.tags or "").split(",") if t.strip()]
    return {
        "id": script.id,
        "group_id": script.group_id,
        "filename": script.filename,
        "name": localized(meta.get("display_name"), language)
        or script.display_name
        or script.filename,
        "description": localized(meta.get("description"), language) or script.description or "",
        "description_long": meta.get("description_long") or {},
        "category": script.category,
        "tags": tags,
        "required_level": script.required_level,
        "parameters": [
            localize_parameter(p, language)
            for p in (script.parameters or [])
            if isinstance(p, dict)
        ],
        "execution_timeout": script.execution_timeout,
        "interactive": is_interactive(script),
        "requires_parameters": bool(meta.get("requires_parameters", bool(script.parameters))),
        "is_active": script.is_active,
        "invalid_reason": script.invalid_reason if can_edit(user) else None,
        "is_valid": script.invalid_reason is None,
        "overrides": sorted((script.overrides or {}).keys()) if can_edit(user) else [],
        "last_modified": script.last_modified.isoformat() if script.last_modified else None,
    }


def runnable_counts(db: DbSession, user: User) -> dict[int, int]:
    """Per group id, how many of its scripts ``user`` may run: a group card's count, for every
    group from one aggregate query (loading 1,000 scripts to count them took most of the
    dashboard's time: bench/scale)."""
    rows = db.execute(
        select(Script.group_id, Script.required_level, func.count())
        .where(Script.is_active.is_(True), Script.invalid_reason.is_(None))
        .group_by(Script.group_id, Script.required_level)
    )
    counts: dict[int, int] = {}
    for group_id, level, count in rows:
        if visible(user, level):
            counts[group_id] = counts.get(group_id, 0) + count
    return counts


def group_view(
    group: ScriptGroup, language: str, user: User, script_count: int | None = None
) -> dict[str, Any]:
    """A group as pages and the API show it; ``script_count`` from ``runnable_counts`` spares
    loading its scripts."""
    meta = group.metadata_json or {}
    if script_count is None:
        script_count = sum(1 for s in visible_scripts(group, user) if s.invalid_reason is None)
    return {
        "id": group.id,
        "name": localized(meta.get("display_name"), language) or group.name,
        "directory": group.directory_path,
        "description": localized(meta.get("description"), language) or group.description or "",
        "icon": meta.get("icon") or "folder",
        "category": meta.get("category"),
        "required_level": group.required_level,
        "conda_environment": group.conda_environment or "base",
        "script_count": script_count,
        "invalid_reason": group.invalid_reason if can_edit(user) else None,
        "is_valid": group.invalid_reason is None,
        "warnings": meta.get("warnings", []) if can_edit(user) else [],
        "limits": meta.get("limits") or {},
    }


def visible_groups(groups: list[ScriptGroup], user: User) -> list[ScriptGroup]:
    """Active groups the user may see; invalid ones only for developers and admins."""
    return [
        g
        for g in groups
        if g.is_active
        and visible(user, g.required_level)
        and (g.invalid_reason is None or can_edit(user))
    ]


def visible_scripts(group: ScriptGroup, user: User) -> list[Script]:
    return [
        s
        for s in group.scripts
        if s.is_active
        and visible(user, s.required_level)
        and (s.invalid_reason is None or can_edit(user))
    ]


def visible_script_or_404(script_id: int) -> Script:
    """The script if the current user may see it; 404 otherwise (existence is not revealed)."""
    from flask import abort
    from flask_login import current_user

    from manager.extensions import db

    # An id from a request body may be any integer; past the column's range it names nothing.
    script = db.session.get(Script, script_id) if 0 < script_id < 2**31 else None
    if (
        script is None
        or not visible_groups([script.group], current_user)
        or script not in visible_scripts(script.group, current_user)
    ):
        abort(404, description=f"No script with id {script_id} is available to you.")
    return script
