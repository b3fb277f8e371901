"""Account services: passwords, login (throttled), API tokens, user management."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import bcrypt
from sqlalchemy import func, select

from manager.auth import logins, throttle
from manager.auth.throttle import ThrottlePolicy
from manager.db import gevent_patched
from manager.extensions import DbSession
from manager.models import LEVELS, ApiToken, User, utcnow
from manager.models.user import LANGUAGES, THEMES

TOKEN_PREFIX = "sm_"
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further


class AccountError(ValueError):
    """Bad input for an account operation; ``field`` names what was wrong."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


_hash_pool: Any = None


def _off_loop(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` on a native thread under the gevent worker, a plain call otherwise.

    A bcrypt hash is about 0.2 s of CPU (more on a busy host): on the event loop it would stop
    every other request for that long, fifty logins at once for seconds. bcrypt releases the
    GIL, so the loop goes on meanwhile. The threads are the hashes' own, as many as there are
    cores (more would not hash faster): a burst of logins does not queue the other work of
    gevent's shared pool (log rows, name lookups) behind it.
    """
    if not gevent_patched():
        return func(*args)
    global _hash_pool
    if _hash_pool is None:
        from gevent.threadpool import ThreadPool

        _hash_pool = ThreadPool(maxsize=max(1, os.cpu_count() or 1))
    return _hash_pool.apply(func, args)


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` (off the event loop under gevent, see ``_off_loop``)."""
    secret = password.encode("utf-8")
    return str(_off_loop(bcrypt.hashpw, secret, bcrypt.gensalt()).decode("ascii"))


def verify_password(password: str, password_hash: str) -> bool:
    """bcrypt's check (about 0.2 s of CPU), off the event loop under gevent (``_off_loop``)."""
    try:
        secret, hashed = password.encode("utf-8"), password_hash.encode("ascii")
    except UnicodeEncodeError:
        return False
    try:
        return bool(_off_loop(bcrypt.checkpw, secret, hashed))
    except ValueError:
        return False


# A real hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = bcrypt.hashpw(secrets.token_bytes(8), bcrypt.gensalt()).decode("ascii")


def check_password_policy(
    password: str, *, min_length: int = MIN_PASSWORD, username: str = "", field: str = "password"
) -> None:
    """Raise AccountError (naming ``field``) when ``password`` may not be used."""
    if len(password) < min_length:
        raise AccountError(f"Password must be at least {min_length} characters long.", field)
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError(
            f"Password must be at most {MAX_PASSWORD_BYTES} bytes long (about "
            f"{MAX_PASSWORD_BYTES} plain letters, fewer with accents or symbols).",
            field,
        )
    if username and password.strip().lower() == username.strip().lower():
        raise AccountError("Password must not be the username.", field)


def authenticate(
    session: DbSession,
    username: str,
    password: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> User | None:
    """Return the user when the credentials are right; None when wrong.

    Raises LoginThrottled when this address has failed too often for this account lately
    (the password is then not even checked). Commits what the session holds before the hash
    (no connection is kept through it); the caller commits the outcome (a failure is
    recorded).
    """
    username = (username or "").strip()
    throttle.check(session, username, address, policy, now)
    user = session.execute(
        select(User).where(func.lower(User.username) == username.lower())
    ).scalar_one_or_none()
    password_hash = user.password_hash if user else _DUMMY_HASH
    # End the read transaction before the hash: the request would otherwise keep its pooled
    # connection (and, after a write such as a login's last_seen, SQLite's single write
    # lock) for the whole hash and its wait for a hashing thread.
    session.commit()
    ok = verify_password(password or "", password_hash)
    if user is None or not ok or not user.is_active:
        throttle.record_failure(session, username, address, now)
        return None
    throttle.forget(session, username, address)
    user.last_login = utcnow()
    return user


def create_token(session: DbSession, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the plain token (shown once, never stored)."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name[:100],
        token_hash=hashlib.sha256(plain.encode()).hexdigest(),
        prefix=plain[:10],
    )
    session.add(token)
    return token, plain


def user_for_token(session: DbSession, plain: str) -> User | None:
    """The active user owning an unrevoked token, or None."""
    digest = hashlib.sha256(plain.encode()).hexdigest()
    token = session.execute(
        select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
    ).scalar_one_or_none()
    if token is None or not token.user.is_active:
        return None
    token.last_used = utcnow()
    return token.user


def revoke_token(session: DbSession, token: ApiToken) -> None:
    token.revoked_at = utcnow()


def _check_fields(
    data: dict[str, Any], *, creating: bool, min_password: int, username: str = ""
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "username" in data or creating:
        username = str(data.get("username") or "").strip()
        if not USERNAME_RE.match(username):
            raise AccountError(
                "Username must be 3-50 characters: letters, digits, '.', '_' or '-'.", "username"
            )
        clean["username"] = username
    if "email" in data or creating:
        email = str(data.get("email") or "").strip()
        if not email and creating and "username" in clean:
            email = f"{clean['username']}@localhost"
        if not EMAIL_RE.match(email) or len(email) > 100:
            raise AccountError("Email address is not valid.", "email")
        clean["email"] = email
    if "password" in data or creating:
        password = str(data.get("password") or "")
        check_password_policy(
            password, min_length=min_password, username=clean.get("username", username)
        )
        clean["password"] = password
    if "user_level" in data or creating:
        level = str(data.get("user_level") or "")
        if level not in LEVELS:
            raise AccountError(f"Level must be one of: {', '.join(LEVELS)}.", "user_level")
        clean["user_level"] = level
    if "preferred_language" in data:
        if data["preferred_language"] not in LANGUAGES:
            raise AccountError(
                f"Language must be one of: {', '.join(LANGUAGES)}.", "preferred_language"
            )
        clean["preferred_language"] = data["preferred_language"]
    if "preferred_theme" in data:
        if data["preferred_theme"] not in THEMES:
            raise AccountError(f"Theme must be one of: {', '.join(THEMES)}.", "preferred_theme")
        clean["preferred_theme"] = data["preferred_theme"]
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            raise AccountError("is_active must be true or false.", "is_active")
        clean["is_active"] = data["is_active"]
    return clean


def _ensure_unique(session: DbSession, clean: dict[str, Any], exclude_id: int | None) -> None:
    for column, field in ((User.username, "username"), (User.email, "email")):
        if field not in clean:
            continue
        query = select(User.id).where(func.lower(column) == clean[field].lower())
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        if session.execute(query).first():
            raise AccountError(f"That {field} is already taken.", field, status=409)


def create_user(
    session: DbSession, data: dict[str, Any], *, min_password: int = MIN_PASSWORD
) -> User:
    """Validate ``data`` and add a new user; raises AccountError with a readable message."""
    clean = _check_fields(data, creating=True, min_password=min_password)
    _ensure_unique(session, clean, None)
    user = User(
        username=clean["username"],
        email=clean["email"],
        password_hash=hash_password(clean["password"]),
        user_level=clean["user_level"],
        preferred_language=clean.get("preferred_language", "en"),
        preferred_theme=clean.get("preferred_theme", "light"),
        is_active=clean.get("is_active", True),
    )
    session.add(user)
    session.flush()
    return user


def active_admin_count(session: DbSession) -> int:
    return session.execute(
        select(func.count(User.id)).where(User.user_level == "admin", User.is_active.is_(True))
    ).scalar_one()


def update_user(
    session: DbSession,
    user: User,
    data: dict[str, Any],
    *,
    actor: User,
    min_password: int = MIN_PASSWORD,
    keep_login: str | None = None,
) -> dict:
    """Apply validated changes; returns {field: new value} (password shown as '***').

    A new password or a deactivation ends the user's browser logins (all but ``keep_login``
    when the actor changes their own password).
    """
    clean = _check_fields(data, creating=False, min_password=min_password, username=user.username)
    _ensure_unique(session, clean, user.id)
    demoting = clean.get("user_level", "admin") != "admin" or clean.get("is_active") is False
    if (
        user.user_level == "admin"
        and user.is_active
        and demoting
        and active_admin_count(session) <= 1
    ):
        raise AccountError("The last active admin cannot be demoted or deactivated.", "user_level")
    changes: dict[str, Any] = {}
    for field, value in clean.items():
        if field == "password":
            user.password_hash = hash_password(value)
            changes["password"] = "***"
        elif getattr(user, field) != value:
            setattr(user, field, value)
            changes[field] = value
    if "password" in changes:
        logins.end_all_logins(session, user.id, keep=keep_login if actor.id == user.id else None)
    if changes.get("is_active") is False:
        logins.end_all_logins(session, user.id)
    return changes


def deactivate_user(session: DbSession, user: User, *, actor: User) -> None:
    """Deactivate instead of delete, so the user's history stays."""
    if user.id == actor.id:
        raise AccountError("You cannot deactivate your own account.", "id")
    update_user(session, user, {"is_active": False}, actor=actor)
    for token in session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).scalars():
        token.revoked_at = utcnow()


def ensure_first_admin(session: DbSession, username: str, password: str | None) -> str | None:
    """Create the first admin when no admin exists.

    Returns the generated password when one had to be made (to print once), else None.
    """
    exists = session.execute(select(User.id).where(User.user_level == "admin")).first()
    if exists:
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    create_user(
        session,
        {
            "username": username,
            "password": password,
            "user_level": "admin",
            "email": f"{username}@localhost",
        },
    )
    return generated
