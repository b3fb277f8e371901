"""Revocable browser logins: the signed session cookie names a ``UserLogin`` row.

A cookie alone proves nothing once its row is revoked: logout ends that login, a password
change, an admin reset or a deactivation ends all of the user's logins.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from manager.extensions import DbSession
from manager.models import User, UserLogin, utcnow

# The Flask session key holding the login id.
SESSION_KEY = "_login_id"
# last_seen is written at most this often per login, not on every request.
TOUCH_INTERVAL = timedelta(seconds=60)
# Revoked rows are kept this long (for the admin's view), then purged.
KEEP_REVOKED = timedelta(days=30)


def start_login(session: DbSession, user: User, address: str = "", user_agent: str = "") -> str:
    """Record a new login for ``user``; returns its id (to store in the session cookie)."""
    login_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        UserLogin(
            id=login_id,
            user_id=user.id,
            created_at=now,
            last_seen=now,
            address=(address or "")[:64],
            user_agent=(user_agent or "")[:255],
        )
    )
    return login_id


def login_is_live(session: DbSession, login_id: str, user_id: int) -> bool:
    """Whether ``login_id`` is an unrevoked login of ``user_id`` and that user is active.

    Read-only; callers (the manager's request hook, the session-host proxy) may cache the
    answer for a few seconds.
    """
    if not login_id or not isinstance(login_id, str) or len(login_id) > 64:
        return False
    row = session.execute(
        select(UserLogin.revoked_at, User.is_active)
        .join(User, User.id == UserLogin.user_id)
        .where(UserLogin.id == login_id, UserLogin.user_id == user_id)
    ).first()
    return row is not None and row.revoked_at is None and bool(row.is_active)


def check_and_touch(
    session: DbSession, login_id: Any, user_id: int, now: datetime | None = None
) -> tuple[bool, bool]:
    """For the manager's own requests: (live, touched).

    ``touched`` says ``last_seen`` was moved forward (at most once per TOUCH_INTERVAL per
    login), so the caller has a write to commit.
    """
    if not isinstance(login_id, str) or not login_id or len(login_id) > 64:
        return False, False
    row = session.execute(
        select(UserLogin.revoked_at, UserLogin.last_seen, User.is_active)
        .join(User, User.id == UserLogin.user_id)
        .where(UserLogin.id == login_id, UserLogin.user_id == user_id)
    ).first()
    if row is None or row.revoked_at is not None or not row.is_active:
        return False, False
    now = now or utcnow()
    if row.last_seen is not None and row.last_seen >= now - TOUCH_INTERVAL:
        return True, False
    return True, touch(session, login_id, now)


def touch(session: DbSession, login_id: str, now: datetime | None = None) -> bool:
    """Move ``last_seen`` forward when it is older than TOUCH_INTERVAL; True when written."""
    now = now or utcnow()
    result = session.execute(
        update(UserLogin)
        .where(
            UserLogin.id == login_id,
            UserLogin.revoked_at.is_(None),
            (UserLogin.last_seen.is_(None)) | (UserLogin.last_seen < now - TOUCH_INTERVAL),
        )
        .values(last_seen=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_login(session: DbSession, login_id: str | None) -> None:
    """Revoke one login (logout). Unknown or already revoked ids are ignored."""
    if not login_id:
        return
    session.execute(
        update(UserLogin)
        .where(UserLogin.id == login_id, UserLogin.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def end_all_logins(session: DbSession, user_id: int, *, keep: str | None = None) -> int:
    """Revoke every live login of ``user_id`` except ``keep``; returns how many were ended."""
    query = update(UserLogin).where(UserLogin.user_id == user_id, UserLogin.revoked_at.is_(None))
    if keep:
        query = query.where(UserLogin.id != keep)
    result = session.execute(
        query.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def live_logins(session: DbSession, user_id: int) -> list[UserLogin]:
    """The user's unrevoked logins, newest first."""
    return list(
        session.execute(
            select(UserLogin)
            .where(UserLogin.user_id == user_id, UserLogin.revoked_at.is_(None))
            .order_by(UserLogin.created_at.desc())
        ).scalars()
    )


def purge(
    session: DbSession, idle: timedelta, user_id: int | None = None, now: datetime | None = None
) -> int:
    """Delete logins revoked more than KEEP_REVOKED ago, and live ones unseen for longer than
    ``idle`` (their cookie has expired anyway); only ``user_id``'s when given (cheap, at each
    login). Returns how many rows went."""
    now = now or utcnow()
    query = delete(UserLogin).where(
        (UserLogin.revoked_at < now - KEEP_REVOKED)
        | (UserLogin.revoked_at.is_(None) & (UserLogin.last_seen < now - idle))
    )
    if user_id is not None:
        query = query.where(UserLogin.user_id == user_id)
    result = session.execute(query.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def to_dict(login: UserLogin, *, current: bool = False) -> dict:
    """A login for display; its id (a bearer secret) is never shown."""
    return {
        "created_at": login.created_at.isoformat() if login.created_at else None,
        "last_seen": login.last_seen.isoformat() if login.last_seen else None,
        "address": login.address,
        "user_agent": login.user_agent,
        "current": current,
    }
