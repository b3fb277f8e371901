"""Health check and the brand logo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, current_app, jsonify, send_file
from flask_login import current_user
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from manager.extensions import db
from manager.models import ScriptProcess

bp = Blueprint("meta", __name__)

LIVE_STATES = ("starting", "running")


def container_engine_status() -> dict:
    """Ping the Docker engine quickly; never raises."""
    try:
        import docker
        from docker.errors import DockerException

        try:
            client = docker.from_env(timeout=2)
            version = client.version().get("Version")
            client.close()
            return {"status": "available", "engine": "docker", "version": version}
        except DockerException as exc:
            return {"status": "unavailable", "engine": "docker", "detail": str(exc)[:200]}
    except ImportError:
        return {"status": "unavailable", "engine": "docker", "detail": "docker SDK not installed"}


@bp.get("/health")
def health():
    """Up or down for anyone (load balancers, probes); the detail for admins only."""
    if not (current_user.is_authenticated and current_user.is_admin):
        try:
            db.session.execute(text("SELECT 1"))
            healthy = True
        except SQLAlchemyError:
            db.session.rollback()
            healthy = False
        return jsonify({"status": "healthy" if healthy else "unhealthy"}), 200 if healthy else 503
    try:
        db.session.execute(text("SELECT 1"))
        database = {"status": "ok", "engine": db.engine.dialect.name}
        live = db.session.execute(
            select(func.count(ScriptProcess.id)).where(ScriptProcess.status.in_(LIVE_STATES))
        ).scalar_one()
        proxied = db.session.execute(
            select(func.count(ScriptProcess.id)).where(
                ScriptProcess.status.in_(LIVE_STATES), ScriptProcess.proxy_session_id.is_not(None)
            )
        ).scalar_one()
    except SQLAlchemyError as exc:
        db.session.rollback()
        database = {"status": "error", "detail": str(exc.__class__.__name__)}
        live = proxied = 0
    healthy = database["status"] == "ok"
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": datetime.now(UTC).isoformat(),
        "database": database,
        "container_engine": container_engine_status(),
        "active_scripts": live,
        "proxy_sessions": {"active": proxied},
    }
    return jsonify(body), 200 if healthy else 503


@bp.get("/brand/logo")
def logo():
    configured = current_app.config.get("SM_BRAND_LOGO")
    if configured and Path(configured).is_file():
        return send_file(Path(configured).resolve(), max_age=3600)
    return send_file(Path(current_app.static_folder or "") / "img" / "logo.svg", max_age=3600)
