"""Environments (conda-envs specs and their images) and per-group settings over JSON."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify
from flask_login import current_user, login_required
from sqlalchemy import select

from manager import audit
from manager.api.common import json_body
from manager.auth.permissions import require_level
from manager.catalog.discovery import update_group_metadata
from manager.catalog.errors import MetadataError
from manager.errors import error_response
from manager.extensions import db
from manager.models import CondaEnvironment, ScriptGroup
from manager.presenters import visible_groups
from manager.sessions.environments import Build
from manager.sessions.limits import parse_limits
from manager.sessions.pool import PoolSizeError, current_pool, parse_pool_size
from manager.sessions.runtime import runtime

bp = Blueprint("api_environments", __name__, url_prefix="/api")


def env_view(row: CondaEnvironment, build: Build | None = None) -> dict:
    return {
        "name": row.name,
        "spec": f"conda-envs/{row.name}.yml",
        "python_version": row.python_version,
        "image": row.image_tag,
        "image_state": row.image_state,
        "image_error": row.image_error,
        "is_available": row.is_available,
        "last_verified": row.last_verified.isoformat() if row.last_verified else None,
        "build": {"state": build.state, "lines": build.lines[-50:], "error": build.error}
        if build
        else None,
    }


def _refreshed() -> list[CondaEnvironment]:
    rows = runtime().environments.refresh(db.session)
    db.session.commit()
    return rows


@bp.get("/conda/environments")
@login_required
def environments():
    builds = runtime().environments.builds
    return jsonify(
        {
            "environments": [env_view(r, builds.get(r.name)) for r in _refreshed()],
            "base_image": runtime().environments.paths.base_image,
        }
    )


@bp.post("/conda/refresh")
@require_level("developer")
def refresh():
    rows = _refreshed()
    audit.record(db.session, "environments_refreshed")
    db.session.commit()
    return jsonify({"environments": [env_view(r) for r in rows]})


def _env_or_404(name: str) -> CondaEnvironment:
    _refreshed()
    row = db.session.execute(select(CondaEnvironment).where(CondaEnvironment.name == name)).scalar()
    if row is None or row.image_state == "no spec":
        abort(404, description=f"There is no environment {name!r} (no conda-envs/{name}.yml).")
    return row


@bp.get("/conda/environments/<name>/info")
@login_required
def info(name: str):
    row = _env_or_404(name)
    envs = runtime().environments
    build = envs.builds.get(name)
    body = env_view(row, build)
    body["spec_text"] = (envs.paths.envs_dir / f"{name}.yml").read_text(encoding="utf-8")
    if row.image_state == "built" and not row.packages:
        from manager.sessions.environments import docker_client

        client = docker_client()
        if client is not None and row.image_tag:
            row.packages = envs.packages(client, row.image_tag)
            db.session.commit()
    body["packages"] = row.packages or []
    python = next((p["version"] for p in body["packages"] if p["name"] == "python"), None)
    body["python_version"] = python or row.python_version
    body["groups"] = [
        g.directory_path
        for g in db.session.execute(select(ScriptGroup)).scalars()
        if (g.conda_environment or "base") == name
    ]
    return jsonify(body)


@bp.post("/conda/environments/<name>/build")
@require_level("admin")
def build(name: str):
    _env_or_404(name)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def done(result: Build) -> None:
        with app.app_context():
            row = db.session.execute(
                select(CondaEnvironment).where(CondaEnvironment.name == name)
            ).scalar()
            if row is not None:
                row.image_state = result.state
                row.image_error = result.error
                row.packages = result.packages
            db.session.commit()
            db.session.remove()

    started = runtime().environments.build(name, on_done=done)
    audit.record(db.session, "environment_build", target=f"env:{name}", admin=True)
    db.session.commit()
    return jsonify({"name": name, "state": started.state, "lines": started.lines[-50:]}), 202


def _group_or_404(group_id: int) -> ScriptGroup:
    group = db.session.get(ScriptGroup, group_id)
    if group is None:
        abort(404, description=f"No script group with id {group_id}.")
    return group


# Developers may pick a group's environment too (the seed's "admin/developer"); audited.
@bp.post("/script-groups/<int:group_id>/conda")
@require_level("developer")
def set_group_environment(group_id: int):
    group = _group_or_404(group_id)
    if not visible_groups([group], current_user):
        abort(404, description=f"No script group with id {group_id}.")
    before = group.conda_environment
    name = str(json_body().get("environment") or json_body().get("conda_environment") or "")
    if name not in runtime().environments.spec_names():
        return error_response(
            400,
            f"There is no environment {name!r}; choose one of: "
            f"{', '.join(runtime().environments.spec_names())}.",
            field="environment",
        )
    try:
        update_group_metadata(db.session, group, {"conda_environment": name})
    except MetadataError as exc:
        db.session.rollback()
        return error_response(400, exc.message, field=exc.field)
    audit.record(
        db.session,
        "group_environment_set",
        target=f"group:{group.directory_path}",
        details={"environment": name, "before": before, "after": group.conda_environment},
        admin=current_user.is_admin,
    )
    db.session.commit()
    return jsonify({"group_id": group.id, "conda_environment": group.conda_environment})


@bp.get("/script-groups/<int:group_id>/limits")
@login_required
def get_limits(group_id: int):
    group = _group_or_404(group_id)
    if not visible_groups([group], current_user):  # a group one may not see is "not found"
        abort(404, description=f"No script group with id {group_id}.")
    meta = group.metadata_json or {}
    return jsonify(
        {
            "group_id": group.id,
            "limits": meta.get("limits") or {},
            "edited": (group.overrides or {}).get("limits") or {},
            "effective": {
                **parse_limits(meta.get("limits") or {}).to_dict(),
                "pool_size": group.pool_size or 0,
            },
            # Warm standby containers per user and project (0: none); stored on the group.
            "pool_size": group.pool_size or 0,
        }
    )


@bp.put("/script-groups/<int:group_id>/limits")
@require_level("admin")
def put_limits(group_id: int):
    """Admin edits of a group's limits; they win over metadata.json and are audited."""
    group = _group_or_404(group_id)
    changes = dict(json_body())
    pool_before = group.pool_size or 0
    if "pool_size" in changes:
        raw = changes.pop("pool_size")
        try:
            group.pool_size = 0 if raw is None else parse_pool_size(raw)
        except PoolSizeError as exc:
            db.session.rollback()
            return error_response(400, str(exc), field="pool_size")
    try:
        # One check, the sessions' own: it reads durations such as 30m and sizes such as 1g;
        # what is stored is its normalised value (None removes an edit).
        parsed = parse_limits({k: v for k, v in changes.items() if v is not None}).to_dict()
        normalised = {k: (None if v is None else parsed[k]) for k, v in changes.items()}
        if changes:
            update_group_metadata(db.session, group, {"limits": normalised})
    except (ValueError, TypeError, KeyError) as exc:
        db.session.rollback()
        message = str(exc).removeprefix("limits.")
        field = message.split(":", 1)[0].strip()
        return error_response(400, message, field=field)
    audit.record(
        db.session,
        "group_limits_updated",
        target=f"group:{group.directory_path}",
        details={"limits": normalised}
        | ({"pool_size": [pool_before, group.pool_size]} if pool_before != group.pool_size else {}),
        admin=True,
    )
    db.session.commit()
    pool = current_pool()
    if pool is not None:  # a changed size or limits: trim or fill now, not at the next pass
        pool.wake.set()
    return get_limits(group_id)
