"""The session host's own cookie: valid for one session host, one session, one login.

A redeemed ticket becomes a signed, host-only cookie (``sm_host``) carrying who the caller is,
which login it came from, the host label and the session's execution uuid. On every request the
proxy checks the signature, that the label is this host's, that the session is still the one the
cookie was made for (a new session of the same script needs a new ticket), and, at most every
``LIVE_TTL`` seconds, that the user is active and the login not revoked (logout, password
change, deactivation). The manager's own session cookie is never accepted on a session host,
and this cookie means nothing to the manager (another name and another signing salt).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.http import dump_cookie

from manager.proxy.auth import Caller, TtlCache, caller_if_live
from manager.proxy.headers import split_cookies

COOKIE_NAME = "sm_host"
SALT = "sm-session-host"
LIVE_TTL = 1.0  # seconds a "user active, login live" answer is reused
CLAIMS_TTL = 5.0


@dataclass(frozen=True)
class HostClaims:
    """What a session host's cookie says."""

    user_id: int
    login_id: str | None
    label: str
    session_key: str
    manager_origin: str


class HostGate:
    """Makes and checks session-host cookies; answers are cached for a second or so."""

    def __init__(self, app: Flask, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self._claims = TtlCache(CLAIMS_TTL)  # cookie value -> HostClaims | False
        self._live = TtlCache(LIVE_TTL)  # (user_id, login_id) -> Caller | False
        self._split = TtlCache(CLAIMS_TTL)  # Cookie header -> (sm_host value, kept cookies)
        self._signer: URLSafeTimedSerializer | None = None

    def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            self._signer = URLSafeTimedSerializer(self.app.secret_key or "", salt=SALT)
        return self._signer

    def max_age(self) -> int:
        return int(self.app.permanent_session_lifetime.total_seconds())

    def set_cookie(self, claims: HostClaims, *, secure: bool, path: str) -> str:
        """The Set-Cookie value for a redeemed ticket: host-only (no Domain), HttpOnly."""
        value = self._serializer().dumps(
            [claims.user_id, claims.login_id, claims.label, claims.session_key,
             claims.manager_origin]
        )  # fmt: skip
        return dump_cookie(
            COOKIE_NAME,
            value,
            path=path,
            secure=secure,
            httponly=True,
            samesite="Lax",
            max_age=self.max_age(),
        )

    def split(self, header: str, forbidden: frozenset[str]) -> tuple[str, str]:
        """This host's cookie value and the Cookie header without the manager's cookies."""
        if not header:
            return "", ""
        now = self.clock()
        cached = self._split.get(header, now)
        if cached is None:
            dropped, kept = split_cookies(header, forbidden)
            cached = (dropped.get(COOKIE_NAME, ""), kept)
            self._split.put(header, cached, now)
        return cached

    def claims(self, value: str) -> HostClaims | None:
        now = self.clock()
        cached = self._claims.get(value, now)
        if cached is not None:
            return cached or None
        claims = self._verify(value)
        self._claims.put(value, claims or False, now)
        return claims

    def _verify(self, value: str) -> HostClaims | None:
        try:
            data = self._serializer().loads(value, max_age=self.max_age())
        except BadSignature:
            return None
        if not isinstance(data, list) or len(data) != 5:
            return None
        user_id, login_id, label, session_key, origin = data
        if not isinstance(user_id, int) or not isinstance(label, str):
            return None
        return HostClaims(user_id, login_id, label, str(session_key), str(origin))

    def caller(self, user_id: int, login_id: str | None) -> Caller | None:
        """The live caller behind a cookie or ticket, re-checked every LIVE_TTL seconds."""
        now = self.clock()
        key = (user_id, login_id)
        cached = self._live.get(key, now)
        if cached is not None:
            return cached or None
        caller = caller_if_live(self.app, user_id, login_id)
        self._live.put(key, caller or False, now)
        return caller

    def forget(self, *_: Any, **__: Any) -> None:
        """Drop cached answers (a login of this process just ended)."""
        self._live.clear()
        self._claims.clear()
