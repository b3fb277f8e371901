"""The log viewer pages: my runs, one run (live), my running runs side by side, statistics,
and the admin's system logs and audit table.

The pages are shells around the JSON API (``manager/api/logs.py``) and the ``/logs`` Socket.IO
namespace: they render what is known now, the page scripts (``static/js/logs*.js``) do the rest.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select

from manager.api.logs import run_for_viewer
from manager.auth.permissions import require_level
from manager.extensions import db
from manager.logs.detail import run_detail
from manager.logs.queries import LIVE_STATUSES, STATUSES, FilterError
from manager.logs.stats import storage_usage, user_stats
from manager.logs.system import MAX_TAIL, SYSTEM_FILES, audit_filters, audit_page, system_lines
from manager.models import Execution, Script, User, UserProject

bp = Blueprint("logs", __name__)

STATS_DAYS = (7, 30, 90)
TAIL_CHOICES = (100, 200, 500, 1000, 5000)
CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 1000, 220, 14, 26
KINDS = ("completed", "failed", "other")  # stacked from the bottom up


# ---------------------------------------------------------------------- my logs


@bp.get("/logs")
@login_required
def index():
    """My runs: the table, its filters, search, presets, bulk actions, my storage."""
    return render_template(
        "logs/list.html",
        choices=filter_choices(current_user),
        statuses=STATUSES,
        storage=storage_usage(
            db.session, current_app.config, current_user.id, current_user.username
        ),
    )


@bp.get("/logs/live")
@login_required
def live():
    """My running runs, one tab each, every tab a live view."""
    return render_template("logs/live.html", focus=request.args.get("run", ""))


@bp.get("/logs/stats")
@login_required
def stats():
    """My runs in figures, with the trend of the last ``days`` days as a chart."""
    days = request.args.get("days", type=int)
    days = days if days in STATS_DAYS else 30
    figures = user_stats(db.session, current_app.config, current_user, days=days)
    return render_template(
        "logs/stats.html",
        stats=figures,
        days=days,
        day_choices=STATS_DAYS,
        chart=trend_chart(figures["trend"]),
    )


@bp.get("/logs/<execution_id>")
@login_required
def detail(execution_id: str):
    """One run: header, tabs, live output while it runs; someone else's is 404 (admins: audited)."""
    run = run_for_viewer(execution_id)
    body = run_detail(db.session, run, with_outputs=False)
    return render_template(
        "logs/detail.html",
        run=body,
        group_id=run.script.group_id if run.script else None,
        own=run.execution.user_id == current_user.id,
        live=run.execution.status in LIVE_STATUSES,
    )


def filter_choices(user: User) -> dict[str, Any]:
    """What the list's filters offer: scripts I ran, projects, and (admins) the users."""
    script_name = func.coalesce(Script.display_name, Script.filename)
    scripts = select(Script.id, script_name).order_by(script_name)
    if not user.is_admin:
        ran = select(Execution.script_id).where(Execution.user_id == user.id).distinct()
        scripts = scripts.where(Script.id.in_(ran))
    projects = select(UserProject.id, UserProject.project_name, UserProject.user_id)
    if not user.is_admin:
        projects = projects.where(UserProject.user_id == user.id)
    choices: dict[str, Any] = {
        "scripts": [{"id": i, "name": name} for i, name in db.session.execute(scripts)],
        "projects": [
            {"id": i, "name": name, "user_id": owner}
            for i, name, owner in db.session.execute(projects.order_by(UserProject.project_name))
        ],
        "users": [],
    }
    if user.is_admin:
        rows = db.session.execute(select(User.id, User.username).order_by(User.username))
        choices["users"] = [{"id": i, "name": name} for i, name in rows]
    return choices


def trend_chart(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of runs per day (completed, failed, other stacked) in a fixed SVG coordinate box."""
    count = max(1, len(series))
    peak = max([day["runs"] for day in series] + [1])
    plot = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = CHART_WIDTH / count
    width = max(1.0, slot * 0.7)
    label_every = max(1, count // 8)
    bars = []
    for index, day in enumerate(series):
        other = day["runs"] - day["completed"] - day["failed"]
        x = index * slot + (slot - width) / 2
        bottom = CHART_TOP + plot
        parts = []
        for kind, value in zip(KINDS, (day["completed"], day["failed"], other), strict=True):
            if value > 0:
                height = plot * value / peak
                parts.append(
                    {"kind": kind, "y": round(bottom - height, 1), "height": round(height, 1)}
                )
                bottom -= height
        bars.append(
            {
                **day,
                "x": round(x, 1),
                "width": round(width, 1),
                "parts": parts,
                "label": day["date"][5:] if index % label_every == 0 else None,
                "label_x": round(index * slot + slot / 2, 1),
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": CHART_TOP + plot,
        "peak": peak,
        "peak_y": CHART_TOP,
        "bars": bars,
        "total": sum(day["runs"] for day in series),
    }


# ---------------------------------------------------------------------- admin


@bp.get("/admin/logs/system")
@require_level("admin")
def system():
    """The tail of one of the manager's own log files."""
    name = request.args.get("file", "application")
    lines = request.args.get("lines", type=int) or 200
    lines = min(max(lines, 1), MAX_TAIL)
    error = None
    try:
        body = system_lines(current_app.config["SM_LOG_DIR"], name, lines)
    except FilterError as exc:
        error, name = str(exc), "application"
        body = system_lines(current_app.config["SM_LOG_DIR"], name, lines)
    return render_template(
        "logs/system.html",
        body=body,
        files=list(SYSTEM_FILES),
        lines=lines,
        tail_choices=sorted({*TAIL_CHOICES, lines}),
        error=error,
    )


@bp.get("/admin/logs/audit")
@require_level("admin")
def audit():
    """The audit table, newest first, with its filters."""
    error = None
    try:
        filters = audit_filters(request.args)
    except FilterError as exc:
        error, filters = str(exc), audit_filters({})
    page = audit_page(db.session, filters)
    return render_template(
        "logs/audit.html",
        page=page,
        args={k: v for k, v in request.args.items() if k != "page" and v},
        error=error,
    )
