"""Admin log views over JSON: everyone's runs, a user's runs, system logs, the audit table.

Every look at other users' logs and every deletion is audited.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.api.logs import arg_int, filters_from_request
from manager.auth.permissions import require_level
from manager.errors import error_response
from manager.extensions import db
from manager.logs import locks
from manager.logs.export import MIME, table_export
from manager.logs.queries import (
    LIVE_STATUSES,
    FilterError,
    LogFilters,
    list_executions,
    moment_param,
    search_executions,
)
from manager.logs.retention import JOB_NAME, delete_executions, retention_days, run_retention
from manager.logs.system import (
    AUDIT_COLUMNS,
    MAX_TAIL,
    SYSTEM_COLUMNS,
    SYSTEM_FILES,
    audit_filters,
    audit_page,
    audit_rows,
    system_lines,
    system_rows,
)
from manager.models import LEVELS, Execution, User

bp = Blueprint("api_admin_logs", __name__, url_prefix="/api/admin/logs")

EXPORT_FORMATS = ("json", "csv", "txt")
MAX_EXPORT_ROWS = 100_000


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, description=f"No user with id {user_id}.")
    return user


def _listed(filters: LogFilters, target: str):
    page = (
        search_executions(db.session, filters)
        if filters.query is not None
        else list_executions(db.session, filters)
    )
    audit.record(
        db.session, "logs_listed", target=target, details={"filters": filters.echo()}, admin=True
    )
    db.session.commit()
    return jsonify(page.to_dict(filters))


@bp.get("/execution")
@require_level("admin")
def all_executions():
    """Every user's runs: the user list's filters plus ``user_id`` and ``sort=user``."""
    return _listed(filters_from_request(allow_user=True), "logs:all")


@bp.get("/user/<int:user_id>")
@require_level("admin")
def user_executions(user_id: int):
    user = _user_or_404(user_id)
    filters = filters_from_request(allow_user=True)
    filters.user_id = user.id
    return _listed(filters, f"user:{user.username}")


@bp.delete("/user/<int:user_id>")
@require_level("admin")
def delete_user_logs(user_id: int):
    """Delete every ended run of a user (running ones are kept and counted)."""
    user = _user_or_404(user_id)
    ids = list(
        db.session.execute(
            select(Execution.id).where(
                Execution.user_id == user.id, Execution.status.not_in(LIVE_STATUSES)
            )
        ).scalars()
    )
    report = delete_executions(db.session, current_app.config["SM_LOG_DIR"], ids)
    live = db.session.execute(
        select(Execution.id).where(
            Execution.user_id == user.id, Execution.status.in_(LIVE_STATUSES)
        )
    ).all()
    audit.record(
        db.session,
        "user_logs_deleted",
        target=f"user:{user.username}",
        details={"deleted": report.deleted, "files_removed": report.files_removed},
        admin=True,
    )
    db.session.commit()
    body = report.to_dict(with_ids=False)
    body["kept_running"] = len(live)
    return jsonify(body)


@bp.get("/system")
@require_level("admin")
def system():
    """The tail of a system log: ``file=application|error|access|...&lines=N``."""
    lines = arg_int("lines", 0, MAX_TAIL)
    try:
        body = system_lines(
            current_app.config["SM_LOG_DIR"],
            request.args.get("file", "application"),
            200 if lines is None else lines,
        )
    except FilterError as exc:
        return error_response(400, str(exc))
    return jsonify(body)


@bp.get("/audit")
@require_level("admin")
def audit_log():
    """The audit table, newest first: filters user_id, username, action, target, dates."""
    try:
        filters = audit_filters(request.args)
    except FilterError as exc:
        return error_response(400, str(exc))
    return jsonify(audit_page(db.session, filters))


@bp.post("/export")
@require_level("admin")
def export():
    """``{"source": "audit"|<system file>, "format": "json"|"csv"|"txt", ...}`` as a file."""
    data = json_body()
    source = data.get("source", "audit")
    fmt = data.get("format", "json")
    if source != "audit" and source not in SYSTEM_FILES:
        return error_response(400, f"source must be audit or one of: {', '.join(SYSTEM_FILES)}.")
    if fmt not in EXPORT_FORMATS:
        return error_response(400, f"format must be one of: {', '.join(EXPORT_FORMATS)}.")
    args = {k: v for k, v in data.items() if k not in ("source", "format", "lines")}
    try:
        limit = data.get("lines", MAX_EXPORT_ROWS)
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= MAX_EXPORT_ROWS
        ):
            raise FilterError(f"lines must be between 1 and {MAX_EXPORT_ROWS}.")
        columns: tuple[str, ...]
        if source == "audit":
            rows = audit_rows(db.session, audit_filters(args), limit)
            columns = AUDIT_COLUMNS
        else:
            rows = system_rows(
                current_app.config["SM_LOG_DIR"],
                source,
                limit,
                moment_param(args, "date_from", end_of_day=False),
                moment_param(args, "date_to", end_of_day=True),
            )
            columns = SYSTEM_COLUMNS
    except FilterError as exc:
        return error_response(400, str(exc))
    audit.record(
        db.session,
        "logs_exported",
        target=f"logs:{source}",
        details={"format": fmt, "rows": len(rows)},
        admin=True,
    )
    db.session.commit()
    response = Response(table_export(rows, columns, fmt), mimetype=MIME[fmt])
    filename = f"{source}_{date.today().isoformat()}.{fmt}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/retention")
@require_level("admin")
def retention_state():
    """Days kept by role and the daily job's last run."""
    config = current_app.config
    return jsonify(
        {
            "retention_days": {level: retention_days(config, level) for level in LEVELS},
            "schedule": config.get("SM_RETENTION_TIME", "03:00"),
            "job": locks.state(db.engine, JOB_NAME),
        }
    )


@bp.post("/retention/run")
@require_level("admin")
def retention_run():
    """Run the retention job now for everyone (409 while another process runs it)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    report = run_retention(app, force=True)
    if report is None:
        return error_response(409, "The retention job is running in another process right now.")
    audit.record(
        db.session,
        "logs_retention_run",
        target="logs:all",
        details=report.to_dict(with_ids=False),
        admin=True,
    )
    db.session.commit()
    return jsonify(report.to_dict(with_ids=False) | {"by": current_user.username})
