"""System backup API (admin only): make, list, delete, restore backups; their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.backup import restore, scheduler
from manager.backup.service import BackupError, BackupSettings, delete_backup, list_backups
from manager.errors import error_response
from manager.extensions import db
from manager.models import AuditEvent

bp = Blueprint("api_backup", __name__, url_prefix="/api/system")


def _settings() -> BackupSettings:
    return BackupSettings.from_config(current_app.config)


def _failed(exc: BackupError):
    db.session.rollback()
    return error_response(exc.status, exc.message, **exc.extra)


def _audit(action: str, target: str, details: dict[str, Any]) -> None:
    audit.record(db.session, action, target=target, details=details, admin=True)
    db.session.commit()


@bp.post("/backup")
@require_level("admin")
def create():
    """Back up now (201); 409 while another backup runs, 507 past the size maximum."""
    db.session.commit()  # no transaction of ours stays open while the dump runs
    try:
        result = scheduler.run_backup(db.engine, _settings(), reason="manual")
    except BackupError as exc:
        _audit("backup_failed", "system:backup", {"reason": exc.message})
        return _failed(exc)
    if result is None:
        return error_response(409, "A backup is running already; try again when it is done.")
    _audit("backup_created", f"backup:{result.backup.file}", {"size": result.backup.size_bytes})
    return jsonify(result.to_dict()), 201


@bp.get("/backups")
@require_level("admin")
def backups():
    found = list_backups(_settings())
    return jsonify({"backups": [b.to_dict() for b in found], "total": len(found)})


@bp.delete("/backups/<backup_date>")
@require_level("admin")
def delete(backup_date: str):
    try:
        removed = delete_backup(_settings(), backup_date)
    except BackupError as exc:
        return _failed(exc)
    _audit("backup_deleted", f"backup:{backup_date}", {"files": removed})
    return jsonify({"deleted": backup_date, "files": removed})


@bp.get("/backup-status")
@require_level("admin")
def backup_status():
    return jsonify(scheduler.status(db.engine, _settings()))


@bp.post("/restore")
@require_level("admin")
def restore_backup():
    """Restore ``backup`` into ``target`` (an empty folder) or, without it, in place.

    In place needs ``"confirm": true``: it replaces this running manager's database.
    """
    data = json_body()
    ref = data.get("backup")
    target = data.get("target")
    if not isinstance(ref, str) or not ref.strip():
        return error_response(400, 'Name the backup to restore: "backup": "YYYY-MM-DD".')
    if target is not None and (not isinstance(target, str) or not target.strip()):
        return error_response(400, '"target" must be a folder path (or left out: in place).')
    settings = _settings()
    details = {"backup": ref, "target": target or "in place"}
    if target:
        try:
            report = restore.restore_into_folder(settings, ref, Path(target))
        except BackupError as exc:
            return _failed(exc)
        _audit("backup_restored", f"backup:{report.backup}", details)
        return jsonify(report.to_dict())
    who = current_user.username
    db.session.commit()  # our own open transaction would block the database restore
    try:
        report = restore.restore_in_place(
            settings, ref, confirm=data.get("confirm") is True, live=True, engine=db.engine
        )
    except BackupError as exc:
        return _failed(exc)
    # The restored database may not know this admin (or by another id): record by name only.
    db.session.rollback()
    db.session.add(
        AuditEvent(
            username=who,
            action="backup_restored",
            target=f"backup:{report.backup}",
            details=details,
            address=request.remote_addr,
            is_admin_action=True,
        )
    )
    db.session.commit()
    return jsonify(report.to_dict())


@bp.post("/discover")
@require_level("admin")
def discover():
    """Scan the script groups now; the report says what was added, updated or deactivated."""
    from manager.catalog_app import run_discovery

    report = run_discovery(current_app._get_current_object())  # type: ignore[attr-defined]
    _audit("discovery_run", "catalog", {})
    summary = report.summary() if hasattr(report, "summary") else str(report)
    return jsonify({"summary": summary})
