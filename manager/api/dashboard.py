"""Favourites, recently run scripts and system status for the dashboard, over JSON."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user, login_required

from manager import audit, dashboard
from manager.extensions import db
from manager.presenters import visible_script_or_404
from manager.sessions.runtime import runtime

bp = Blueprint("api_dashboard", __name__, url_prefix="/api")


def _star(script_id: int, starred: bool):
    script = visible_script_or_404(script_id)
    if dashboard.set_favorite(db.session, current_user.id, script.id, starred):
        audit.record(
            db.session,
            "script_starred" if starred else "script_unstarred",
            target=f"script:{script.id}",
        )
    db.session.commit()
    return jsonify({"script_id": script.id, "favorite": starred})


@bp.put("/scripts/<int:script_id>/favorite")
@login_required
def star(script_id: int):
    return _star(script_id, True)


@bp.delete("/scripts/<int:script_id>/favorite")
@login_required
def unstar(script_id: int):
    return _star(script_id, False)


@bp.get("/user/favorites")
@login_required
def favorites():
    scripts = dashboard.favorite_scripts(db.session, current_user)
    return jsonify(
        {
            "favorites": [
                {"script_id": s.id, "group_id": s.group_id, "filename": s.filename,
                 "name": s.display_name or s.filename}
                for s in scripts
            ]
        }
    )  # fmt: skip


@bp.get("/user/recent-scripts")
@login_required
def recent():
    rows = dashboard.recent_scripts(db.session, current_user)
    return jsonify(
        {
            "recent": [
                {
                    "script_id": row["script"].id,
                    "group_id": row["script"].group_id,
                    "name": row["script"].display_name or row["script"].filename,
                    "execution_id": row["execution_id"],
                    "status": row["status"],
                    "start_time": row["start_time"].isoformat() if row["start_time"] else None,
                    "scheduled": row["scheduled"],
                }
                for row in rows
            ]
        }
    )


@bp.get("/system/status")
@login_required
def system_status():
    """Database, container engine and images: up or not (details stay in /health for admins)."""
    return jsonify(dashboard.system_status(db.session, dashboard.engine_ping(runtime().backend)))
