"""The OpenAPI 3.1 description of every ``/api`` endpoint.

Paths, methods and path parameters come from the app's url_map (so they cannot drift); what a
route cannot say about itself -- its summary, the role it needs, its query parameters, its body
and its answers -- is written once per operation in ``OPERATIONS`` below. tests/test_openapi.py
fails when a registered ``/api`` route has no entry here, or an entry names no route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from manager.blueprints import MAX_ID

ROLES = ("viewer", "operator", "developer", "admin")
PUBLIC = "public"  # no login needed
LOGIN = "viewer"  # any logged-in user

JSON = "application/json"
ANY = "*/*"

# --- reusable schema pieces ----------------------------------------------------------------

OBJ: dict[str, Any] = {"type": "object"}
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
ID: dict[str, Any] = {"type": "integer", "minimum": 1}
IDS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with these properties; other keys are allowed (and ignored by the views)."""
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


def q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def qint(name: str, low: int, high: int, description: str = "") -> dict[str, Any]:
    return q(name, {"type": "integer", "minimum": low, "maximum": high}, description)


def qenum(name: str, *values: str) -> dict[str, Any]:
    return q(name, {"type": "string", "enum": list(values)})


def listing(key: str) -> dict[str, Any]:
    """An answer ``{key: [...]}`` (other keys may come along)."""
    return obj((key,), **{key: {"type": "array"}})


def page_of(key: str) -> dict[str, Any]:
    """A page of a paginated list: ``{key: [...], page, pages, per_page, total}``."""
    count = {"type": "integer", "minimum": 0}
    return obj(
        (key, "page", "pages", "per_page", "total"),
        **{key: {"type": "array", "items": OBJ}},
        page=count,
        pages=count,
        per_page=count,
        total=count,
        total_exact={
            "type": "boolean",
            "description": "false when a search found more runs than ``total`` (it stops counting)",
        },
    )


PROJECT_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
DATE = {"type": "string", "description": "YYYY-MM-DD or an ISO 8601 moment"}
RUN_FILTERS = [
    qint("script_id", 1, 2**31 - 1),
    qint("project_id", 1, 2**31 - 1),
    q("date_from", DATE),
    q("date_to", DATE),
    qint("min_duration", 0, 10**9, "seconds"),
    qint("max_duration", 0, 10**9, "seconds"),
    qint("page", 1, 10**6),
    qint("per_page", 1, 200),
    q("status", STR, "comma-separated: running, completed, failed, stopped, ..."),
    qenum("sort", "start", "duration", "status", "script", "user"),
    qenum("order", "asc", "desc"),
    q("q", STR, "full-text search of output and parameters"),
]
AUDIT_FILTERS = [
    qint("user_id", 1, 2**31 - 1),
    q("date_from", DATE),
    q("date_to", DATE),
    qint("page", 1, 10**6),
    qint("per_page", 1, 500),
    q("username", {"type": "string", "maxLength": 255}),
    q("action", {"type": "string", "maxLength": 255}),
    q("target", {"type": "string", "maxLength": 255}),
    qenum("admin_only", "true", "false", "1", "0"),
]
RUN_BODY = obj(
    parameters={"type": "object", "description": "parameter name -> value"},
    project_id=ID,
    on_conflict={"type": "string", "enum": ["stop", "keep", "new"]},
)
SESSION_SELECTOR = obj(execution_id=STR, project_id=ID)


@dataclass
class Op:
    """What one ``METHOD /path`` does, beyond what its route says."""

    tag: str
    summary: str
    role: str = LOGIN
    query: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None  # a JSON request body
    body_required: bool = True
    multipart: bool = False  # a file upload (multipart/form-data) instead of, or as well as, JSON
    example: dict[str, Any] | None = None  # a request body that works (Schemathesis sends it too)
    ok: int | tuple[int, ...] = 200  # the success status(es)
    produces: tuple[str, ...] = (JSON,)
    response: dict[str, Any] = field(default_factory=lambda: dict(OBJ))
    errors: tuple[int, ...] = (400, 404)
    starts_work: bool = False  # starts containers, builds or rewrites the system: never fuzzed
    ends_auth: bool = False  # may end or lock out the caller's own login/token: never fuzzed


