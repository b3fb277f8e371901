"""How one row of the authorization table is asked: the URL for a caller, the body, the cells.

A row is ``"METHOD /rule"`` (the rule as in ``app.url_map``). Its cells are the callers:
anonymous, each level on its own object, and, for rows that name an object, the second user of
each level on the first one's object ("another user of the same level").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.authz.conftest import (
    BATCH_SCRIPT,
    DATA_GROUP,
    LEVELS,
    SESSION_SCRIPT,
    World,
)

BASE_COLUMNS = ("anonymous", *LEVELS)
OTHER_COLUMNS = tuple(f"other {level}" for level in LEVELS)
SAFE = ("GET",)
OWNED = (
    "execution_id",
    "project_id",
    "preset_id",
    "schedule_id",
    "token_id",
    "path",
    "share_id",
    "token",
)
STATIC_FILES = {  # a file each static folder has
    "/static": "css/app.css",
    "/bootstrap/static": "js/bootstrap.min.js",
    "/api/openapi-static": "api-docs.js",
}
PARAM = re.compile(r"<(?:([a-z]+):)?([a-z_]+)>")


def row_key(rule: Any, method: str) -> str:
    return f"{method} {rule.rule}"


def routes(app: Any) -> list[str]:
    """Every (method, rule) the app answers, as table keys."""
    keys = set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            keys.add(row_key(rule, method))
    return sorted(keys)


def params_of(key: str) -> list[str]:
    return [name for _, name in PARAM.findall(key)]


def is_owned(key: str) -> bool:
    """Does the row name an object that belongs to someone?"""
    path = key.split(" ", 1)[1]
    if path.startswith("/api/admin/users/"):
        return False  # admins act on any user; the row is about the level only
    return any(name in OWNED for name in params_of(key)) or path.startswith("/api/admin/logs/user")


def kind_of(key: str, name: str) -> str:
    path = key.split(" ", 1)[1]
    if name == "execution_id":
        return "session" if "/sessions/" in path else "run"
    if name == "preset_id":
        return "log_preset" if path.startswith("/api/logs/") else "preset"
    return {
        "project_id": "project",
        "schedule_id": "schedule",
        "token_id": "token",
        "path": "file",
        "user_id": "user",
        "event_id": "history",
        "share_id": "share",
        "token": "share_token",
    }[name]


@dataclass
class Cell:
    column: str
    caller: str | None  # user name; None: anonymous
    owner: str  # whose objects the URL names


def cells(world: World, key: str) -> list[Cell]:
    found = [Cell("anonymous", None, "operator")]
    for level in LEVELS:
        found.append(Cell(level, level, owner_for(world, key, level)))
    if is_owned(key):
        for level in LEVELS:
            owner = owner_for(world, key, level)
            if owner == level:  # the level may own such a thing: its second user tries it
                found.append(Cell(f"other {level}", f"{level}2", owner))
    return found


def owner_for(world: World, key: str, level: str) -> str:
    """``level`` when that level can own what the row names, else operator (a stranger's)."""
    for name in params_of(key):
        if name in OWNED or (name == "user_id" and "/admin/logs/user" in key):
            kind = kind_of(key, name) if name != "user_id" else "project"
            if not world.can_own(kind, level):
                return "operator"
    return level


def build_url(world: World, key: str, owner: str, overrides: dict[str, str] | None = None) -> str:
    """The row's URL with the owner's objects in it (fresh ones for a changing request);
    ``overrides`` gives some parameters' values instead."""
    method, path = key.split(" ", 1)
    fresh = method not in SAFE

    def value(name: str) -> str:
        if overrides and name in overrides:
            return overrides[name]
        if name == "user_id":
            if path.startswith("/api/admin/logs/user") and method in SAFE:
                return str(world.users[owner])
            return str(world.fresh("user", owner))
        if name == "project_id" and path.startswith("/api/data/"):
            return str(world.project_of(owner))  # where the owner's files are
        if name == "path":
            return str(world.fresh("file", owner) if fresh else world.get("file", owner))
        if name in OWNED:
            kind = kind_of(key, name)
            return str(world.fresh(kind, owner) if fresh else world.get(kind, owner))
        if name == "event_id":
            return str(world.get("history", "developer"))
        if name == "group_id":
            return str(world.groups[DATA_GROUP])
        if name == "script_id":
            return str(world.scripts[SESSION_SCRIPT if "proxy" in path else BATCH_SCRIPT])
        if name == "name":
            if "/conda/" in path:
                return "base"
            return "line_readings.csv" if "/examples/" in path else "authz.png"
        if name == "filename":
            return STATIC_FILES[path.split("/<", 1)[0]]
        return {"language": "en", "backup_date": "2020-01-01"}[name]

    return PARAM.sub(lambda match: value(match.group(2)), path)


FORM_ROUTES = ("/login", "/logout", "/account/password", "/admin/discover")


def accept_for(path: str) -> dict[str, str]:
    """What a browser (HTML pages) or an API client (JSON) sends."""
    if path.startswith("/api/"):
        return {"Accept": "application/json"}
    return {"Accept": "text/html,application/xhtml+xml"}


def ask(world: World, key: str, cell: Cell, body: Any = None) -> int:
    """One cell: the status the app answers (the body read and the response closed)."""
    method, rule = key.split(" ", 1)
    url = build_url(world, key, cell.owner)
    caller = cell.caller
    if caller is not None and key in FRESH_CALLERS:
        level = caller.rstrip("2")
        caller = f"fresh{next(world.counter)}"
        world.add_user(caller, level)
    client = world.client(caller)
    options: dict[str, Any] = {}
    if method in ("POST", "PUT", "DELETE"):
        if rule in FORM_ROUTES:
            options["data"] = body if body is not None else {}
        elif body is not None or method != "DELETE":
            options["json"] = body if body is not None else {}
    response = client.client.open(
        url, method=method, headers=client._headers(accept_for(rule)), **options
    )
    try:
        response.get_data()  # a streamed answer runs to its end inside its request
    finally:
        response.close()
    return int(response.status_code)


# Rows whose request ends the caller's login: each cell logs in a new user of its level.
FRESH_CALLERS = {"POST /api/auth/logout", "POST /logout"}
