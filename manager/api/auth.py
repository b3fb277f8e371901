"""JSON login, logout and the current user."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, session
from flask_login import current_user, login_required, login_user, logout_user

from manager import audit
from manager.api.common import json_body
from manager.auth import logins, throttle
from manager.auth.service import authenticate
from manager.auth.throttle import LoginThrottled, ThrottlePolicy
from manager.errors import error_response
from manager.extensions import db
from manager.i18n import translate
from manager.projects import active_project
from manager.template_globals import current_language

bp = Blueprint("api_auth", __name__, url_prefix="/api/auth")


def throttle_policy() -> ThrottlePolicy:
    config = current_app.config
    return ThrottlePolicy(
        free_attempts=config["SM_LOGIN_MAX_ATTEMPTS"],
        base_delay=config["SM_LOGIN_DELAY_SECONDS"],
        max_delay=config["SM_LOGIN_MAX_DELAY_SECONDS"],
        window=config["SM_LOGIN_WINDOW_SECONDS"],
    )


def client_address() -> str:
    """The client's address: the socket's, or the trusted proxies' X-Forwarded-For."""
    return request.remote_addr or "-"


def throttled_message(retry_after: int) -> str:
    return translate("login.throttled", current_language(), seconds=retry_after)


def attempt_login(username: str, password: str) -> tuple[object | None, str | None, int, int]:
    """Try to log in; returns (user, error message, HTTP status, retry-after seconds).

    Records the outcome; on success the browser's session names a new revocable login.
    """
    address = client_address()
    policy = throttle_policy()
    try:
        user = authenticate(db.session, username, password, address, policy)
    except LoginThrottled as exc:
        audit.record(db.session, "login_throttled", target=username[:50])
        db.session.commit()
        return None, throttled_message(exc.retry_after), 429, exc.retry_after
    throttle.purge(db.session, policy)  # failures past the window no longer count: cheap
    if user is None:
        audit.record(db.session, "login_failed", target=username[:50])
        db.session.commit()
        return None, translate("login.wrong_credentials", current_language()), 401, 0
    # A new login in this browser replaces the one its cookie named, if any.
    logins.end_login(db.session, session.pop(logins.SESSION_KEY, None))
    login_user(user)
    logins.purge(db.session, current_app.permanent_session_lifetime * 2, user_id=user.id)
    session[logins.SESSION_KEY] = logins.start_login(
        db.session, user, address, request.user_agent.string
    )
    audit.record(db.session, "login", user=user)
    db.session.commit()
    return user, None, 200, 0


def end_this_login() -> None:
    """Logout: revoke this browser's login row, then forget the user in the cookie."""
    logins.end_login(db.session, session.pop(logins.SESSION_KEY, None))
    audit.record(db.session, "logout")
    db.session.commit()
    logout_user()


@bp.post("/login")
def login():
    # Exempt from CSRF (no session yet) but JSON only: a cross-site form cannot send it.
    if not request.is_json:
        return error_response(415, 'Send the credentials as JSON: {"username", "password"}.')
    data = json_body()
    user, message, status, retry_after = attempt_login(
        str(data.get("username", "")), str(data.get("password", ""))
    )
    if user is None:
        body, status = error_response(status, message or "Login failed.")
        return body, status, ({"Retry-After": str(retry_after)} if retry_after else {})
    return jsonify({"user": current_user.to_dict()})


@bp.post("/logout")
@login_required
def logout():
    end_this_login()
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
