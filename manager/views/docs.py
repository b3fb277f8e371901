"""Documentation pages: viewer, editor, metadata history, admin status; example downloads."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_login import current_user, login_required
from sqlalchemy import select

from manager.auth.permissions import require_level
from manager.docs.links import render_web
from manager.docs.service import (
    DocError,
    docs_status,
    example_file,
    list_examples,
    load_doc,
    template_for,
)
from manager.docs.service import (
    doc_image as find_doc_image,
)
from manager.extensions import db
from manager.models import Script, ScriptGroup
from manager.models.user import LANGUAGES
from manager.presenters import group_view, script_view, visible_groups, visible_script_or_404
from manager.template_globals import current_language

bp = Blueprint("docs", __name__)


def _groups_dir() -> Path:
    return Path(current_app.config["SM_SCRIPT_GROUPS_DIR"])


def _requested_language() -> str:
    language = request.args.get("lang") or current_language()
    if language not in LANGUAGES:
        abort(400, description=f"Unknown language {language!r}; use one of {', '.join(LANGUAGES)}.")
    return language


def _visible_group_or_404(group_id: int) -> ScriptGroup:
    group = db.session.get(ScriptGroup, group_id)
    if group is None or not visible_groups([group], current_user):
        abort(404, description="No such script group, or it is not available to you.")
    return group


@bp.get("/scripts/<int:script_id>/docs")
@login_required
def viewer(script_id: int):
    script = visible_script_or_404(script_id)
    language = _requested_language()
    try:
        doc = load_doc(_groups_dir(), script, language)
    except DocError as exc:
        abort(exc.status, description=exc.message)
    rendered = render_web(script, doc.markdown) if doc.exists else None
    ui_language = current_language()
    return render_template(
        "docs/viewer.html",
        script=script_view(script, ui_language, current_user),
        group=group_view(script.group, ui_language, current_user),
        doc=doc,
        rendered=rendered,
        doc_languages=LANGUAGES,
        examples=list_examples(_groups_dir(), script.group),
        can_edit=current_user.reaches("developer"),
    )


@bp.get("/scripts/<int:script_id>/docs/edit")
@require_level("developer")
def editor(script_id: int):
    script = visible_script_or_404(script_id)
    language = _requested_language()
    doc = load_doc(_groups_dir(), script, language)
    own = doc.exists and doc.language == language
    text = doc.markdown if own else template_for(script, language)
    ui_language = current_language()
    return render_template(
        "docs/editor.html",
        script=script_view(script, ui_language, current_user),
        group=group_view(script.group, ui_language, current_user),
        language=language,
        doc=doc,
        own=own,
        text=text,
        rendered=render_web(script, text),
        doc_languages=LANGUAGES,
    )


@bp.get("/scripts/<int:script_id>/history")
@require_level("developer")
def history_page(script_id: int):
    script = visible_script_or_404(script_id)
    ui_language = current_language()
    return render_template(
        "docs/history.html",
        script=script_view(script, ui_language, current_user),
        group=group_view(script.group, ui_language, current_user),
    )


@bp.get("/admin/docs")
@require_level("admin")
def status_page():
    scripts = db.session.execute(
        select(Script).where(Script.is_active.is_(True)).order_by(Script.group_id, Script.filename)
    ).scalars()
    rows = docs_status(_groups_dir(), list(scripts))
    return render_template("docs/status.html", rows=rows, doc_languages=LANGUAGES)


@bp.get("/groups/<int:group_id>/examples/<path:name>")
@login_required
def example(group_id: int, name: str):
    group = _visible_group_or_404(group_id)
    try:
        path = example_file(_groups_dir(), group, name)
    except DocError as exc:
        abort(exc.status, description=exc.message)
    # Always a download, never rendered on the manager's origin (an .html example stays inert).
    return send_file(path, as_attachment=True, download_name=path.name)


@bp.get("/groups/<int:group_id>/doc-images/<path:name>")
@login_required
def doc_image(group_id: int, name: str):
    group = _visible_group_or_404(group_id)
    try:
        path = find_doc_image(_groups_dir(), group, name)
    except DocError as exc:
        abort(exc.status, description=exc.message)
    return send_file(path)
