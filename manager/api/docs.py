"""Script documentation over JSON: read, write, preview, status, examples and metadata history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.catalog.discovery import refresh_script
from manager.catalog.errors import MetadataError
from manager.catalog.history import (
    DOC_ACTION,
    ENV_ACTION,
    HistoryError,
    event_for,
    field_changes,
    field_states,
    group_target,
    history,
    restore_target,
    script_target,
)
from manager.docs.links import render_web
from manager.docs.render import MAX_MARKDOWN_CHARS
from manager.docs.service import (
    DocError,
    docs_status,
    list_examples,
    load_doc,
    save_doc,
    template_for,
)
from manager.errors import error_response
from manager.extensions import db
from manager.models import AuditEvent, Script, ScriptGroup
from manager.presenters import visible_groups, visible_script_or_404
from manager.sessions.runtime import runtime
from manager.template_globals import current_language

bp = Blueprint("api_docs", __name__, url_prefix="/api")


def _groups_dir() -> Path:
    return Path(current_app.config["SM_SCRIPT_GROUPS_DIR"])


def _language(value: Any) -> str:
    return str(value or current_language())


@bp.get("/scripts/<int:script_id>/description-long")
@login_required
def get_description_long(script_id: int):
    """The document in ``?lang=`` (default: the user's), English when it has none.

    ``?format=html`` adds the rendered HTML and table of contents; developers also get a
    generated ``template`` when no document exists.
    """
    script = visible_script_or_404(script_id)
    return _doc_response(script, _language(request.args.get("lang")))


def _doc_response(script: Script, language: str):
    try:
        doc = load_doc(_groups_dir(), script, language)
    except DocError as exc:
        return error_response(exc.status, exc.message, field="lang")
    body: dict[str, Any] = {
        "script_id": script.id,
        "requested_language": doc.requested,
        "language": doc.language,
        "fallback": doc.fallback,
        "exists": doc.exists,
        "path": doc.path,
        "markdown": doc.markdown,
        "available_languages": doc.available,
        "viewer_url": url_for("docs.viewer", script_id=script.id, lang=doc.requested),
    }
    if request.args.get("format") == "html":
        rendered = render_web(script, doc.markdown)
        body.update(html=rendered.html, toc=rendered.toc)
    if not doc.exists and current_user.reaches("developer"):
        body["template"] = template_for(script, doc.requested)
    return jsonify(body)


@bp.put("/scripts/<int:script_id>/description-long")
@require_level("developer")
def put_description_long(script_id: int):
    """Write one language's document ``{"language", "markdown"}`` (developer+, audited)."""
    script = visible_script_or_404(script_id)
    data = json_body()
    text = data.get("markdown")
    if not isinstance(text, str):
        return error_response(400, "Send the document as text in 'markdown'.", field="markdown")
    language = _language(data.get("language"))
    try:
        path, before = save_doc(_groups_dir(), script, language, text)
    except DocError as exc:
        return error_response(exc.status, exc.message, field="markdown")
    except OSError as exc:
        current_app.logger.warning("cannot write a document of script %s: %s", script.id, exc)
        return error_response(
            500, f"The document could not be written: {exc.strerror or exc}.", field="markdown"
        )
    _record_doc(script, language, path, before, text)
    # The new file may be one discovery has not seen yet: re-read the script's sources.
    refresh_script(db.session, script, _groups_dir())
    db.session.commit()
    return _doc_response(script, language)


def _record_doc(script: Script, language: str, path: str, before: str | None, after: str) -> None:
    audit.record(
        db.session,
        DOC_ACTION,
        target=script_target(script),
        details={"language": language, "path": path, "before": before, "after": after},
    )


@bp.post("/docs/render")
@require_level("developer")
def render_preview():
    """The editor's live preview: ``{"markdown", "script_id"}`` -> sanitised HTML (developer+)."""
    data = json_body()
    text = data.get("markdown")
    if not isinstance(text, str):
        return error_response(400, "Send the document as text in 'markdown'.", field="markdown")
    if len(text) > MAX_MARKDOWN_CHARS:
        return error_response(
            413,
            f"The document has {len(text):,} characters; the limit is {MAX_MARKDOWN_CHARS:,}.",
            field="markdown",
        )
    script_id = data.get("script_id")
    if not isinstance(script_id, int):
        return error_response(400, "Send the script's id in 'script_id'.", field="script_id")
    script = visible_script_or_404(script_id)
    rendered = render_web(script, text)
    return jsonify({"html": rendered.html, "toc": rendered.toc})


@bp.get("/docs/status")
@require_level("admin")
def status():
    """Which active scripts lack a document in which language (admin)."""
    scripts = db.session.execute(
        select(Script).where(Script.is_active.is_(True)).order_by(Script.group_id, Script.filename)
    ).scalars()
    return jsonify({"scripts": docs_status(_groups_dir(), list(scripts))})


@bp.get("/script-groups/<int:group_id>/examples")
@login_required
def examples(group_id: int):
    """The group's example input files (its examples/ folder), with download URLs."""
    group = db.session.get(ScriptGroup, group_id)
    if group is None or not visible_groups([group], current_user):
        return error_response(404, f"No script group with id {group_id} is available to you.")
    return jsonify(
        {
            "group_id": group.id,
            "examples": [
                {
                    "name": e.name,
                    "size": e.size,
                    "url": url_for("docs.example", group_id=group.id, name=e.name),
                }
                for e in list_examples(_groups_dir(), group)
            ],
        }
    )


def history_view(event: AuditEvent) -> dict[str, Any]:
    """One history entry as the panel shows it."""
    details = event.details or {}
    entry: dict[str, Any] = {
        "id": event.id,
        "created_at": event.created_at.isoformat(timespec="seconds"),
        "username": event.username,
        "action": event.action,
    }
    if event.action == DOC_ACTION:
        entry["kind"] = "document"
        entry.update({k: details.get(k) for k in ("language", "path", "before", "after")})
    elif event.action == ENV_ACTION:
        entry["kind"] = "environment"
        entry["changes"] = [
            {
                "field": "conda_environment",
                "before": details.get("before"),
                "after": details.get("after", details.get("environment")),
                "restorable": bool(details.get("before")),
            }
        ]
    else:
        entry["kind"] = "metadata"
        entry["changes"] = [
            {"field": name, **change, "restorable": True}
            for name, change in sorted((details.get("changes") or {}).items())
        ]
    return entry


@bp.get("/scripts/<int:script_id>/history")
@require_level("developer")
def get_history(script_id: int):
    """The script's metadata, document and environment changes, newest first (developer+)."""
    script = visible_script_or_404(script_id)
    return jsonify(
        {"script_id": script.id, "history": [history_view(e) for e in history(db.session, script)]}
    )


@bp.post("/scripts/<int:script_id>/history/<int:event_id>/restore")
@require_level("developer")
def restore(script_id: int, event_id: int):
    """Put back one field's value (``{"field", "side": "before"|"after"}``) or a document."""
    script = visible_script_or_404(script_id)
    data = json_body()
    side = str(data.get("side") or "before")
    try:
        event = event_for(db.session, script, event_id)
        if event.action == DOC_ACTION:
            return _restore_doc(script, event, side)
        field = str(data.get("field") or "")
        if event.action == ENV_ACTION:
            wanted = (event.details or {}).get(side)
            if wanted not in runtime().environments.spec_names():
                raise HistoryError(f"The environment {wanted!r} no longer exists.")
            before_env = script.group.conda_environment
            kind, value = restore_target(db.session, script, event, field, side)
            audit.record(
                db.session,
                ENV_ACTION,
                target=group_target(script.group),
                details={"environment": value, "before": before_env, "after": value,
                         "restored_from": event.id},
            )  # fmt: skip
        else:
            before = field_states(script, [field])
            kind, value = restore_target(db.session, script, event, field, side)
            audit.record(
                db.session,
                "script_metadata_restored",
                target=script_target(script),
                details={
                    "fields": [field],
                    "changes": field_changes(before, field_states(script, [field])),
                    "restored_from": event.id,
                },
            )
    except HistoryError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    except MetadataError as exc:
        db.session.rollback()
        return error_response(400, exc.message, field=exc.field)
    db.session.commit()
    return jsonify({"restored": kind, "field": field, "value": value})


def _restore_doc(script: Script, event: AuditEvent, side: str):
    details = event.details or {}
    text = details.get(side)
    language = details.get("language")
    if side not in ("before", "after") or not isinstance(text, str):
        return error_response(400, f"This entry holds no document text {side} the change.")
    try:
        path, before = save_doc(_groups_dir(), script, str(language), text)
    except DocError as exc:
        return error_response(exc.status, exc.message)
    _record_doc(script, str(language), path, before, text)
    refresh_script(db.session, script, _groups_dir())
    db.session.commit()
    return jsonify({"restored": "document", "language": language, "path": path})
