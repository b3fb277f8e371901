"""Run scripts and manage their sessions over JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.errors import error_response
from manager.extensions import db
from manager.models import Execution, Script, ScriptProcess, User
from manager.presenters import visible_script_or_404
from manager.proxy.links import public_proxy_url, session_entry_url
from manager.sessions.runtime import runtime
from manager.sessions.service import LIVE_STATES, SessionError

bp = Blueprint("api_sessions", __name__, url_prefix="/api")


def execution_view(execution: Execution, process: ScriptProcess | None = None) -> dict[str, Any]:
    return {
        "execution_id": execution.execution_uuid,
        "script_id": execution.script_id,
        "project_id": execution.project_id,
        "user_id": execution.user_id,
        "status": execution.status,
        "interactive": execution.interactive,
        "proxy_url": public_proxy_url(execution.proxy_url) if execution.interactive else None,
        "start_time": execution.start_time.isoformat() if execution.start_time else None,
        "end_time": execution.end_time.isoformat() if execution.end_time else None,
        "duration_seconds": execution.duration_seconds,
        "exit_code": execution.exit_code,
        "oom_killed": execution.oom_killed,
        "timed_out": execution.timed_out,
        "log_truncated": execution.log_truncated,
        "image": execution.image,
        "limits": execution.limits,
        "parameters": execution.parameters,
        "last_activity": (
            process.last_ping.isoformat() if process is not None and process.last_ping else None
        ),
    }


def _whole(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        abort(400, description=f"{name} must be a whole number, not {value!r}.")


def _session_error(exc: SessionError):
    extra = dict(exc.extra)
    if exc.running is not None:
        extra["running"] = execution_view(*exc.running)
    return error_response(exc.status, exc.message, **extra)


def _start(script: Script, data: dict[str, Any]):
    service = runtime().service
    try:
        started = service.execute(
            db.session,
            current_user,
            script,
            data.get("parameters"),
            data.get("project_id"),
            on_conflict=data.get("on_conflict"),
        )
    except SessionError as exc:
        db.session.rollback()
        if exc.status != 400 and exc.running is None:  # a conflict asks, it refuses nothing
            audit.record(
                db.session,
                "script_run_refused",
                target=f"script:{script.id}",
                details={"status": exc.status, "reason": exc.message},
            )
            db.session.commit()
        return _session_error(exc)
    execution = started.execution
    if not started.reused:
        audit.record(
            db.session,
            "script_executed",
            target=f"script:{script.id}",
            details={"execution_id": execution.execution_uuid, "project_id": execution.project_id},
        )
        db.session.commit()
    body = execution_view(execution, started.process)
    body["reused"] = started.reused
    if execution.interactive and execution.status in LIVE_STATES:
        # The owner opens it next: a ticket into its host now saves two redirects.
        body["enter_url"] = session_entry_url(
            execution.proxy_url, execution.execution_uuid, current_user
        )
    return jsonify(body), 200 if started.reused else 201


@bp.post("/scripts/<int:script_id>/execute")
@login_required
def execute(script_id: int):
    return _start(visible_script_or_404(script_id), json_body() if request.data else {})


@bp.post("/scripts/<int:script_id>/proxy-access")
@login_required
def proxy_access(script_id: int):
    """Open (or reuse) the interactive session of this script in a project."""
    script = visible_script_or_404(script_id)
    return _start(script, json_body() if request.data else {})


def _my_executions(script: Script, project_id: Any, live_only: bool = False) -> list[Execution]:
    query = select(Execution).where(
        Execution.script_id == script.id, Execution.user_id == current_user.id
    )
    if project_id:
        query = query.where(Execution.project_id == _whole(project_id, "project_id"))
    if live_only:
        query = query.where(Execution.status.in_(LIVE_STATES))
    return list(db.session.execute(query.order_by(Execution.id.desc()).limit(20)).scalars())


def _execution_for_me(execution_id: str) -> Execution:
    execution = db.session.execute(
        select(Execution).where(Execution.execution_uuid == execution_id)
    ).scalar()
    if execution is None or not (execution.user_id == current_user.id or current_user.is_admin):
        abort(404, description=f"No run with id {execution_id} is yours.")
    return execution


@bp.get("/scripts/<int:script_id>/status")
@login_required
def status(script_id: int):
    script = visible_script_or_404(script_id)
    if request.args.get("execution_id"):
        execution = _execution_for_me(request.args["execution_id"])
        return jsonify(
            execution_view(execution, runtime().service.process_for(db.session, execution))
        )
    runs = _my_executions(script, request.args.get("project_id"))
    return jsonify(
        {
            "script_id": script.id,
            "running": [execution_view(e) for e in runs if e.status in LIVE_STATES],
            "recent": [execution_view(e) for e in runs],
        }
    )


@bp.get("/executions/<execution_id>")
@login_required
def execution_status(execution_id: str):
    execution = _execution_for_me(execution_id)
    return jsonify(execution_view(execution, runtime().service.process_for(db.session, execution)))


def _stop_processes(processes: list[ScriptProcess]) -> list[str]:
    service = runtime().service
    stopped = []
    for process in processes:
        execution = db.session.get(Execution, process.execution_id)
        service.stop(db.session, process, reason="user")
        if execution is not None:
            stopped.append(execution.execution_uuid)
            audit.record(
                db.session, "session_stopped", target=f"execution:{execution.execution_uuid}"
            )
    db.session.commit()
    return stopped


def _my_live(script: Script, data: dict[str, Any], interactive_only: bool) -> list[ScriptProcess]:
    if data.get("execution_id"):
        execution = _execution_for_me(str(data["execution_id"]))
        process = runtime().service.process_for(db.session, execution)
        return [process] if process is not None and process.status in LIVE_STATES else []
    query = select(ScriptProcess).where(
        ScriptProcess.script_id == script.id,
        ScriptProcess.user_id == current_user.id,
        ScriptProcess.status.in_(LIVE_STATES),
    )
    if data.get("project_id"):
        query = query.where(ScriptProcess.project_id == _whole(data["project_id"], "project_id"))
    if interactive_only:
        query = query.where(ScriptProcess.interactive.is_(True))
    return list(db.session.execute(query).scalars())


@bp.post("/scripts/<int:script_id>/stop")
@login_required
def stop(script_id: int):
    script = visible_script_or_404(script_id)
    data = json_body() if request.data else {}
    stopped = _stop_processes(_my_live(script, data, interactive_only=False))
    if not stopped:
        return error_response(404, "Nothing of this script is running for you.")
    return jsonify({"stopped": stopped})


@bp.post("/scripts/<int:script_id>/proxy-cleanup")
@login_required
def proxy_cleanup(script_id: int):
    script = visible_script_or_404(script_id)
    data = json_body() if request.data else {}
    return jsonify({"stopped": _stop_processes(_my_live(script, data, interactive_only=True))})


def _interactive_view(script: Script) -> dict[str, Any]:
    project = request.args.get("project_id")
    service = runtime().service
    from manager.projects import active_project

    if project:
        project_id = _whole(project, "project_id")
    else:
        active = active_project(db.session, current_user, service.config.default_project)
        assert active is not None  # created on demand
        project_id = active.id
    process = service.find_interactive(db.session, current_user.id, script.id, project_id)
    if process is None:
        return {
            "script_id": script.id,
            "project_id": project_id,
            "status": "none",
            "proxy_url": None,
        }
    execution = db.session.get(Execution, process.execution_id)
    return {
        "script_id": script.id,
        "project_id": project_id,
        "status": process.status,
        "proxy_url": public_proxy_url(execution.proxy_url) if execution else None,
        "execution_id": execution.execution_uuid if execution else None,
    }


@bp.get("/scripts/<int:script_id>/proxy-status")
@login_required
def proxy_status(script_id: int):
    return jsonify(_interactive_view(visible_script_or_404(script_id)))


@bp.get("/scripts/<int:script_id>/proxy-url")
@login_required
def proxy_url(script_id: int):
    view = _interactive_view(visible_script_or_404(script_id))
    if view["status"] not in ("running", "starting"):
        return error_response(
            404,
            "This script has no open session in this project. Open it first (POST proxy-access).",
        )
    return jsonify(view)


def _sessions_view(interactive_only: bool):
    query = (
        select(ScriptProcess, Execution, Script, User)
        .join(Execution, Execution.id == ScriptProcess.execution_id)
        .join(Script, Script.id == ScriptProcess.script_id)
        .join(User, User.id == ScriptProcess.user_id)
        .where(ScriptProcess.status.in_(LIVE_STATES))
    )
    if interactive_only:
        query = query.where(ScriptProcess.interactive.is_(True))
    everyone = current_user.is_admin and request.args.get("all") in ("1", "true")
    if not everyone:
        query = query.where(ScriptProcess.user_id == current_user.id)
    rows = db.session.execute(query.order_by(ScriptProcess.id)).all()
    return [
        {
            **execution_view(execution, process),
            "script_name": script.display_name or script.filename,
            "username": user.username,
            "process_status": process.status,
        }
        for process, execution, script, user in rows
    ]


@bp.get("/active-proxies")
@login_required
def active_proxies():
    return jsonify({"sessions": _sessions_view(interactive_only=True)})


@bp.get("/sessions")
@login_required
def sessions():
    """My live sessions (admins: ``?all=1`` for everyone's)."""
    return jsonify({"sessions": _sessions_view(interactive_only=False)})


@bp.post("/sessions/<execution_id>/stop")
@login_required
def stop_session(execution_id: str):
    execution = _execution_for_me(execution_id)
    process = runtime().service.process_for(db.session, execution)
    if process is None or process.status not in LIVE_STATES:
        return error_response(409, "This run is not running any more.")
    return jsonify({"stopped": _stop_processes([process])})


@bp.post("/admin/sessions/<execution_id>/kill")
@require_level("admin")
def kill_session(execution_id: str):
    execution = _execution_for_me(execution_id)
    process = runtime().service.process_for(db.session, execution)
    if process is None or process.status not in LIVE_STATES:
        return error_response(409, "This run is not running any more.")
    runtime().service.stop(db.session, process, reason="user", now=True)
    audit.record(db.session, "session_killed", target=f"execution:{execution_id}", admin=True)
    db.session.commit()
    return jsonify({"stopped": [execution_id]})
