"""Admin user management over JSON."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify
from flask_login import current_user
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.auth.service import AccountError, create_user, deactivate_user, update_user
from manager.errors import error_response
from manager.extensions import db
from manager.models import User, UserProject

bp = Blueprint("api_admin_users", __name__, url_prefix="/api/admin/users")


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, description=f"No user with id {user_id}.")
    return user


@bp.get("")
@require_level("admin")
def list_users():
    users = db.session.execute(select(User).order_by(User.username)).scalars()
    return jsonify({"users": [u.to_dict() for u in users]})


@bp.post("")
@require_level("admin")
def create():
    try:
        user = create_user(db.session, json_body())
    except AccountError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message, field=exc.field)
    audit.record(
        db.session,
        "user_created",
        target=f"user:{user.username}",
        details={"user_level": user.user_level},
        admin=True,
    )
    db.session.commit()
    return jsonify({"user": user.to_dict()}), 201


@bp.put("/<int:user_id>")
@require_level("admin")
def update(user_id: int):
    user = _user_or_404(user_id)
    try:
        changes = update_user(db.session, user, json_body(), actor=current_user)
    except AccountError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message, field=exc.field)
    audit.record(
        db.session, "user_updated", target=f"user:{user.username}", details=changes, admin=True
    )
    db.session.commit()
    return jsonify({"user": user.to_dict()})


@bp.delete("/<int:user_id>")
@require_level("admin")
def deactivate(user_id: int):
    """Deactivate: the account can no longer log in; its runs and logs stay."""
    user = _user_or_404(user_id)
    try:
        deactivate_user(db.session, user, actor=current_user)
    except AccountError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message, field=exc.field)
    audit.record(db.session, "user_deactivated", target=f"user:{user.username}", admin=True)
    db.session.commit()
    return jsonify({"user": user.to_dict(), "note": "Deactivated; history kept."})


@bp.get("/<int:user_id>/projects")
@require_level("admin")
def projects(user_id: int):
    user = _user_or_404(user_id)
    rows = db.session.execute(
        select(UserProject).where(UserProject.user_id == user.id).order_by(UserProject.id)
    ).scalars()
    return jsonify({"projects": [p.to_dict() for p in rows]})
