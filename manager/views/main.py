"""Dashboard and group pages."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import load_only

from manager import dashboard as dashboard_data
from manager.dashboard import favorite_ids
from manager.extensions import db
from manager.models import LEVELS, Execution, ScriptGroup
from manager.presenters import (
    group_view,
    runnable_counts,
    script_view,
    visible_groups,
    visible_scripts,
)
from manager.projects import active_project
from manager.sessions.pool import current_pool
from manager.tags import TagLimits, all_user_tags, user_tags_by_script
from manager.template_globals import current_language

bp = Blueprint("main", __name__)


@bp.app_context_processor
def inject_project() -> dict:
    if not current_user.is_authenticated:
        return {"active_project": None}
    project = active_project(
        db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
    )
    db.session.commit()
    return {"active_project": project}


@bp.get("/favicon.ico")
def favicon():
    """The brand icon: browsers ask for /favicon.ico whatever the page's <link> says."""
    response = current_app.send_static_file("img/favicon.svg")
    response.cache_control.max_age = 86400
    return response


@bp.get("/")
@login_required
def dashboard():
    language = current_language()
    groups = db.session.execute(select(ScriptGroup).order_by(ScriptGroup.name)).scalars().all()
    counts = runnable_counts(db.session, current_user)  # the cards' counts, no script loaded
    shown = [
        group_view(g, language, current_user, counts.get(g.id, 0))
        for g in visible_groups(list(groups), current_user)
    ]
    from manager.sessions.runtime import runtime

    favorites = [
        script_view(script, language, current_user)
        for script in dashboard_data.favorite_scripts(db.session, current_user)
    ]
    return render_template(
        "dashboard.html",
        groups=shown,
        favorites=favorites,
        recent=dashboard_data.recent_scripts(db.session, current_user),
        system=dashboard_data.system_status(
            db.session, dashboard_data.engine_ping(runtime().backend)
        ),
    )


@bp.get("/groups/<int:group_id>")
@login_required
def group(group_id: int):
    language = current_language()
    row = db.session.get(ScriptGroup, group_id)
    if row is None or row not in visible_groups([row], current_user):
        abort(404, description="No such script group, or it is not available to you.")
    scripts = [script_view(s, language, current_user) for s in visible_scripts(row, current_user)]
    project = active_project(
        db.session, current_user, current_app.config["SM_DEFAULT_PROJECT_NAME"]
    )
    recent_runs = recent_runs_by_script(
        [s["id"] for s in scripts], current_user.id, project.id if project else None
    )
    pool = current_pool()
    if pool is not None:  # the warm pool: this user may run one of these soon
        pool.note_page(db.session, current_user, row, project.id if project else None)
    categories = sorted({s["category"] for s in scripts if s["category"]})
    personalise(scripts)
    tags = sorted({t for s in scripts for t in s["all_tags"]})
    return render_template(
        "script_group.html",
        group=group_view(row, language, current_user),
        scripts=scripts,
        categories=categories,
        tags=tags,
        can_edit=current_user.reaches("developer"),
        can_run=current_user.reaches("operator"),
        levels=LEVELS,
        recent_runs=recent_runs,
        is_admin=current_user.is_admin,
        tag_limits=TagLimits.from_config(current_app.config).to_dict(),
        my_tags=all_user_tags(db.session, current_user.id)
        if current_app.config.get("SM_ENABLE_TAG_SUGGESTIONS", True)
        else [],
    )


def personalise(scripts: list[dict]) -> None:
    """Add my tags (and system + mine, for the tag filter) and my star to each script."""
    mine = user_tags_by_script(db.session, current_user.id)
    starred = favorite_ids(db.session, current_user.id)
    for script in scripts:
        script["user_tags"] = mine.get(script["id"], [])
        script["all_tags"] = list(dict.fromkeys([*script["tags"], *script["user_tags"]]))
        script["favorite"] = script["id"] in starred


def recent_runs_by_script(
    script_ids: list[int], user_id: int, project_id: int | None, per_script: int = 5
) -> dict[int, list[dict]]:
    """My last runs of each script in the active project, newest first."""
    runs: dict[int, list[dict]] = {sid: [] for sid in script_ids}
    if not script_ids:
        return runs
    columns = load_only(
        Execution.execution_uuid, Execution.script_id, Execution.status, Execution.start_time,
        Execution.duration_seconds, Execution.exit_code, Execution.interactive,
        Execution.proxy_url,
    )  # fmt: skip
    for script_id in script_ids:
        # One short read of ix_execution_logs_user_project_script per script: a script run
        # 100,000 times costs no more than one run once.
        rows = db.session.execute(
            select(Execution)
            .options(columns)
            .where(
                Execution.user_id == user_id,
                Execution.project_id == project_id,
                Execution.script_id == script_id,
            )
            .order_by(Execution.id.desc())
            .limit(per_script)
        ).scalars()
        runs[script_id] = [
            {
                "execution_id": execution.execution_uuid,
                "status": execution.status,
                "start_time": execution.start_time.isoformat(timespec="seconds"),
                "duration_seconds": execution.duration_seconds,
                "exit_code": execution.exit_code,
                "interactive": execution.interactive,
                "proxy_url": execution.proxy_url,
            }
            for execution in rows
        ]
    return runs
