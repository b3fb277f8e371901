"""My execution logs over JSON: list, detail, downloads, search, delete, stats, presets, bulk.

Users see only their own runs (someone else's is "not found"); admins may open any run by id,
and every such access lands in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.errors import error_response
from manager.extensions import db
from manager.logs.detail import (
    MAX_LINES,
    Run,
    find_run,
    parse_streams,
    read_run_lines,
    run_detail,
    viewer_count,
)
from manager.logs.export import FORMATS, MIME, bulk_zip, export_one, jsonl_chunks, log_record
from manager.logs.presets import delete_preset, list_presets, save_preset
from manager.logs.queries import (
    LIVE_STATUSES,
    FilterError,
    LogFilters,
    int_param,
    list_executions,
    parse_filters,
    search_executions,
)
from manager.logs.retention import apply_retention, delete_executions, delete_older_than
from manager.logs.retention import retention_days as days_for_level
from manager.logs.stats import user_stats
from manager.models import Execution, Script, UserProject, utcnow

bp = Blueprint("api_logs", __name__, url_prefix="/api/logs")

MAX_BULK = 500


def _log_dir() -> str:
    return str(current_app.config["SM_LOG_DIR"])


def filters_from_request(*, allow_user: bool = False) -> LogFilters:
    """The list filters of this request, or 400 naming the bad parameter."""
    try:
        return parse_filters(request.args, allow_user=allow_user)
    except FilterError as exc:
        abort(400, description=str(exc))


def arg_int(name: str, low: int, high: int) -> int | None:
    """An optional whole-number query parameter, or 400."""
    try:
        return int_param(request.args, name, low, high)
    except FilterError as exc:
        abort(400, description=str(exc))


def audit_foreign(owner_id: int, action: str, target: str, **details: Any) -> None:
    """Record an admin's look at someone else's logs (and commit it)."""
    if owner_id != current_user.id:
        audit.record(db.session, action, target=target, details=details, admin=True)
        db.session.commit()


def run_for_viewer(execution_id: str, *, own_only: bool = False) -> Run:
    """The run if it is mine (or I am an admin, audited); 404 otherwise."""
    run = find_run(db.session, _log_dir(), execution_id)
    allowed = run is not None and (
        run.execution.user_id == current_user.id or (current_user.is_admin and not own_only)
    )
    if run is None or not allowed:
        abort(404, description=f"No run with id {execution_id} is yours.")
    audit_foreign(
        run.execution.user_id,
        "log_accessed",
        f"execution:{run.uuid}",
        owner=run.names.username,
        view=request.endpoint,
    )
    return run


def _page(filters: LogFilters):
    if filters.query is not None:
        return jsonify(search_executions(db.session, filters).to_dict(filters))
    return jsonify(list_executions(db.session, filters).to_dict(filters))


@bp.get("/execution")
@login_required
def list_mine():
    """My runs, paginated (50 a page), sortable and filtered; ``q`` searches the output."""
    filters = filters_from_request()
    filters.user_id = current_user.id
    return _page(filters)


@bp.get("/search")
@login_required
def search():
    """Full-text search of my runs' output and parameters, with highlighted snippets."""
    filters = filters_from_request()
    if filters.query is None:
        return error_response(400, "Type something to search for (q).")
    filters.user_id = current_user.id
    return _page(filters)


@bp.get("/script/<int:script_id>")
@login_required
def by_script(script_id: int):
    if db.session.get(Script, script_id) is None:
        abort(404, description=f"No script with id {script_id}.")
    filters = filters_from_request()
    filters.user_id, filters.script_id = current_user.id, script_id
    return _page(filters)


@bp.get("/project/<int:project_id>")
@login_required
def by_project(project_id: int):
    project = db.session.get(UserProject, project_id)
    if project is None or not (project.user_id == current_user.id or current_user.is_admin):
        abort(404, description=f"No project with id {project_id} is yours.")
    filters = filters_from_request()
    filters.user_id, filters.project_id = project.user_id, project_id
    audit_foreign(project.user_id, "logs_listed", f"project:{project_id}")
    return _page(filters)


@bp.get("/execution/<execution_id>")
@login_required
def detail(execution_id: str):
    """A run with its outputs; ``tail=N`` or ``after_seq=S&limit=L`` read lines from the file."""
    tail = arg_int("tail", 0, MAX_LINES)
    after = arg_int("after_seq", 0, 2**31 - 1)
    limit = arg_int("limit", 1, MAX_LINES) or MAX_LINES
    try:
        streams = parse_streams(request.args.get("streams"))
    except ValueError as exc:
        return error_response(400, str(exc))
    run = run_for_viewer(execution_id)
    reading = tail is not None or after is not None
    body = run_detail(db.session, run, with_outputs=not reading)
    if reading:
        body.update(read_run_lines(run, tail=tail, after_seq=after, limit=limit, streams=streams))
    return jsonify(body)


