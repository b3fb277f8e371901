"""JSON login, logout and the current user."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required, login_user, logout_user

from manager import audit
from manager.api.common import json_body
from manager.auth.service import LoginLimits, LoginRateLimited, authenticate
from manager.errors import error_response
from manager.extensions import db
from manager.i18n import translate
from manager.projects import active_project
from manager.template_globals import current_language

bp = Blueprint("api_auth", __name__, url_prefix="/api/auth")


def login_limits() -> LoginLimits:
    config = current_app.config
    return LoginLimits(
        config["SM_LOGIN_MAX_ATTEMPTS"],
        config["SM_LOGIN_MAX_ATTEMPTS_PER_ADDRESS"],
        config["SM_LOGIN_WINDOW_SECONDS"],
    )


def attempt_login(username: str, password: str) -> tuple[object | None, str | None, int]:
    """Try to log in; returns (user, error message, HTTP status) and records the outcome."""
    address = request.remote_addr or "-"
    try:
        user = authenticate(db.session, username, password, address, login_limits())
    except LoginRateLimited as exc:
        minutes = max(1, (exc.retry_after + 59) // 60)
        audit.record(db.session, "login_rate_limited", target=username[:50])
        db.session.commit()
        return None, translate("login.rate_limited", current_language(), minutes=minutes), 429
    if user is None:
        audit.record(db.session, "login_failed", target=username[:50])
        db.session.commit()
        return None, translate("login.wrong_credentials", current_language()), 401
    login_user(user)
    audit.record(db.session, "login", user=user)
    db.session.commit()
    return user, None, 200


@bp.post("/login")
def login():
    # Exempt from CSRF (no session yet) but JSON only: a cross-site form cannot send it.
    if not request.is_json:
        return error_response(415, 'Send the credentials as JSON: {"username", "password"}.')
    data = json_body()
    user, message, status = attempt_login(
        str(data.get("username", "")), str(data.get("password", ""))
    )
    if user is None:
        return error_response(status, message or "Login failed.")
    return jsonify({"user": current_user.to_dict()})


@bp.post("/logout")
@login_required
def logout():
    audit.record(db.session, "logout")
    db.session.commit()
    logout_user()
    return jsonify({"status": "logged_out"})


@bp.get("/user")
@login_required
def user():
    data = current_user.to_dict()
    project = active_project(
        db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
    )
    db.session.commit()
    data["active_project"] = project.to_dict() if project else None
    return jsonify({"user": data})


@bp.get("/csrf")
def csrf_token():
    """A CSRF token for cookie-authenticated JSON clients (send it as X-CSRFToken)."""
    from flask_wtf.csrf import generate_csrf

    return jsonify({"csrf_token": generate_csrf(), "header": "X-CSRFToken"})
