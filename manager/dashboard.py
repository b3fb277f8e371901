"""What the dashboard shows beside the groups: favourites, recent runs, system status."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from manager.extensions import DbSession
from manager.models import CondaEnvironment, Execution, Script, ScriptFavorite, User
from manager.presenters import visible_groups, visible_scripts

RECENT_LIMIT = 8
PING_TTL = 5.0  # seconds a dashboard shows the same engine status (asking took 20+ ms a page)

_pings: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, Any]]] = weakref.WeakKeyDictionary()
_pings_lock = threading.Lock()


def engine_ping(backend: Any) -> dict[str, Any]:
    """``backend.ping()``, asked at most every ``PING_TTL`` seconds per backend (the admin
    pages ask it every time)."""
    now = time.monotonic()
    with _pings_lock:
        kept = _pings.get(backend)
    if kept is not None and now - kept[0] < PING_TTL:
        return kept[1]
    answer = backend.ping()
    with _pings_lock:
        _pings[backend] = (now, answer)
    return answer


def may_see(script: Script, user: User) -> bool:
    return bool(visible_groups([script.group], user)) and script in visible_scripts(
        script.group, user
    )


def set_favorite(db: DbSession, user_id: int, script_id: int, starred: bool) -> bool:
    """Star or unstar a script; returns whether anything changed."""
    row = db.execute(
        select(ScriptFavorite).where(
            ScriptFavorite.user_id == user_id, ScriptFavorite.script_id == script_id
        )
    ).scalar()
    if starred and row is None:
        db.add(ScriptFavorite(user_id=user_id, script_id=script_id))
        db.flush()
        return True
    if not starred and row is not None:
        db.delete(row)
        return True
    return False


def favorite_ids(db: DbSession, user_id: int) -> set[int]:
    return set(
        db.execute(select(ScriptFavorite.script_id).where(ScriptFavorite.user_id == user_id))
        .scalars()
        .all()
    )


def favorite_scripts(db: DbSession, user: User) -> list[Script]:
    """The scripts the user starred and may still see, in the order starred."""
    rows = db.execute(
        select(Script)
        .join(ScriptFavorite, ScriptFavorite.script_id == Script.id)
        .where(ScriptFavorite.user_id == user.id)
        .order_by(ScriptFavorite.id)
    ).scalars()
    return [script for script in rows if may_see(script, user)]


def recent_scripts(db: DbSession, user: User, limit: int = RECENT_LIMIT) -> list[dict[str, Any]]:
    """The scripts the user ran last (newest first), each with its latest run's status."""
    latest = (
        select(Execution.script_id, func.max(Execution.id).label("last_id"))
        .where(Execution.user_id == user.id, Execution.script_id.is_not(None))
        .group_by(Execution.script_id)
        .subquery()
    )
    rows = db.execute(
        select(Execution, Script)
        .join(latest, latest.c.last_id == Execution.id)
        .join(Script, Script.id == Execution.script_id)
        .order_by(Execution.id.desc())
        .limit(limit * 2)
    ).all()
    found = []
    for execution, script in rows:
        if not may_see(script, user):
            continue
        found.append(
            {
                "script": script,
                "execution_id": execution.execution_uuid,
                "status": execution.status,
                "start_time": execution.start_time,
                "scheduled": "scheduled" in (execution.tags or "").split(","),
            }
        )
        if len(found) == limit:
            break
    return found


def system_status(db: DbSession, engine_ping: dict[str, Any]) -> dict[str, Any]:
    """Database, container engine and environment images, each ``ok`` or not, with a detail."""
    try:
        db.execute(text("SELECT 1"))
        database = {"status": "ok", "detail": db.get_bind().dialect.name}
    except SQLAlchemyError as exc:
        db.rollback()
        database = {"status": "error", "detail": exc.__class__.__name__}
    engine = {
        "status": "ok" if engine_ping.get("status") == "ok" else "error",
        "detail": engine_ping.get("version") or engine_ping.get("error") or "",
    }
    try:
        envs = list(db.execute(select(CondaEnvironment).order_by(CondaEnvironment.name)).scalars())
    except SQLAlchemyError:
        db.rollback()
        envs = []
    built = [env.name for env in envs if env.image_state == "built"]
    not_built = [env.name for env in envs if env.image_state != "built"]
    images = {
        "status": "ok" if envs and not not_built else "warning" if envs else "unknown",
        "built": built,
        "not_built": not_built,
    }
    return {"database": database, "container_engine": engine, "images": images}