def _attachment(chunks: Iterator[str] | bytes, filename: str, fmt: str) -> Response:
    body = chunks if isinstance(chunks, bytes) else stream_with_context(chunks)
    response = Response(body, mimetype=MIME[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/execution/<execution_id>/download")
@login_required
def download(execution_id: str):
    """The run's log as ``format=txt|json|csv`` (attachment)."""
    fmt = request.args.get("format", "txt")
    if fmt not in FORMATS:
        return error_response(400, f"format must be one of: {', '.join(FORMATS)}.")
    run = run_for_viewer(execution_id)
    record = log_record(run.execution, run.names, viewers=viewer_count(run.uuid))
    chunks = export_one(fmt, record, run.execution, run.path)
    return _attachment(chunks, f"execution_{run.uuid}.{fmt}", fmt)


@bp.delete("/execution/<execution_id>")
@login_required
def delete_one(execution_id: str):
    """Delete one of my ended runs: its row and its log file."""
    run = run_for_viewer(execution_id, own_only=True)
    if run.execution.status in LIVE_STATUSES:
        return error_response(409, "This run is still running: stop it before deleting its log.")
    report = delete_executions(db.session, _log_dir(), [run.execution.id])
    audit.record(db.session, "log_deleted", target=f"execution:{run.uuid}")
    db.session.commit()
    return jsonify(report.to_dict())


@bp.post("/cleanup")
@login_required
def cleanup():
    """Apply my retention now; ``older_than_days`` also deletes my runs older than that."""
    data = json_body() if request.data else {}
    older = data.get("older_than_days")
    if older is not None and (not isinstance(older, int) or isinstance(older, bool) or older < 0):
        return error_response(400, "older_than_days must be a whole number of days (0 or more).")
    report = apply_retention(db.session, current_app.config, user_id=current_user.id)
    if older is not None:
        cutoff = utcnow() - timedelta(days=older)
        report.add(delete_older_than(db.session, _log_dir(), current_user.id, cutoff))
    audit.record(
        db.session,
        "logs_cleanup",
        target=f"user:{current_user.username}",
        details={"deleted": report.deleted, "older_than_days": older},
    )
    db.session.commit()
    body = report.to_dict()
    body["retention_days"] = days_for_level(current_app.config, current_user.user_level)
    return jsonify(body)


@bp.get("/stats")
@login_required
def stats():
    """My runs, success rate, durations, favourite scripts and projects, trend, storage."""
    days = arg_int("days", 1, 366) or 30
    return jsonify(user_stats(db.session, current_app.config, current_user, days=days))


def _bulk_targets(data: dict[str, Any]) -> tuple[list[tuple[int, str, str]], list[str]]:
    """``(id, uuid, status)`` of the listed runs that are mine, and the ids that are not."""
    ids = data.get("execution_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        abort(400, description="execution_ids must be a non-empty list of run ids.")
    if len(ids) > MAX_BULK:
        abort(400, description=f"Select at most {MAX_BULK} runs at once.")
    wanted = list(dict.fromkeys(ids))
    # Run ids are short and printable; others (a NUL breaks PostgreSQL's query) name no run.
    plausible = [i for i in wanted if len(i) <= 64 and "\x00" not in i]
    rows = db.session.execute(
        select(Execution.id, Execution.execution_uuid, Execution.status).where(
            Execution.execution_uuid.in_(plausible), Execution.user_id == current_user.id
        )
    ).all()
    mine = {uuid: (row_id, uuid, status) for row_id, uuid, status in rows}
    return [mine[i] for i in wanted if i in mine], [i for i in wanted if i not in mine]


def _runs(uuids: list[str]) -> Iterator[Run]:
    """Load runs one at a time, so an export holds one run's output in memory, not all."""
    for uuid in uuids:
        run = find_run(db.session, _log_dir(), uuid)
        if run is not None:
            yield run
            db.session.expunge(run.execution)


@bp.post("/bulk")
@login_required
def bulk():
    """``{"action": "delete"|"export", "execution_ids": [...], "format": ...}`` on my runs.

    Export gives a ZIP of one file per run (format json, txt or csv) or, with
    ``"format": "jsonl"``, one JSON log record per line.
    """
    data = json_body()
    action = data.get("action")
    if action not in ("delete", "export"):
        return error_response(400, "action must be delete or export.")
    runs, not_found = _bulk_targets(data)
    if action == "delete":
        report = delete_executions(
            db.session, _log_dir(), [rid for rid, _, status in runs if status not in LIVE_STATUSES]
        )
        audit.record(
            db.session, "logs_bulk_deleted", details={"execution_ids": report.execution_ids}
        )
        db.session.commit()
        body = report.to_dict()
        body["skipped"] = [
            {"execution_id": uuid, "reason": "running"}
            for _, uuid, status in runs
            if status in LIVE_STATUSES
        ]
        body["not_found"] = not_found
        return jsonify(body)
    fmt = data.get("format", "json")
    if fmt not in (*FORMATS, "jsonl"):
        return error_response(400, f"format must be one of: {', '.join(FORMATS)}, jsonl.")
    if not runs:
        return error_response(404, "None of these runs is yours.")
    stamp = date.today().isoformat()
    chosen = _runs([uuid for _, uuid, _ in runs])
    if fmt == "jsonl":
        records = (log_record(r.execution, r.names) for r in chosen)
        return _attachment(jsonl_chunks(records), f"logs_{stamp}.jsonl", "jsonl")
    items = ((log_record(r.execution, r.names), r.execution, r.path) for r in chosen)
    return _attachment(bulk_zip(items, fmt), f"logs_{stamp}.zip", "zip")


@bp.get("/presets")
@login_required
def presets():
    return jsonify({"presets": [p.to_dict() for p in list_presets(db.session, current_user.id)]})


@bp.post("/presets")
@login_required
def save():
    """Save filters under a name (replacing a preset of the same name)."""
    try:
        preset, created = save_preset(
            db.session, current_user.id, json_body(), allow_user=current_user.is_admin
        )
    except FilterError as exc:
        db.session.rollback()
        return error_response(400, str(exc))
    db.session.commit()
    return jsonify({"preset": preset.to_dict()}), 201 if created else 200


@bp.delete("/presets/<int:preset_id>")
@login_required
def remove(preset_id: int):
    if not delete_preset(db.session, current_user.id, preset_id):
        return error_response(404, f"No preset with id {preset_id} is yours.")
    db.session.commit()
    return jsonify({"deleted": preset_id})