OPERATIONS: dict[str, Op] = {
    # --- auth ---------------------------------------------------------------------------------
    "POST /api/auth/login": Op(
        "auth",
        "Log in (starts a session cookie)",
        PUBLIC,
        body=obj(("username", "password"), username=STR, password=STR),
        response=obj(user=OBJ),
        errors=(400, 401, 403, 429),
    ),
    "POST /api/auth/logout": Op("auth", "Log out this browser", ends_auth=True),
    "GET /api/auth/user": Op("auth", "The logged-in user and their active project"),
    "GET /api/auth/csrf": Op(
        "auth",
        "A CSRF token for the X-CSRFToken header",
        PUBLIC,
        response=obj(("csrf_token",), csrf_token=STR),
    ),
    # --- account ------------------------------------------------------------------------------
    "POST /api/user/preferences": Op(
        "account",
        "Set language and/or theme (anonymous visitors: kept in the session)",
        PUBLIC,
        body=obj(language={"enum": ["en", "es", "it", "fr"]}, theme={"enum": ["light", "dark"]}),
    ),
    "POST /api/user/password": Op(
        "account",
        "Change my password (ends my other logins)",
        body=obj(("current_password", "new_password"), current_password=STR, new_password=STR),
        errors=(400, 429),
        ends_auth=True,
    ),
    "GET /api/user/logins": Op("account", "My live browser logins", response=listing("logins")),
    "GET /api/user/tokens": Op(
        "account", "My API tokens (never the secrets)", response=listing("tokens")
    ),
    "POST /api/user/tokens": Op(
        "account",
        "Create an API token; the secret is shown once",
        ok=201,
        body=obj(name={"type": "string", "maxLength": 100}),
        response=obj(("id", "token"), id=INT, token=STR, note=STR),
    ),
    "DELETE /api/user/tokens/{token_id}": Op("account", "Revoke one of my tokens", ends_auth=True),
    "GET /api/user/favorites": Op("dashboard", "My starred scripts", response=listing("favorites")),
    "GET /api/user/recent-scripts": Op(
        "dashboard", "Scripts I ran lately", response=listing("recent")
    ),
    "GET /api/user/tags": Op(
        "tags", "My tags, for completion", query=[q("q", STR, "prefix")], response=listing("tags")
    ),
    # --- catalog ------------------------------------------------------------------------------
    "GET /api/script-groups": Op("catalog", "Script groups I may see", response=listing("groups")),
    "GET /api/script-groups/{group_id}/scripts": Op("catalog", "A group's scripts"),
    "POST /api/script-groups/{group_id}/refresh": Op(
        "catalog", "Rediscover a group's scripts", "developer"
    ),
    "GET /api/scripts/{script_id}/metadata": Op("catalog", "A script's metadata"),
    "PUT /api/scripts/{script_id}/metadata": Op(
        "catalog",
        "Edit a script's metadata",
        "developer",
        body=obj(display_name=STR, description=STR, parameters={"type": "array"}),
        errors=(400, 404, 409),
    ),
    "POST /api/scripts/{script_id}/refresh-metadata": Op(
        "catalog", "Re-read a script's metadata from its file", "developer"
    ),
    "GET /api/scripts/search-tags": Op(
        "tags",
        "Scripts by tags",
        query=[
            q("tags", STR, "comma-separated"),
            qenum("match", "any", "all"),
            qenum("source", "all", "mine", "system"),
        ],
    ),
    "GET /api/scripts/{script_id}/tags": Op("tags", "A script's tags (system and mine)"),
    "PUT /api/scripts/{script_id}/tags": Op(
        "tags",
        "Set my tags on a script",
        body=obj(("tags",), tags={"type": "array", "items": STR}),
    ),
    "PUT /api/scripts/{script_id}/favorite": Op("dashboard", "Star a script"),
    "DELETE /api/scripts/{script_id}/favorite": Op("dashboard", "Unstar a script"),
    "GET /api/system/status": Op("dashboard", "Counts and health for the dashboard"),
    # --- documentation ------------------------------------------------------------------------
    "GET /api/scripts/{script_id}/description-long": Op(
        "docs",
        "A script's long description (Markdown, or HTML with format=html)",
        query=[qenum("lang", "en", "es", "it", "fr"), qenum("format", "markdown", "html")],
    ),
    "PUT /api/scripts/{script_id}/description-long": Op(
        "docs",
        "Save a script's long description",
        "developer",
        body=obj(("markdown",), markdown=STR, language={"enum": ["en", "es", "it", "fr"]}),
        errors=(400, 404, 409, 413),
    ),
    "POST /api/docs/render": Op(
        "docs",
        "Render Markdown to sanitized HTML (preview)",
        "developer",
        body=obj(("markdown",), markdown=STR, script_id=ID),
        errors=(400, 404, 413),
    ),
    "GET /api/docs/status": Op(
        "docs", "Documentation coverage", "admin", response=listing("scripts")
    ),
    "GET /api/script-groups/{group_id}/examples": Op("docs", "A group's example files"),
    "GET /api/scripts/{script_id}/history": Op("docs", "A script's edit history", "developer"),
    "POST /api/scripts/{script_id}/history/{event_id}/restore": Op(
        "docs",
        "Restore a field from a history entry",
        "developer",
        body=obj(side={"enum": ["before", "after"]}, field=STR),
        body_required=False,
        errors=(400, 404, 409),
    ),
    # --- environments -------------------------------------------------------------------------
    "GET /api/conda/environments": Op(
        "environments", "Conda environments and image states", response=listing("environments")
    ),
    "POST /api/conda/refresh": Op("environments", "Re-read conda-envs/*.yml", "developer"),
    "GET /api/conda/environments/{name}/info": Op("environments", "One environment in detail"),
    "POST /api/conda/environments/{name}/build": Op(
        "environments",
        "Build an environment's image (background)",
        "admin",
        ok=202,
        starts_work=True,
    ),
    "POST /api/script-groups/{group_id}/conda": Op(
        "environments",
        "Pick a group's environment",
        "developer",
        body=obj(("environment",), environment=STR),
    ),
    "GET /api/script-groups/{group_id}/limits": Op("environments", "A group's resource limits"),
    "PUT /api/script-groups/{group_id}/limits": Op(
        "environments",
        "Set a group's resource limits",
        "admin",
        body=obj(memory=STR, cpus={"type": "number"}, timeout=INT, max_sessions=INT),
    ),
    # --- projects -----------------------------------------------------------------------------
    "GET /api/projects": Op("projects", "My projects", response=listing("projects")),
    "POST /api/projects": Op(
        "projects",
        "Create a project",
        ok=201,
        body=obj(
            ("project_name",),
            project_name=PROJECT_NAME,
            name={**PROJECT_NAME, "description": "older spelling of project_name"},
            description=STR,
        ),
        example={"project_name": "survey-2026", "description": "Field data"},
        errors=(400, 409),
    ),
    "GET /api/projects/active": Op("projects", "My active project"),
    "POST /api/projects/{project_id}/set-active": Op("projects", "Make a project active"),
    "PUT /api/projects/{project_id}": Op(
        "projects",
        "Rename or describe a project",
        body=obj(project_name=STR, name=STR, description=STR),
        errors=(400, 404, 409),
    ),
    "DELETE /api/projects/{project_id}": Op(
        "projects", "Delete a project and its data", errors=(400, 404, 409)
    ),
    "GET /api/admin/users/{user_id}/projects": Op("admin", "A user's projects", "admin"),
    "POST /api/admin/users/{user_id}/reset-data": Op(
        "admin",
        "Erase a user's data (confirm with their username)",
        "admin",
        body=obj(("confirm",), confirm=STR),
        ends_auth=True,
    ),
    # --- data ---------------------------------------------------------------------------------
    "GET /api/data/{group_id}/{project_id}/files": Op("data", "A project's data files"),
    "GET /api/data/{group_id}/{project_id}/{path}": Op(
        "data",
        "Download a data file (format=json: its details)",
        query=[qenum("format", "json"), qenum("inline", "1", "true")],
        produces=(JSON, ANY),
        response={},
    ),
    "POST /api/data/{group_id}/{project_id}/{path}": Op(
        "data",
        "Upload a file (multipart 'file'), or create a folder (JSON)",
        ok=201,
        body=obj(type={"enum": ["folder"]}),
        body_required=False,
        multipart=True,
        errors=(400, 404, 409, 413),
    ),
    "DELETE /api/data/{group_id}/{project_id}/{path}": Op("data", "Delete a data file or folder"),
    "POST /api/data/{group_id}/{project_id}/backup": Op(
        "data",
        "Zip a project's data",
        produces=("application/zip",),
        response={},
        errors=(400, 404, 409, 413),
    ),
    "POST /api/scripts/{script_id}/parameter-files": Op(
        "data",
        "Upload a file for a file parameter",
        ok=201,
        query=[qint("project_id", 1, 2**31 - 1)],
        multipart=True,
        body_required=False,
        errors=(400, 404, 413),
    ),
    "GET /api/executions/{execution_id}/artifacts": Op("data", "Files a run produced"),
    # --- sessions -----------------------------------------------------------------------------
    "POST /api/scripts/{script_id}/execute": Op(
        "sessions",
        "Run a script (201 started; 200 an interactive session reused)",
        "operator",
        body=RUN_BODY,
        body_required=False,
        ok=(200, 201),
        errors=(400, 404, 409, 429, 503),
    ),
    "POST /api/scripts/{script_id}/proxy-access": Op(
        "sessions",
        "Start (or reuse) an interactive session",
        "operator",
        body=RUN_BODY,
        body_required=False,
        ok=(200, 201),
        errors=(400, 404, 409, 429, 503),
    ),
    "GET /api/scripts/{script_id}/status": Op(
        "sessions",
        "My runs of a script",
        query=[q("execution_id", STR), qint("project_id", 1, 2**31 - 1)],
    ),
    "GET /api/executions/{execution_id}": Op("sessions", "One run's state"),
    "POST /api/scripts/{script_id}/stop": Op(
        "sessions",
        "Stop my runs of a script",
        "operator",
        body=SESSION_SELECTOR,
        body_required=False,
    ),
    "POST /api/scripts/{script_id}/proxy-cleanup": Op(
        "sessions",
        "End my interactive sessions of a script",
        "operator",
        body=SESSION_SELECTOR,
        body_required=False,
    ),
    "GET /api/scripts/{script_id}/proxy-status": Op("sessions", "My interactive sessions' state"),
    "GET /api/scripts/{script_id}/proxy-url": Op(
        "sessions", "The URL of my interactive session", query=[qint("project_id", 1, 2**31 - 1)]
    ),
    "GET /api/active-proxies": Op(
        "sessions",
        "Live interactive sessions (admins: all=true for everyone's)",
        query=[qenum("all", "1", "true")],
        response=listing("sessions"),
    ),
    "GET /api/sessions": Op(
        "sessions",
        "Live sessions (admins: all=true for everyone's)",
        query=[qenum("all", "1", "true")],
        response=listing("sessions"),
    ),
    "POST /api/sessions/{execution_id}/stop": Op("sessions", "Stop one of my sessions", "operator"),
    "POST /api/admin/sessions/{execution_id}/kill": Op("admin", "Kill any session", "admin"),
    # --- presets ------------------------------------------------------------------------------
    "GET /api/scripts/{script_id}/presets": Op(
        "presets", "Saved parameter sets", query=[qint("project_id", 1, 2**31 - 1)]
    ),
    "POST /api/scripts/{script_id}/presets": Op(
        "presets",
        "Save a parameter set",
        ok=201,
        body=obj(("name",), name=STR, parameters=OBJ, project_id=ID, shared=BOOL),
        example={"name": "defaults", "parameters": {}},
        errors=(400, 403, 404, 409),
    ),
    "PUT /api/presets/{preset_id}": Op(
        "presets",
        "Edit a parameter set",
        body=obj(name=STR, parameters=OBJ, shared=BOOL),
        errors=(400, 403, 404, 409),
    ),
    "DELETE /api/presets/{preset_id}": Op(
        "presets", "Delete a parameter set", errors=(400, 403, 404)
    ),
    "POST /api/presets/{preset_id}/run": Op(
        "presets",
        "Run a script with a parameter set",
        "operator",
        body=RUN_BODY,
        body_required=False,
        ok=(200, 201),
        errors=(400, 404, 409, 429, 503),
    ),
    # --- schedules ----------------------------------------------------------------------------
    "GET /api/schedules": Op(
        "schedules",
        "My schedules (admins: all=true for everyone's)",
        query=[qenum("all", "1", "true")],
        response=listing("schedules"),
    ),
    "POST /api/schedules": Op(
        "schedules",
        "Schedule a script",
        "operator",
        ok=201,
        body=obj(
            ("script_id",),
            script_id=ID,
            cron={"type": "string", "description": "five fields: minute hour day month weekday"},
            timezone={"type": "string", "description": "IANA, e.g. Europe/Madrid"},
            parameters=OBJ,
            preset_id=ID,
            project_id=ID,
            enabled=BOOL,
            name=STR,
        ),
        example={"script_id": 2, "cron": "30 6 * * 1-5", "timezone": "UTC", "name": "mornings"},
        errors=(400, 404, 409),
    ),
    "GET /api/schedules/{schedule_id}": Op("schedules", "One schedule", errors=(404,)),
    "PUT /api/schedules/{schedule_id}": Op(
        "schedules",
        "Edit a schedule",
        "operator",
        body=obj(cron=STR, parameters=OBJ, project_id=ID, enabled=BOOL, name=STR),
        errors=(400, 404, 409),
    ),
    "DELETE /api/schedules/{schedule_id}": Op(
        "schedules", "Delete a schedule", "operator", errors=(404,)
    ),
    # --- logs ---------------------------------------------------------------------------------
    "GET /api/logs/execution": Op(
        "logs", "My runs, filtered and paginated", query=RUN_FILTERS, response=page_of("executions")
    ),
    "GET /api/logs/search": Op(
        "logs", "Search my runs' output (q)", query=RUN_FILTERS, response=page_of("executions")
    ),
    "GET /api/logs/script/{script_id}": Op(
        "logs", "My runs of a script", query=RUN_FILTERS, response=page_of("executions")
    ),
    "GET /api/logs/project/{project_id}": Op(
        "logs",
        "My runs in a project",
        query=RUN_FILTERS,
        errors=(400, 403, 404),
        response=page_of("executions"),
    ),
    "GET /api/logs/execution/{execution_id}": Op(
        "logs",
        "One run's output lines",
        query=[
            q("streams", STR, "comma-separated: stdout, stderr, system"),
            qint("tail", 0, 100000),
            qint("after_seq", 0, 2**31 - 1),
            qint("limit", 1, 100000),
        ],
        errors=(400, 403, 404),
    ),
    "GET /api/logs/execution/{execution_id}/download": Op(
        "logs",
        "Download one run's output",
        query=[qenum("format", "txt", "json", "csv")],
        produces=(JSON, ANY),
        response={},
        errors=(400, 403, 404),
    ),
    "DELETE /api/logs/execution/{execution_id}": Op(
        "logs", "Delete one of my runs' logs", errors=(400, 403, 404, 409)
    ),
    "POST /api/logs/cleanup": Op(
        "logs",
        "Delete my runs older than N days",
        body=obj(older_than_days=INT),
        body_required=False,
    ),
    "GET /api/logs/stats": Op("logs", "My run statistics", query=[qint("days", 1, 366)]),
    "POST /api/logs/bulk": Op(
        "logs",
        "Delete or export several runs",
        body=obj(
            ("action", "execution_ids"),
            action={"enum": ["delete", "export"]},
            execution_ids=IDS,
            format={"enum": ["json", "csv", "txt"]},
        ),
        produces=(JSON, ANY),
        response={},
        errors=(400, 403, 404, 413),
    ),
    "GET /api/logs/execution/{execution_id}/pdf": Op(
        "logs", "One run's log as a PDF", produces=(JSON, ANY), response={}, errors=(404,)
    ),
    "GET /api/logs/marks": Op(
        "logs",
        "My bookmarks and notes on runs",
        query=[qenum("bookmarked", "1", "true", "0")],
        response=listing("marks"),
    ),
    "GET /api/logs/execution/{execution_id}/mark": Op(
        "logs", "My bookmark and note on a run", errors=(404,)
    ),
    "PUT /api/logs/execution/{execution_id}/mark": Op(
        "logs",
        "Bookmark a run and/or keep a note on it (mine only)",
        body=obj(bookmarked=BOOL, note={"type": "string", "maxLength": 4000}),
        errors=(400, 404, 409),
    ),
    "DELETE /api/logs/execution/{execution_id}/mark": Op(
        "logs", "Remove my bookmark and note on a run", errors=(404,)
    ),
    "GET /api/logs/execution/{execution_id}/shares": Op(
        "logs", "A run's share links", errors=(404,)
    ),
    "POST /api/logs/execution/{execution_id}/shares": Op(
        "logs",
        "Make a share link (it opens only for who may see the run anyway)",
        body=obj(expires_in_days={"type": "integer", "minimum": 1, "maximum": 90}),
        body_required=False,
        ok=201,
        errors=(400, 404, 429),
    ),
    "DELETE /api/logs/shares/{share_id}": Op("logs", "Revoke a share link", errors=(404,)),
    "GET /api/logs/shares/{token}": Op(
        "logs", "Where a share link leads, if I may see the run", errors=(404, 410)
    ),
    "GET /api/logs/presets": Op("logs", "My saved log filters", response=listing("presets")),
    "POST /api/logs/presets": Op(
        "logs",
        "Save a log filter",
        ok=201,
        body=obj(("name",), name=STR, filters=OBJ),
        errors=(400, 409),
    ),
    "DELETE /api/logs/presets/{preset_id}": Op("logs", "Delete a saved log filter"),
    # --- administration -----------------------------------------------------------------------
    "GET /api/admin/users": Op("admin", "All users", "admin", response=listing("users")),
    "POST /api/admin/users": Op(
        "admin",
        "Create a user",
        "admin",
        ok=201,
        body=obj(
            ("username", "password", "user_level"),
            username=STR,
            email=STR,
            password=STR,
            user_level={"enum": list(ROLES)},
        ),
        errors=(400, 409),
    ),
    "PUT /api/admin/users/{user_id}": Op(
        "admin",
        "Edit a user",
        "admin",
        body=obj(username=STR, email=STR, user_level={"enum": list(ROLES)}, is_active=BOOL),
        errors=(400, 404, 409),
        ends_auth=True,
    ),
    "DELETE /api/admin/users/{user_id}": Op("admin", "Deactivate a user", "admin", ends_auth=True),
    "POST /api/admin/users/{user_id}/password": Op(
        "admin",
        "Set a user's password",
        "admin",
        body=obj(("new_password",), new_password=STR),
        ends_auth=True,
    ),
    "POST /api/admin/users/{user_id}/unlock": Op("admin", "Clear a user's login lockout", "admin"),
    "POST /api/admin/users/{user_id}/logout": Op(
        "admin", "End a user's logins", "admin", ends_auth=True
    ),
    "GET /api/admin/logs/execution": Op(
        "admin",
        "Everyone's runs",
        "admin",
        query=[*RUN_FILTERS, qint("user_id", 1, 2**31 - 1)],
        response=page_of("executions"),
    ),
    "GET /api/admin/logs/user/{user_id}": Op(
        "admin", "A user's runs", "admin", query=RUN_FILTERS, response=page_of("executions")
    ),
    "DELETE /api/admin/logs/user/{user_id}": Op("admin", "Delete a user's run logs", "admin"),
    "GET /api/admin/logs/system": Op(
        "admin",
        "Tail a system log file",
        "admin",
        query=[q("file", STR, "application, access, error, ..."), qint("lines", 0, 10000)],
    ),
    "GET /api/admin/logs/audit": Op(
        "admin", "The audit log", "admin", query=AUDIT_FILTERS, response=page_of("events")
    ),
    "POST /api/admin/logs/export": Op(
        "admin",
        "Export the audit or a system log",
        "admin",
        body=obj(
            source=STR,
            format={"enum": ["json", "csv", "txt"]},
            lines=INT,
            date_from=DATE,
            date_to=DATE,
        ),
        body_required=False,
        produces=(JSON, ANY),
        response={},
        errors=(400, 404, 413),
    ),
    "GET /api/admin/logs/retention": Op("admin", "Log retention settings and last run", "admin"),
    "POST /api/admin/logs/retention/run": Op("admin", "Apply log retention now", "admin"),
    "POST /api/system/backup": Op(
        "backup", "Back up now", "admin", ok=201, starts_work=True, errors=(400, 409, 507)
    ),
    "GET /api/system/backups": Op(
        "backup", "Existing backups", "admin", response=listing("backups")
    ),
    "DELETE /api/system/backups/{backup_date}": Op(
        "backup", "Delete a backup", "admin", starts_work=True
    ),
    "GET /api/system/backup-status": Op("backup", "The last and next backups", "admin"),
    "POST /api/system/restore": Op(
        "backup",
        "Restore a backup (confirm: true)",
        "admin",
        body=obj(("backup",), backup=STR, target=STR, confirm=BOOL),
        errors=(400, 404, 409),
        starts_work=True,
    ),
    "POST /api/system/discover": Op(
        "backup", "Rediscover every script group", "admin", starts_work=True
    ),
    # --- i18n ---------------------------------------------------------------------------------
    "GET /api/i18n/languages": Op(
        "i18n", "Languages the interface speaks", PUBLIC, response=listing("languages")
    ),
    "GET /api/i18n/{language}": Op(
        "i18n", "One language's interface strings", PUBLIC, errors=(404,)
    ),
}

