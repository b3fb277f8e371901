"""Login and logout pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user

from manager import audit
from manager.api.auth import attempt_login
from manager.extensions import db

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
    if request.method == "POST":
        username = request.form.get("username", "")
        user, message, status = attempt_login(username, request.form.get("password", ""))
        if user is not None:
            return redirect(_safe_next(request.args.get("next")))
        flash(message or "Login failed.", "danger")
    return render_template("login.html", username=username), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        audit.record(db.session, "logout")
        db.session.commit()
        logout_user()
    return redirect(url_for("auth.login"))
