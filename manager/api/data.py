"""Workspace files over HTTP: list, download, upload, delete, JSON files, zip backup.

Routes follow the seed's data-management endpoints, ``/api/data/{group_id}/{project_id}/...``.
Every path goes through :mod:`manager.workspace.safefs`; this module only parses and answers.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask_login import current_user, login_required

from manager import audit
from manager.errors import error_response
from manager.extensions import db
from manager.presenters import visible_script_or_404
from manager.projects import active_project
from manager.sessions.service import SessionConfig
from manager.sessions.spec import WORKSPACE_DIR
from manager.sessions.workspace import disk_usage, human_size
from manager.workspace import archive, safefs
from manager.workspace.service import (
    Workspace,
    WorkspaceError,
    group_limits,
    preview_type,
    resolve,
    upload_room,
)

bp = Blueprint("api_data", __name__, url_prefix="/api")

MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file
JSON_LIMIT = 5 * 1024 * 1024  # a JSON document read or written through the manager


@bp.url_value_preprocessor
def _allow_uploads(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Uploads may be larger than the app's request cap (MAX_CONTENT_LENGTH): raise it for them
    before anything (the CSRF check) reads the body; ``_store`` narrows it to what fits."""
    if request.method == "POST" and endpoint in ("api_data.upload", "api_data.parameter_file"):
        max_upload = current_app.config["SM_MAX_UPLOAD_MB"] * 1024 * 1024
        limit = max_upload + MULTIPART_SLACK
        if (request.content_length or 0) > limit:
            abort(
                413,
                description=f"The file is larger than the upload limit of {human_size(max_upload)}"
                " (SM_MAX_UPLOAD_MB).",
            )
        request.max_content_length = max(limit, current_app.config.get("MAX_CONTENT_LENGTH") or 0)


def _workspace(group_id: int, project_id: int, write: bool = False) -> Workspace:
    return resolve(
        db.session,
        current_user,
        group_id,
        project_id,
        data_dir=current_app.config["SM_DATA_DIR"],
        admin_access=current_app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"],
        write=write,
    )


def _refused(exc: WorkspaceError | safefs.UnsafePath):
    if isinstance(exc, WorkspaceError):
        return error_response(exc.status, exc.message, **exc.extra)
    return error_response(exc.status, exc.message)


def _root_fd(workspace: Workspace, create: bool = False) -> int:
    if create:
        from manager.sessions.workspace import prepare_workspace

        prepare_workspace(workspace.root)
    try:
        return safefs.open_root(workspace.root)
    except FileNotFoundError as exc:
        raise WorkspaceError(404, "This workspace is empty: nothing was saved in it yet.") from exc


def _not_found(path: str):
    return error_response(404, f"There is no file {path!r} in this workspace.")


def _limits(workspace: Workspace):
    return group_limits(SessionConfig.from_app_config(current_app.config).default_limits,
                        workspace.group)  # fmt: skip


@bp.get("/data/<int:group_id>/<int:project_id>/files")
@login_required
def list_files(group_id: int, project_id: int):
    """The workspace as a flat, sorted list of entries (a tree by their paths)."""
    try:
        workspace = _workspace(group_id, project_id)
    except WorkspaceError as exc:
        return _refused(exc)
    limit = 20000
    entries: list[dict[str, Any]] = []
    if workspace.root.is_dir():
        root_fd = safefs.open_root(workspace.root)
        try:
            entries = [e.to_dict() for e in safefs.walk(root_fd, limit=limit)]
        finally:
            os.close(root_fd)
    limits = _limits(workspace)
    return jsonify(
        {
            "group_id": group_id,
            "project_id": project_id,
            "project_name": workspace.project.project_name,
            "files": entries,
            "truncated": len(entries) >= limit,
            "usage_bytes": disk_usage(workspace.owner_dir),
            "quota_bytes": limits.workspace_quota_bytes,
            "max_upload_bytes": current_app.config["SM_MAX_UPLOAD_MB"] * 1024 * 1024,
            "writable": workspace.writable,
        }
    )


