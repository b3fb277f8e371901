"""The file browser: the active project's workspace in one group."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from manager.extensions import db
from manager.i18n import localized
from manager.models import ScriptGroup
from manager.presenters import visible_groups
from manager.projects import active_project
from manager.template_globals import current_language

bp = Blueprint("files", __name__)


@bp.get("/files")
@login_required
def browser():
    """Pick a group (``?group=<id>``, else the first one); the project is the active one."""
    groups = visible_groups(
        list(db.session.execute(select(ScriptGroup).order_by(ScriptGroup.name)).scalars()),
        current_user,
    )
    project = active_project(
        db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
    )
    db.session.commit()
    chosen = request.args.get("group", type=int)
    group = next((g for g in groups if g.id == chosen), groups[0] if groups else None)
    language = current_language()
    return render_template(
        "files.html",
        groups=[
            {"id": g.id, "name": localized(g.name, language) or g.directory_path} for g in groups
        ],
        group=group,
        project=project,
        writable=current_user.reaches("operator"),
    )