# --- links: what a created thing's id feeds (documentation, and Schemathesis' stateful runs) ----

LINKS: list[tuple[str, str, str, tuple[str, ...]]] = [
    # (the creating operation, where its answer holds the id, the path parameter, its users)
    (
        "POST /api/projects",
        "$response.body#/project/id",
        "project_id",
        (
            "PUT /api/projects/{project_id}",
            "POST /api/projects/{project_id}/set-active",
            "GET /api/logs/project/{project_id}",
            "DELETE /api/projects/{project_id}",
        ),
    ),
    (
        "POST /api/schedules",
        "$response.body#/id",
        "schedule_id",
        (
            "GET /api/schedules/{schedule_id}",
            "PUT /api/schedules/{schedule_id}",
            "DELETE /api/schedules/{schedule_id}",
        ),
    ),
    (
        "POST /api/scripts/{script_id}/presets",
        "$response.body#/id",
        "preset_id",
        (
            "PUT /api/presets/{preset_id}",
            "POST /api/presets/{preset_id}/run",
            "DELETE /api/presets/{preset_id}",
        ),
    ),
    (
        "POST /api/logs/presets",
        "$response.body#/preset/id",
        "preset_id",
        ("DELETE /api/logs/presets/{preset_id}",),
    ),
    (
        "POST /api/scripts/{script_id}/execute",
        "$response.body#/execution_id",
        "execution_id",
        (
            "GET /api/executions/{execution_id}",
            "GET /api/executions/{execution_id}/artifacts",
            "GET /api/logs/execution/{execution_id}",
            "GET /api/logs/execution/{execution_id}/download",
            "POST /api/sessions/{execution_id}/stop",
            "GET /api/logs/execution/{execution_id}/pdf",
            "PUT /api/logs/execution/{execution_id}/mark",
            "POST /api/logs/execution/{execution_id}/shares",
            "DELETE /api/logs/execution/{execution_id}",
        ),
    ),
    (
        "POST /api/admin/users",
        "$response.body#/user/id",
        "user_id",
        (
            "GET /api/admin/users/{user_id}/projects",
            "POST /api/admin/users/{user_id}/unlock",
            "GET /api/admin/logs/user/{user_id}",
        ),
    ),
]


