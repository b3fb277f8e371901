"""The proxy's per-process caches stay the size of a few seconds of traffic, however long the
manager runs (bench/soak: the worker's RSS grew 4.4 MiB per 10 minutes while sessions opened
and closed; every new ticket, host cookie and re-signed session cookie was a new key, and an
expired entry stayed until 10,000 of them had piled up)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from manager.proxy.auth import Authenticator, Caller, TtlCache
from manager.proxy.hostauth import COOKIE_NAME, HostClaims, HostGate
from manager.sessions.fake import FakeScript
from tests.proxy.test_proxy_auth import Clock, environ, session_cookie
from tests.support.catalog import script_id, tick


def test_expired_entries_leave_the_cache():
    cache = TtlCache(ttl=2.0)
    for n in range(20_000):  # one new key every 0.1 s for 2,000 s
        cache.put(f"cookie-{n}", n, now=n / 10)
        assert cache.get(f"cookie-{n}", now=n / 10) == n
    assert len(cache) <= 2 * 2.0 * 10 + 1  # at most two TTLs' worth, not 10,000
    assert cache.get("cookie-19999", now=1999.9 + 1.9) == 19999  # live entries are kept
    assert cache.get("cookie-19999", now=1999.9 + 2.1) is None


def test_entries_with_their_own_ttl_are_swept_too():
    cache = TtlCache(ttl=1.5)
    for n in range(1_000):
        cache.put(("denied", n), "no", now=float(n), ttl=1.0)
        cache.put(("route", n), "yes", now=float(n))
    assert len(cache) <= 6


def test_new_session_cookies_do_not_pile_up_in_the_authenticator(app: Flask, make_user: Any):
    """A permanent Flask session is re-signed as the user browses: each value is a new key."""
    alice = make_user("alice")
    clock = Clock()
    auth = Authenticator(app, clock=clock)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data = serializer.loads(session_cookie(app, "alice"))
    for n in range(300):  # one re-signed cookie a second for five minutes
        value = serializer.dumps({**data, "n": n})
        identity = auth.identify(environ(f"theme=dark; sm_session={value}"))
        assert identity.caller == Caller(alice, False)
        clock.now += 1.0
    assert len(auth._headers) <= 5
    assert len(auth._sessions) <= 5


def test_host_cookies_of_ended_sessions_do_not_pile_up_in_the_gate(app: Flask):
    clock = Clock()
    gate = HostGate(app, clock=clock)
    for n in range(300):  # a session opened and closed every second: a new ticket, a new cookie
        claims = HostClaims(1, "login", f"p1-s2-u1-{n}", f"uuid-{n}", "http://localhost")
        value = gate.set_cookie(claims, secure=False, path="/").split(";")[0].split("=", 1)[1]
        header = f"{COOKIE_NAME}={value}; sm_session=manager-cookie"
        got, kept = gate.split(header, frozenset({COOKIE_NAME, "sm_session"}))
        assert got == value and kept == ""
        assert gate.claims(value) == claims
        clock.now += 1.0
    assert len(gate._split) <= 11
    assert len(gate._claims) <= 11


def test_an_ended_session_leaves_no_activity_mark(ready_app, make_user, api, fake):
    make_user("olga", "operator")
    olga = api("olga")
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    run = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)
    proxy = ready_app.extensions["sm_proxy"]
    proxy.touch(run)
    assert run in proxy._touched
    assert olga.post(f"/api/scripts/{sid}/stop", json={}).status_code == 200
    assert run not in proxy._touched
