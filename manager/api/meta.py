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


def redis_status(url: str) -> dict:
    """Ping the Redis of several replicas, when one is configured; never raises."""
    if not url:
        return {"status": "not configured"}
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
        return {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - any failure is "unavailable", with its reason
        return {"status": "unavailable", "detail": str(exc)[:200]}


def image_status() -> dict:
    """Environments and the state of their images, from the database."""
    from manager.models import CondaEnvironment

    rows = db.session.execute(select(CondaEnvironment.name, CondaEnvironment.image_state)).all()
    states = {str(name): state or "unknown" for name, state in rows}
    missing = sorted(name for name, state in states.items() if state != "built")
    return {"status": "ok" if not missing else "incomplete", "environments": states}


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
        "redis": redis_status(current_app.config.get("SM_REDIS_URL") or ""),
        "images": image_status(),
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
