"""Login and logout pages, and the user's own account page (password, logins)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from manager import audit
from manager.api.auth import (
    attempt_login,
    client_address,
    end_this_login,
    throttle_policy,
    throttled_message,
)
from manager.auth import logins
from manager.auth.passwords import change_own_password
from manager.auth.service import AccountError
from manager.auth.throttle import LoginThrottled
from manager.extensions import db
from manager.i18n import translate
from manager.template_globals import current_language

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login page is no open redirect."""
    if not target:
        return url_for("main.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.dashboard")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    status = 200
    username = ""
    headers: dict[str, str] = {}
    if request.method == "POST":
        username = request.form.get("username", "")
        user, message, status, retry_after = attempt_login(
            username, request.form.get("password", "")
        )
        if user is not None:
            return redirect(_safe_next(request.args.get("next")))
        flash(message or "Login failed.", "danger")
        if retry_after:
            headers["Retry-After"] = str(retry_after)
    return render_template("login.html", username=username), status, headers


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        end_this_login()
    return redirect(url_for("auth.login"))


def _account_page(error: str | None = None, field: str | None = None, status: int = 200):
    here = session.get(logins.SESSION_KEY)
    rows = [
        logins.to_dict(row, current=row.id == here)
        for row in logins.live_logins(db.session, current_user.id)
    ]
    return (
        render_template(
            "account.html",
            logins=rows,
            min_length=current_app.config["SM_PASSWORD_MIN_LENGTH"],
            error=error,
            error_field=field,
        ),
        status,
    )


@bp.get("/account")
@login_required
def account():
    return _account_page()


@bp.post("/account/password")
@login_required
def change_password():
    """The form version of POST /api/user/password (plus a confirmation field)."""
    form = request.form
    new = form.get("new_password", "")
    if new != form.get("confirm_password", ""):
        message = translate("account.mismatch", current_language())
        return _account_page(message, "confirm_password", 400)
    try:
        ended = change_own_password(
            db.session,
            current_user,
            form.get("current_password", ""),
            new,
            address=client_address(),
            policy=throttle_policy(),
            min_length=current_app.config["SM_PASSWORD_MIN_LENGTH"],
            keep_login=session.get(logins.SESSION_KEY),
        )
    except LoginThrottled as exc:
        db.session.commit()
        body, status = _account_page(throttled_message(exc.retry_after), "current_password", 429)
        return body, status, {"Retry-After": str(exc.retry_after)}
    except AccountError as exc:
        if exc.field == "current_password":
            audit.record(db.session, "password_change_failed")
            db.session.commit()
        else:
            db.session.rollback()
        return _account_page(exc.message, exc.field, exc.status)
    audit.record(db.session, "password_changed", details={"other_logins_ended": ended})
    db.session.commit()
    flash(translate("account.changed", current_language(), count=ended), "success")
    return redirect(url_for("auth.account"))
