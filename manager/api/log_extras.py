"""A run's PDF, its share links, and my bookmarks and notes on runs.

Every endpoint acts only on runs the caller can see (their own; an admin's look at someone
else's, allowed by ``SM_ADMIN_CAN_ACCESS_ALL_DATA``, is audited); any other run is "not found".
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from flask_login import current_user, login_required

from manager import audit
from manager.api.common import json_body
from manager.errors import error_response
from manager.extensions import db
from manager.logs.bookmarks import (
    MarkError,
    delete_mark,
    get_mark,
    list_marks,
    mark_view,
    parse_mark,
    set_mark,
)
from manager.logs.detail import Run, find_run
from manager.logs.export import log_record, run_lines
from manager.logs.hub import off_hub
from manager.logs.pdf import run_pdf
from manager.logs.shares import (
    ShareError,
    can_see_run,
    create_share,
    expiry_days,
    list_shares,
    resolve_share,
    revoke_share,
    share_view,
)
from manager.models import utcnow

bp = Blueprint("api_log_extras", __name__)


def _visible_run(execution_id: str) -> Run | None:
    """The run if the caller can see it (an admin's look at another's run is audited)."""
    if len(execution_id) > 64:
        return None
    run = find_run(db.session, current_app.config["SM_LOG_DIR"], execution_id)
    if run is None or not can_see_run(current_user, run.execution, current_app.config):
        return None
    if run.execution.user_id != current_user.id:
        audit.record(
            db.session,
            "log_accessed",
            target=f"execution:{run.uuid}",
            details={"owner": run.names.username, "view": request.endpoint},
            admin=True,
        )
        db.session.commit()
    return run


def _not_found(execution_id: str):
    return error_response(404, f"No run with id {execution_id[:64]} is yours.")


@bp.get("/api/logs/execution/<execution_id>/pdf")
@login_required
def pdf(execution_id: str):
    """The run's log as a PDF (header fields, then every line; long logs paginate)."""
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    record = log_record(run.execution, run.names)
    # Output columns are read here, on the request's database session; the file is read and the
    # PDF laid out on a native thread under gevent, so the server goes on serving meanwhile.
    lines = run_lines(run.execution, run.path)
    if not run.path.is_file():
        lines = iter(list(lines))
    body = off_hub(run_pdf, record, lines)
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="execution_{run.uuid}.pdf"'
    return response


# --- bookmarks and notes (personal) -------------------------------------------------------


@bp.get("/api/logs/marks")
@login_required
def my_marks():
    """My bookmarks and notes, newest first; ``bookmarked=1`` keeps only bookmarks."""
    only = request.args.get("bookmarked", "") in ("1", "true")
    admin_all = current_user.is_admin and current_app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"]
    marks = [
        m
        for m in list_marks(db.session, current_user.id, bookmarked_only=only)
        if m["owner_id"] == current_user.id or admin_all
    ]
    return jsonify({"marks": marks})


@bp.get("/api/logs/execution/<execution_id>/mark")
@login_required
def read_mark(execution_id: str):
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    return jsonify(mark_view(get_mark(db.session, current_user.id, run.uuid), run.uuid))


@bp.put("/api/logs/execution/<execution_id>/mark")
@login_required
def save_mark(execution_id: str):
    """``{"bookmarked": bool, "note": text}`` (either may be left out); both empty removes it."""
    data = json_body()
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    try:
        bookmarked, note = parse_mark(data)
        mark = set_mark(db.session, current_user.id, run.uuid, bookmarked, note)
    except MarkError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    db.session.commit()
    return jsonify(mark_view(mark, run.uuid))


@bp.delete("/api/logs/execution/<execution_id>/mark")
@login_required
def remove_mark(execution_id: str):
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    removed = delete_mark(db.session, current_user.id, run.uuid)
    db.session.commit()
    return jsonify({"execution_id": run.uuid, "removed": removed})


# --- share links --------------------------------------------------------------------------


def _url_root() -> str:
    return request.host_url.rstrip("/") + request.script_root


@bp.get("/api/logs/execution/<execution_id>/shares")
@login_required
def shares(execution_id: str):
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    now, root = utcnow(), _url_root()
    links = [share_view(link, now, root) for link in list_shares(db.session, run.uuid)]
    return jsonify({"shares": links})


@bp.post("/api/logs/execution/<execution_id>/shares")
@login_required
def share(execution_id: str):
    """A new link: ``{"expires_in_days": 1..90}`` (7 by default)."""
    data = json_body() if request.data else {}
    run = _visible_run(execution_id)
    if run is None:
        return _not_found(execution_id)
    try:
        link = create_share(
            db.session, current_user, run.execution, expiry_days(data.get("expires_in_days"))
        )
    except ShareError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message)
    audit.record(
        db.session,
        "log_shared",
        target=f"execution:{run.uuid}",
        details={"share_id": link.id, "expires_at": link.expires_at.isoformat()},
    )
    db.session.commit()
    return jsonify(share_view(link, utcnow(), _url_root())), 201


@bp.delete("/api/logs/shares/<int:share_id>")
@login_required
def revoke(share_id: int):
    try:
        link = revoke_share(db.session, current_user, share_id, current_app.config)
    except ShareError as exc:
        return error_response(exc.status, exc.message)
    audit.record(
        db.session,
        "log_share_revoked",
        target=f"execution:{link.execution_uuid}",
        details={"share_id": link.id},
    )
    db.session.commit()
    return jsonify(share_view(link, utcnow(), _url_root()))


@bp.get("/api/logs/shares/<token>")
@login_required
def open_share_api(token: str):
    """Where a token leads: the run's id and page, if I could see it anyway."""
    try:
        execution = resolve_share(db.session, current_user, token, current_app.config)
    except ShareError as exc:
        return error_response(exc.status, exc.message)
    run = _visible_run(execution.execution_uuid)  # audits an admin's look
    if run is None:
        return _not_found(execution.execution_uuid)
    return jsonify(
        {
            "execution_id": run.uuid,
            "url": url_for("logs.detail", execution_id=run.uuid),
        }
    )


@bp.get("/logs/shared/<token>")
@login_required
def open_share(token: str):
    """The share link itself: login first, then the run's page if I could see it anyway."""
    try:
        execution = resolve_share(db.session, current_user, token, current_app.config)
    except ShareError as exc:
        return error_response(exc.status, exc.message)
    return redirect(url_for("logs.detail", execution_id=execution.execution_uuid))
