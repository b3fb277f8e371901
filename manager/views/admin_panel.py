"""Admin panel pages: backups, the permission matrix, the effective configuration, data usage;
the manual discovery button; the dashboard's health indicators and environment states."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from manager import audit
from manager.admintools import health
from manager.admintools.effective_config import effective_configuration
from manager.admintools.permissions import matrix
from manager.admintools.usage import data_usage
from manager.auth.permissions import require_level
from manager.backup import scheduler
from manager.backup.service import BackupSettings, list_backups
from manager.extensions import db
from manager.i18n import translate
from manager.models import LEVELS, CondaEnvironment, ScriptGroup
from manager.template_globals import current_language

bp = Blueprint("admin_panel", __name__, url_prefix="/admin")


@bp.get("/backups")
@require_level("admin")
def backups():
    settings = BackupSettings.from_config(current_app.config)
    return render_template(
        "admin/backups.html",
        backups=list_backups(settings),
        status=scheduler.status(db.engine, settings),
    )


@bp.get("/permissions")
@require_level("admin")
def permissions():
    groups = db.session.scalars(select(ScriptGroup)).all()
    return render_template("admin/permissions.html", rows=matrix(list(groups)), levels=LEVELS)


@bp.get("/config")
@require_level("admin")
def configuration():
    return render_template("admin/config.html", rows=effective_configuration(current_app.config))


@bp.get("/usage")
@require_level("admin")
def usage():
    rows = data_usage(db.session, current_app.config)
    return render_template("admin/usage.html", rows=rows)


@bp.post("/discover")
@require_level("admin")
def discover():
    """Scan the script groups now (the button on the dashboard and the admin pages)."""
    from manager.catalog_app import run_discovery

    report = run_discovery(current_app._get_current_object())  # type: ignore[attr-defined]
    audit.record(db.session, "discovery_run", target="catalog", admin=True)
    db.session.commit()
    summary = report.summary() if hasattr(report, "summary") else ""
    flash(translate("admin.discovery_done", current_language(), summary=summary), "success")
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("main.dashboard")
    return redirect(target)


@bp.app_template_global()
def health_indicators() -> list[dict[str, Any]]:
    """The dashboard's health indicators (admins only; computed once a request)."""
    if not (current_user.is_authenticated and current_user.is_admin):
        return []
    if "sm_health" not in g:
        from manager.sessions.runtime import runtime

        ping = runtime().backend.ping()
        found = health.indicators(db.session, db.engine, current_app.config, ping)
        g.sm_health = [indicator.to_dict() for indicator in found]
    return list(g.sm_health)


@bp.app_template_global()
def environment_states() -> dict[str, str]:
    """Image state of each environment by name (built, missing, building, ...)."""
    if "sm_env_states" not in g:
        rows = db.session.execute(select(CondaEnvironment.name, CondaEnvironment.image_state))
        g.sm_env_states = {name: state or "missing" for name, state in rows}
    return dict(g.sm_env_states)