@bp.get("/data/<int:group_id>/<int:project_id>/<path:path>")
@login_required
def download(group_id: int, project_id: int, path: str):
    """A file's bytes; ``?format=json`` returns a JSON file parsed, ``?inline=1`` a preview."""
    try:
        workspace = _workspace(group_id, project_id)
        parts = safefs.split_path(path)
        root_fd = _root_fd(workspace)
        try:
            if request.args.get("format") == "json":
                return _read_json(root_fd, parts)
            with safefs.parent_of(root_fd, parts) as parent:
                fd, info = safefs.open_regular(parent, parts[-1], path)
        finally:
            os.close(root_fd)
    except (WorkspaceError, safefs.UnsafePath) as exc:
        return _refused(exc)
    except FileNotFoundError:
        return _not_found(path)
    content_type, can_inline = preview_type(parts[-1])
    inline = can_inline and request.args.get("inline") in ("1", "true")
    disposition = "inline" if inline else "attachment"
    response = Response(_read_chunks(fd), content_type=content_type if inline else
                        "application/octet-stream", direct_passthrough=True)  # fmt: skip
    response.headers["Content-Length"] = str(info.st_size)
    response.headers["Content-Disposition"] = _disposition(disposition, parts[-1])
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _read_chunks(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(safefs.CHUNK):
            yield chunk


def _disposition(kind: str, name: str) -> str:
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def _read_json(root_fd: int, parts: list[str]):
    raw = safefs.read_file(root_fd, parts, limit=JSON_LIMIT)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return error_response(422, f"{'/'.join(parts)} is not valid JSON: {exc}")
    return jsonify({"path": "/".join(parts), "data": data})


@bp.post("/data/<int:group_id>/<int:project_id>/<path:path>")
@login_required
def upload(group_id: int, project_id: int, path: str):
    """Create or replace a file: a multipart ``file`` field, a JSON body (stored as a JSON file,
    pretty-printed) or the raw request body."""
    try:
        workspace = _workspace(group_id, project_id, write=True)
        parts = safefs.split_path(path)
        if parts[-1].startswith(".sm-upload-"):
            raise safefs.UnsafePath("Names starting with .sm-upload- are reserved.")
        written = _store(workspace, parts)
    except (WorkspaceError, safefs.UnsafePath) as exc:
        db.session.rollback()
        return _refused(exc)
    audit.record(
        db.session,
        "workspace_file_written",
        target=f"workspace:{group_id}/{project_id}/{path}",
        details={"size": written, "owner_id": workspace.owner_id},
        admin=workspace.owner_id != current_user.id,
    )
    db.session.commit()
    return jsonify({"path": "/".join(parts), "size": written}), 201


def _store(workspace: Workspace, parts: list[str]) -> int:
    max_upload = current_app.config["SM_MAX_UPLOAD_MB"] * 1024 * 1024
    room = upload_room(workspace, _limits(workspace), max_upload)
    declared = request.content_length
    if declared is not None and declared > room.limit + MULTIPART_SLACK:
        raise WorkspaceError(413, room.message)
    request.max_content_length = room.limit + MULTIPART_SLACK
    if request.mimetype == "multipart/form-data":
        stream = request.files.get("file")
        if stream is None:
            raise WorkspaceError(400, "Send the file in a form field named 'file'.")
        source: Any = stream.stream
    elif request.is_json:
        if not parts[-1].lower().endswith(".json"):
            raise WorkspaceError(400, "A JSON document must be saved under a name ending in .json.")
        data = request.get_json(silent=True)
        if data is None and request.get_data(cache=True).strip() != b"null":
            raise WorkspaceError(400, "The request body is not valid JSON.")
        source = BytesIO(json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
    else:
        source = request.stream
    root_fd = _root_fd(workspace, create=True)
    try:
        return safefs.write_file(root_fd, parts, source, room.limit)
    except safefs.UnsafePath as exc:
        if exc.status == 413:
            raise WorkspaceError(413, room.message) from exc
        raise
    finally:
        os.close(root_fd)


@bp.delete("/data/<int:group_id>/<int:project_id>/<path:path>")
@login_required
def delete(group_id: int, project_id: int, path: str):
    """Delete a file or a folder; a link is removed itself, never what it points to."""
    try:
        workspace = _workspace(group_id, project_id, write=True)
        parts = safefs.split_path(path)
        root_fd = _root_fd(workspace)
        try:
            kind = safefs.delete(root_fd, parts)
        finally:
            os.close(root_fd)
    except (WorkspaceError, safefs.UnsafePath) as exc:
        return _refused(exc)
    except FileNotFoundError:
        return _not_found(path)
    audit.record(
        db.session,
        "workspace_file_deleted",
        target=f"workspace:{group_id}/{project_id}/{path}",
        details={"kind": kind, "owner_id": workspace.owner_id},
        admin=workspace.owner_id != current_user.id,
    )
    db.session.commit()
    return jsonify({"deleted": "/".join(parts), "kind": kind})


@bp.post("/data/<int:group_id>/<int:project_id>/backup")
@login_required
def backup(group_id: int, project_id: int):
    """The whole workspace as a zip, streamed (links, FIFOs, devices are left out)."""
    try:
        workspace = _workspace(group_id, project_id)
    except WorkspaceError as exc:
        return _refused(exc)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{workspace.group.directory_path}-{workspace.project.project_name}-{stamp}.zip"
    audit.record(
        db.session,
        "workspace_backup_downloaded",
        target=f"workspace:{group_id}/{project_id}",
        admin=workspace.owner_id != current_user.id,
    )
    db.session.commit()
    body = stream_with_context(archive.stream_zip([(workspace.root, "")]))
    response = Response(body, content_type="application/zip")
    response.headers["Content-Disposition"] = _disposition("attachment", name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/scripts/<int:script_id>/parameter-files")
@login_required
def parameter_file(script_id: int):
    """Upload a file for a ``file`` parameter: it lands in ``uploads/`` of the project's workspace
    and the answer gives the path to send as the parameter's value."""
    script = visible_script_or_404(script_id)
    raw_project = request.args.get("project_id") or request.form.get("project_id")
    if raw_project:
        try:
            project_id = int(raw_project)
        except ValueError:
            return error_response(400, f"project_id must be a whole number, not {raw_project!r}.")
    else:
        project = active_project(db.session, current_user,
                                 current_app.config["SM_DEFAULT_PROJECT_NAME"])  # fmt: skip
        assert project is not None
        db.session.commit()
        project_id = project.id
    if request.mimetype != "multipart/form-data":
        return error_response(400, "Send the file as multipart/form-data in a field named 'file'.")
    try:
        workspace = _workspace(script.group_id, project_id, write=True)
        if workspace.owner_id != current_user.id:
            raise WorkspaceError(403, "A file for a run goes into your own project.")
        upload_file = request.files.get("file") if request.content_length else None
        original = (upload_file.filename if upload_file else "") or ""
        name = safe_name(original)
        folder = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        parts = ["uploads", folder, name]
        written = _store(workspace, parts)
    except (WorkspaceError, safefs.UnsafePath) as exc:
        return _refused(exc)
    relative = "/".join(parts)
    audit.record(
        db.session,
        "parameter_file_uploaded",
        target=f"script:{script_id}",
        details={"path": relative, "size": written, "project_id": project_id},
    )
    db.session.commit()
    return jsonify(
        {"path": f"{WORKSPACE_DIR}/{relative}", "workspace_path": relative, "size": written}
    ), 201


def safe_name(original: str) -> str:
    """A file name from a browser, reduced to one harmless path component."""
    base = original.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(c for c in base if ord(c) >= 32 and c not in "/\x7f").strip(". ")
    if not cleaned:
        raise WorkspaceError(400, "Choose a file to upload (the form's 'file' field is empty).")
    return cleaned[:200]


@bp.get("/executions/<execution_id>/artifacts")
@login_required
def execution_artifacts(execution_id: str):
    """The files a run created or changed in its workspace, with download links."""
    from manager.logs.detail import find_run
    from manager.workspace.artifacts import artifacts_view

    run = find_run(db.session, current_app.config["SM_LOG_DIR"], execution_id)
    if run is None or not (
        run.execution.user_id == current_user.id
        or (current_user.is_admin and current_app.config["SM_ADMIN_CAN_ACCESS_ALL_DATA"])
    ):
        return error_response(404, f"There is no run {execution_id!r} of yours.")
    files = artifacts_view(db.session, run.execution, run.script, current_app.config["SM_DATA_DIR"])
    return jsonify({"execution_id": run.uuid, "status": run.execution.status, "artifacts": files})
