"""Who is asking: the manager's signed session cookie (or an API token), cached for seconds."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from itsdangerous import BadSignature
from werkzeug.http import dump_cookie

from manager.proxy.headers import split_cookies

log = logging.getLogger("scriptsmanager.proxy")

AUTH_TTL = 2.0  # seconds a verified cookie or token is trusted without a database look-up
REFRESH_AFTER = 60.0  # re-sign the session cookie once it is this old, as Flask would on a page
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Caller:
    """The logged-in user behind a request."""

    user_id: int
    is_admin: bool


@dataclass(frozen=True)
class Identity:
    """What the request's credentials resolve to, and the Cookie header left for the script."""

    caller: Caller | None
    cookie: str
    used_token: bool = False
    refreshed_session: str | None = None  # a Set-Cookie value extending the manager's session
    login_id: str | None = None  # the browser login behind a session cookie
    session_key: str | None = None  # a session host's cookie holds for this session only
    manager_origin: str | None = None  # where the manager is, seen from a session host


@dataclass(frozen=True)
class _Session:
    caller: Caller
    data: dict[str, Any]
    signed_at: float  # Unix time the cookie was signed


def caller_if_live(app: Flask, user_id: int, login_id: str | None) -> Caller | None:
    """The caller when the user is active and (for a browser login) the login is not revoked."""
    from manager.extensions import db
    from manager.models import User, UserLogin

    with app.app_context():
        try:
            user = db.session.get(User, user_id)
            if user is None or not user.is_active:
                return None
            if login_id is not None:
                login = db.session.get(UserLogin, login_id)
                if login is None or login.user_id != user_id or login.revoked_at is not None:
                    return None
            return Caller(user.id, user.is_admin)
        finally:
            db.session.remove()


class TtlCache:
    """A small dict with per-entry expiry.

    Expired entries are swept out as new ones come in (a scan at most once per ``ttl``), so it
    holds about what the last ``ttl`` seconds put in: keys such as a cookie value change with
    every login, ticket and re-signed session cookie, and an entry kept past its expiry is
    memory the process never gets back. Past ``max_entries`` (a burst) it is emptied wholesale.
    """

    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[Any, tuple[float, Any]] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Any, now: float) -> Any:
        entry = self._data.get(key)
        if entry is None or entry[0] < now:
            return None
        return entry[1]

    def put(self, key: Any, value: Any, now: float, ttl: float | None = None) -> None:
        if now >= self._next_sweep:
            self._sweep(now)
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (now + (self.ttl if ttl is None else ttl), value)

    def _sweep(self, now: float) -> None:
        for key in [key for key, (until, _) in self._data.items() if until < now]:
            del self._data[key]
        self._next_sweep = now + self.ttl

    def pop(self, key: Any) -> None:
        self._data.pop(key, None)

    def drop_values(self, unwanted: Callable[[Any], bool]) -> None:
        """Forget every entry whose value ``unwanted`` says no longer holds."""
        for key, (_, value) in list(self._data.items()):
            if unwanted(value):
                self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


class Authenticator:
    """Resolve a request's manager credentials to a Caller without touching Flask's machinery.

    The cookie is verified with the app's own session serializer (so signing keys, salt and
    ``PERMANENT_SESSION_LIFETIME`` are the app's), and the user row is read at most once per
    ``AUTH_TTL`` seconds per cookie: a deactivated user is shut out within that time.
    """

    def __init__(
        self,
        app: Flask,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.clock = clock
        self.wall_clock = wall_clock
        self.cookie_name: str = app.config.get("SESSION_COOKIE_NAME") or "session"
        self.manager_cookies = frozenset(
            {self.cookie_name, app.config.get("REMEMBER_COOKIE_NAME") or "remember_token"}
        )
        self._headers = TtlCache(AUTH_TTL)  # raw Cookie header -> (session value, kept cookies)
        self._sessions = TtlCache(AUTH_TTL)  # session cookie value -> Caller | None
        self._tokens = TtlCache(AUTH_TTL)  # sha256(token) -> Caller | None

    def identify(self, environ: Mapping[str, Any]) -> Identity:
        """Return the caller (None when anonymous) and the Cookie header to forward."""
        now = self.clock()
        header = environ.get("HTTP_COOKIE", "")
        split = self._headers.get(header, now) if header else ("", "")
        if split is None:
            dropped, kept = split_cookies(header, self.manager_cookies)
            split = (dropped.get(self.cookie_name, ""), kept)
            self._headers.put(header, split, now)
        session_value, kept = split
        if session_value:
            session = self._from_session(session_value, now)
            if session is not None:
                refreshed = None
                if self.wall_clock() - session.signed_at > REFRESH_AFTER:
                    refreshed = self._refreshed_cookie(session)
                login_id = session.data.get("_login_id")
                return Identity(
                    session.caller,
                    kept,
                    refreshed_session=refreshed,
                    login_id=login_id if isinstance(login_id, str) else None,
                )
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization[:7].lower() == "bearer ":
            caller = self._from_token(authorization[7:].strip(), now)
            if caller is not None:
                return Identity(caller, kept, used_token=True)
        return Identity(None, kept)

    def _from_session(self, value: str, now: float) -> _Session | None:
        cached = self._sessions.get(value, now)
        if cached is not None:
            return cached or None
        session = self._verify_session(value)
        self._sessions.put(value, session or False, now)
        return session

    def _verify_session(self, value: str) -> _Session | None:
        serializer = self._serializer()
        if serializer is None:
            return None
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return None
        user_id = data.get("_user_id") if isinstance(data, dict) else None
        if not isinstance(user_id, str) or not user_id.isdigit():
            return None
        login_id = data.get("_login_id")
        if not isinstance(login_id, str) or not login_id:
            return None  # every browser login names its row; a cookie without one is not one
        caller = caller_if_live(self.app, int(user_id), login_id)
        return _Session(caller, data, signed.timestamp()) if caller else None

    def _serializer(self) -> Any:
        interface = self.app.session_interface
        return interface.get_signing_serializer(self.app)  # type: ignore[attr-defined]

    def _refreshed_cookie(self, session: _Session) -> str | None:
        """The session cookie signed again (same content), as Flask refreshes it on each page."""
        serializer = self._serializer()
        if serializer is None:
            return None
        app, interface = self.app, self.app.session_interface
        expires = None
        if session.data.get("_permanent"):
            expires = self.wall_clock() + app.permanent_session_lifetime.total_seconds()
        return dump_cookie(
            self.cookie_name,
            serializer.dumps(session.data),
            expires=expires,
            path=interface.get_cookie_path(app),
            domain=interface.get_cookie_domain(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
        )

    def caller_for_token(self, token: str) -> Caller | None:
        """The caller behind a manager API token (cached), None when it is not one."""
        return self._from_token(token, self.clock())

    def forget(self, *_: Any, **__: Any) -> None:
        """Drop cached answers (a login of this process just ended)."""
        self._sessions.clear()
        self._tokens.clear()

    def _from_token(self, token: str, now: float) -> Caller | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._tokens.get(digest, now)
        if cached is not None:
            return cached or None
        caller = self._load_token(token)
        self._tokens.put(digest, caller or False, now)
        return caller

    def _load_token(self, token: str) -> Caller | None:
        from manager.auth.service import user_for_token
        from manager.extensions import db

        with self.app.app_context():
            try:
                user = user_for_token(db.session, token)
                if user is None:
                    return None
                caller = Caller(user.id, user.is_admin)
                db.session.commit()  # records the token's last use
                return caller
            finally:
                db.session.remove()
