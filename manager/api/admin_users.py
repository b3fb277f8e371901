"""Admin user management over JSON."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, session
from flask_login import current_user
from sqlalchemy import select

from manager import audit
from manager.api.auth import throttle_policy
from manager.api.common import json_body
from manager.auth import logins, throttle
from manager.auth.passwords import reset_password
from manager.auth.permissions import require_level
from manager.auth.service import AccountError, create_user, deactivate_user, update_user
from manager.errors import error_response
from manager.extensions import db
from manager.models import User

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
    return jsonify({"users": user_rows(users)})


def user_rows(users) -> list[dict]:
    """Users as dicts with ``failed_logins`` (recent, any address) for the admin."""
    failures = throttle.recent_failures(db.session, throttle_policy())
    return [{**u.to_dict(), "failed_logins": failures.get(u.username.lower(), 0)} for u in users]


def _min_password() -> int:
    return int(current_app.config["SM_PASSWORD_MIN_LENGTH"])


@bp.post("")
@require_level("admin")
def create():
    try:
        user = create_user(db.session, json_body(), min_password=_min_password())
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
        changes = update_user(
            db.session,
            user,
            json_body(),
            actor=current_user,
            min_password=_min_password(),
            keep_login=session.get(logins.SESSION_KEY),
        )
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


@bp.post("/<int:user_id>/password")
@require_level("admin")
def reset(user_id: int):
    """Set a user's password ({new_password}): all of that user's logins end at once."""
    user = _user_or_404(user_id)
    new = json_body().get("new_password")
    if not isinstance(new, str):
        return error_response(400, "Send 'new_password' as a string.", field="new_password")
    keep = session.get(logins.SESSION_KEY) if user.id == current_user.id else None
    try:
        ended = reset_password(db.session, user, new, min_length=_min_password(), keep_login=keep)
    except AccountError as exc:
        db.session.rollback()
        return error_response(exc.status, exc.message, field=exc.field)
    audit.record(
        db.session,
        "password_reset",
        target=f"user:{user.username}",
        details={"logins_ended": ended},
        admin=True,
    )
    db.session.commit()
    return jsonify({"status": "reset", "logins_ended": ended})


@bp.post("/<int:user_id>/unlock")
@require_level("admin")
def unlock(user_id: int):
    """Forget a user's failed logins (from every address): no more delays for them."""
    user = _user_or_404(user_id)
    cleared = throttle.forget(db.session, user.username)
    audit.record(
        db.session,
        "login_unlocked",
        target=f"user:{user.username}",
        details={"failures_cleared": cleared},
        admin=True,
    )
    db.session.commit()
    return jsonify({"status": "unlocked", "failures_cleared": cleared})


@bp.post("/<int:user_id>/logout")
@require_level("admin")
def end_logins(user_id: int):
    """End every browser login of a user (the account stays usable)."""
    user = _user_or_404(user_id)
    keep = session.get(logins.SESSION_KEY) if user.id == current_user.id else None
    ended = logins.end_all_logins(db.session, user.id, keep=keep)
    audit.record(
        db.session,
        "logins_ended",
        target=f"user:{user.username}",
        details={"logins_ended": ended},
        admin=True,
    )
    db.session.commit()
    return jsonify({"status": "logged_out", "logins_ended": ended})