def operation_id(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").lower()


def _links(key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for source, value, name, targets in LINKS:
        if source == key:
            for target in targets:
                found[operation_id(target)] = {
                    "operationId": operation_id(target),
                    "parameters": {f"path.{name}": value},
                }
    return found


# --- building the document -----------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>[a-z_]+)>")
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _param_schema(converter: str | None) -> dict[str, Any]:
    if converter == "int":
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    if converter == "path":
        return {"type": "string", "minLength": 1}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def api_routes(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """``{"METHOD /api/path/{param}": [path parameters]}`` for every registered /api route."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rule in app.url_map.iter_rules():
        # The spec's own routes (this document, its docs page and script) are not the API.
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("openapi."):
            continue
        params = [
            {"name": m["name"], "in": "path", "required": True,
             "schema": _param_schema(m["conv"])}
            for m in _CONVERTER.finditer(rule.rule)
        ]  # fmt: skip
        path = _CONVERTER.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            found.setdefault(f"{method} {path}", params)
    return found


ERROR_TEXT = {
    400: "Bad input: the message says what to change",
    401: "Not logged in (no session, or a wrong/revoked token)",
    403: "Logged in, but the role or the owner does not allow it",
    404: "No such thing (or not yours)",
    409: "Conflicts with the current state",
    410: "Gone: expired or revoked",
    413: "Too large",
    429: "Too many attempts or sessions; wait and retry",
    503: "The session engine is unavailable",
    507: "Not enough disk space",
}


def _operation(key: str, op: Op, params: list[dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": operation_id(key),
        "x-required-role": op.role,
    }
    if op.role != PUBLIC:
        operation["description"] = (
            "Any logged-in user." if op.role == LOGIN else f"Role: {op.role} or above."
        )
    if params or op.query:
        operation["parameters"] = [*params, *op.query]
    content: dict[str, Any] = {}
    if op.body is not None:
        content[JSON] = {"schema": op.body}
        if op.example is not None:
            content[JSON]["example"] = op.example
    if op.multipart:
        content["multipart/form-data"] = {
            "schema": obj(file={"type": "string", "format": "binary"}, project_id=STR)
        }
    if content:
        operation["requestBody"] = {"required": op.body_required, "content": content}
    ok_content = {media: {"schema": op.response} for media in op.produces}
    oks = op.ok if isinstance(op.ok, tuple) else (op.ok,)
    responses: dict[str, Any] = {
        str(code): {"description": "Done", "content": ok_content} for code in oks
    }
    links = _links(key)
    if links:
        responses[str(oks[-1])]["links"] = links
    codes = set(op.errors) | {400}
    if op.role != PUBLIC:
        codes |= {401}
    if op.role not in (PUBLIC, LOGIN):
        codes |= {403}
    for code in sorted(codes):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    operation["responses"] = responses
    if op.role == PUBLIC:
        operation["security"] = []
    return operation


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``app``: its routes, described by ``OPERATIONS``."""
    paths: dict[str, dict[str, Any]] = {}
    for key, params in sorted(api_routes(app).items(), key=lambda kv: kv[0].split(" ")[::-1]):
        op = OPERATIONS.get(key)
        if op is None:  # undescribed: tests/test_openapi.py fails on it
            continue
        method, path = key.split(" ", 1)
        paths.setdefault(path, {})[method.lower()] = _operation(key, op, params)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ScriptsManager API",
            "version": "1",
            "description": (
                "The manager's JSON API. Log in with POST /api/auth/login (a session cookie; "
                "then send the token from GET /api/auth/csrf as X-CSRFToken on every "
                "POST/PUT/DELETE), or send `Authorization: Bearer sm_...` with a token from "
                "/api/user/tokens (no CSRF header needed). Roles, lowest first: "
                + ", ".join(ROLES)
                + '. Every error is JSON: `{"error": <HTTP status>, "message": "..."}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in sorted({op.tag for op in OPERATIONS.values()})],
        "security": [{"bearerAuth": []}, {"sessionCookie": [], "csrfHeader": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sm_..."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "sm_session"},
                "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "integer", "description": "the HTTP status"},
                        "message": {"type": "string", "description": "for a person to read"},
                        "field": {"type": ["string", "null"]},
                        "errors": {"type": "object"},
                    },
                }
            },
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for code, text in ERROR_TEXT.items()
            },
        },
    }
