"""Admin pages."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import select

from manager.auth.permissions import require_level
from manager.extensions import db
from manager.models import LEVELS, User

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@require_level("admin")
def users():
    from manager.api.admin_users import user_rows

    rows = db.session.execute(select(User).order_by(User.username)).scalars().all()
    return render_template(
        "admin/users.html",
        users=user_rows(rows),
        levels=LEVELS,
        min_password=current_app.config["SM_PASSWORD_MIN_LENGTH"],
    )


@bp.get("/environments")
@require_level("admin")
def environments():
    """Environment specs, their image state, and a build button (progress via the API)."""
    return render_template("admin/environments.html")


@bp.get("/sessions")
@require_level("admin")
def sessions():
    """Every live session of every user, with a stop button."""
    return render_template("admin/sessions.html")
