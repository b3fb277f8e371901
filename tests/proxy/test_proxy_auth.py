"""The proxy's own check of the manager's session cookie and API tokens."""

from __future__ import annotations

from typing import Any

from flask import Flask

from manager.extensions import db
from manager.models import User
from manager.proxy.auth import REFRESH_AFTER, Authenticator, Caller


def environ(cookie: str = "", authorization: str = "") -> dict[str, Any]:
    env: dict[str, Any] = {}
    if cookie:
        env["HTTP_COOKIE"] = cookie
    if authorization:
        env["HTTP_AUTHORIZATION"] = authorization
    return env


def session_cookie(app: Flask, username: str) -> str:
    client = app.test_client()
    response = client.post(
        "/api/auth/login", json={"username": username, "password": "password123"}
    )
    assert response.status_code == 200
    cookie = client.get_cookie("sm_session")
    assert cookie is not None
    return cookie.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cookie_identifies_the_user_and_is_cached(app: Flask, make_user: Any) -> None:
    alice = make_user("alice")
    root = make_user("root", level="admin")
    clock = Clock()
    auth = Authenticator(app, clock=clock)
    value = session_cookie(app, "alice")
    identity = auth.identify(environ(f"theme=dark; sm_session={value}; mine=1"))
    assert identity.caller == Caller(alice, False)
    assert identity.cookie == "theme=dark; mine=1"
    assert auth.identify(environ(f"sm_session={session_cookie(app, 'root')}")).caller == Caller(
        root, True
    )
    with app.app_context():
        db.session.get(User, alice).is_active = False  # type: ignore[union-attr]
        db.session.commit()
    assert auth.identify(environ(f"sm_session={value}")).caller == Caller(alice, False)  # cached
    clock.now += 10
    assert auth.identify(environ(f"sm_session={value}")).caller is None


def test_tampered_cookie_and_anonymous(app: Flask, make_user: Any) -> None:
    make_user("alice")
    auth = Authenticator(app)
    value = session_cookie(app, "alice")
    assert auth.identify(environ(f"sm_session={value[:-3]}abc")).caller is None
    assert auth.identify(environ("")).caller is None
    assert auth.identify(environ("sm_session=")).caller is None


def test_old_cookie_is_refreshed_like_flask_would(app: Flask, make_user: Any) -> None:
    make_user("alice")
    value = session_cookie(app, "alice")
    fresh = Authenticator(app).identify(environ(f"sm_session={value}"))
    assert fresh.refreshed_session is None
    later = Authenticator(app, wall_clock=lambda: __import__("time").time() + REFRESH_AFTER + 5)
    refreshed = later.identify(environ(f"sm_session={value}")).refreshed_session
    assert refreshed is not None and refreshed.startswith("sm_session=")
    assert "HttpOnly" in refreshed and "Path=/" in refreshed


def test_api_token(app: Flask, make_user: Any) -> None:
    from manager.auth.service import create_token

    alice = make_user("alice")
    with app.app_context():
        _, plain = create_token(db.session, db.session.get(User, alice))  # type: ignore[arg-type]
        db.session.commit()
    auth = Authenticator(app)
    identity = auth.identify(environ(authorization=f"Bearer {plain}"))
    assert identity.caller == Caller(alice, False) and identity.used_token
    assert auth.identify(environ(authorization="Bearer sm_wrong")).caller is None
    assert auth.identify(environ(authorization="Basic abc")).caller is None
