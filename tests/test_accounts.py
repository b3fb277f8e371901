"""Accounts: login and logout (HTML and JSON), rate limits, tokens, roles, user management."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html
    )
    assert match, "page carries no CSRF token"
    return match.group(1)


def test_html_login_and_logout(client, make_user):
    make_user("olga", "operator")
    page = client.get("/login")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "olga", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "olga" in dashboard.get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": csrf_from(dashboard.get_data(True))})
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_html_login_without_csrf_token_is_refused(client, make_user):
    make_user("olga", "operator")
    response = client.post("/login", data={"username": "olga", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)


def test_wrong_password_gives_a_clear_message(client, make_user):
    make_user("olga", "operator")
    response = client.post("/api/auth/login", json={"username": "olga", "password": "nope"})
    assert response.status_code == 401
    assert response.get_json()["message"] == "Wrong username or password."


def test_api_login_user_and_logout(api, make_user):
    make_user("olga", "operator")
    session = api("olga")
    me = session.get("/api/auth/user").get_json()["user"]
    assert me["username"] == "olga" and me["user_level"] == "operator"
    assert me["active_project"]["project_name"] == "project_default"
    assert session.post("/api/auth/logout").status_code == 200
    assert session.get("/api/auth/user").status_code == 401


def test_cookie_json_requests_need_the_csrf_header(api, make_user):
    make_user("olga", "operator")
    session = api("olga")
    refused = session.client.post("/api/user/preferences", json={"theme": "dark"})
    assert refused.status_code == 400
    assert session.post("/api/user/preferences", json={"theme": "dark"}).status_code == 200


def test_failed_logins_bring_a_delay_then_the_right_password_works(app, client, make_user):
    from manager.extensions import db
    from manager.models import LoginAttempt

    make_user("olga", "operator")
    limit = app.config["SM_LOGIN_MAX_ATTEMPTS"]
    for _ in range(limit):
        bad = client.post("/api/auth/login", json={"username": "olga", "password": "bad"})
        assert bad.status_code == 401
    held = client.post("/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert held.status_code == 429
    assert "Wait 1 seconds" in held.get_json()["message"]
    assert held.headers["Retry-After"] == "1"
    # The delay passes (the failures are moved back in time rather than sleeping): no lock.
    with app.app_context():
        for attempt in db.session.execute(select(LoginAttempt)).scalars():
            attempt.attempted_at -= __import__("datetime").timedelta(seconds=2)
        db.session.commit()
    ok = client.post("/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert ok.status_code == 200


def test_inactive_user_cannot_log_in(api, make_user):
    make_user("gone", "operator", is_active=False)
    response = api().login("gone")
    assert response.status_code == 401


def test_session_times_out(app, make_user):
    make_user("olga", "operator")
    assert app.permanent_session_lifetime.total_seconds() == 480 * 60
    app.config["PERMANENT_SESSION_LIFETIME"] = 1
    app.permanent_session_lifetime = __import__("datetime").timedelta(seconds=1)
    client = app.test_client()
    client.post("/api/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert client.get("/api/auth/user").status_code == 200
    import time

    time.sleep(2.1)
    assert client.get("/api/auth/user").status_code == 401


def test_bearer_token_works_without_csrf_and_can_be_revoked(app, api, make_user):
    make_user("bot", "operator")
    session = api("bot")
    created = session.post("/api/user/tokens", json={"name": "ci"})
    assert created.status_code == 201
    token = created.get_json()["token"]
    bare = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert bare.get("/api/auth/user", headers=headers).get_json()["user"]["username"] == "bot"
    assert (
        bare.post("/api/user/preferences", json={"language": "fr"}, headers=headers).status_code
        == 200
    )
    with app.app_context():
        from manager.extensions import db
        from manager.models import ApiToken

        stored = db.session.execute(select(ApiToken)).scalar_one()
        assert token not in stored.token_hash  # only the hash is at rest
    token_id = created.get_json()["id"]
    assert session.delete(f"/api/user/tokens/{token_id}").status_code == 200
    assert bare.get("/api/auth/user", headers=headers).status_code == 401


def test_create_token_cli_prints_a_working_token(app, app_config, make_user, monkeypatch, capsys):
    from manager.cli import main

    make_user("bot", "operator")
    for key, value in app_config.items():
        if key.startswith("SM_") and isinstance(value, str):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", app_config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    assert main(["create-token", "bot"]) == 0
    token = capsys.readouterr().out.strip()
    response = app.test_client().get("/api/auth/user", headers={"Authorization": f"Bearer {token}"})
    assert response.get_json()["user"]["username"] == "bot"
    assert main(["create-token", "nobody"]) == 2


@pytest.mark.parametrize(
    "level, status",
    [
        ("viewer", 403),
        ("operator", 403),
        ("developer", 403),
        ("admin", 200),
    ],
)
def test_user_management_is_admin_only(api, make_user, level, status):
    make_user("someone", level)
    assert api("someone").get("/api/admin/users").status_code == status


def test_admin_creates_updates_and_deactivates_users(api, make_user, app):
    make_user("root", "admin")
    admin = api("root")
    created = admin.post(
        "/api/admin/users",
        json={
            "username": "dev1",
            "email": "dev1@example.org",
            "password": "longenough",
            "user_level": "developer",
        },
    )
    assert created.status_code == 201
    user_id = created.get_json()["user"]["id"]
    duplicate = admin.post(
        "/api/admin/users",
        json={"username": "dev1", "password": "longenough", "user_level": "developer"},
    )
    assert duplicate.status_code == 409
    bad = admin.post(
        "/api/admin/users", json={"username": "x", "password": "short", "user_level": "boss"}
    )
    assert bad.status_code == 400 and "Username" in bad.get_json()["message"]
    updated = admin.put(f"/api/admin/users/{user_id}", json={"user_level": "operator"})
    assert updated.get_json()["user"]["user_level"] == "operator"
    bad_level = admin.put(f"/api/admin/users/{user_id}", json={"user_level": "boss"})
    assert bad_level.status_code == 400
    assert admin.delete(f"/api/admin/users/{user_id}").status_code == 200
    listed = {u["username"]: u for u in admin.get("/api/admin/users").get_json()["users"]}
    assert listed["dev1"]["is_active"] is False  # kept, not deleted
    assert api().login("dev1", "longenough").status_code == 401
    assert admin.put("/api/admin/users/99999", json={}).status_code == 404


def test_last_admin_cannot_lock_everyone_out(api, make_user):
    root_id = make_user("root", "admin")
    admin = api("root")
    response = admin.put(f"/api/admin/users/{root_id}", json={"user_level": "operator"})
    assert response.status_code == 400
    assert "last active admin" in response.get_json()["message"]
    assert admin.delete(f"/api/admin/users/{root_id}").status_code == 400


def test_preferences_apply_at_once_without_logout(api, make_user):
    make_user("olga", "operator")
    session = api("olga")
    assert (
        session.post("/api/user/preferences", json={"language": "es", "theme": "dark"}).status_code
        == 200
    )
    me = session.get("/api/auth/user").get_json()["user"]
    assert (me["preferred_language"], me["preferred_theme"]) == ("es", "dark")
    page = session.get("/").get_data(as_text=True)
    assert 'lang="es"' in page and 'data-bs-theme="dark"' in page
    assert session.post("/api/user/preferences", json={"language": "de"}).status_code == 400
    assert session.post("/api/user/preferences", json={"colour": "red"}).status_code == 400


def test_every_change_is_audited_in_table_and_files(app, api, make_user, app_config):
    from pathlib import Path

    from manager.extensions import db
    from manager.models import AuditEvent

    make_user("root", "admin")
    admin = api("root")
    admin.post(
        "/api/admin/users",
        json={"username": "op2", "password": "longenough", "user_level": "operator"},
    )
    admin.post("/api/user/preferences", json={"theme": "dark"})
    with app.app_context():
        actions = [e.action for e in db.session.execute(select(AuditEvent)).scalars()]
    assert {"login", "user_created", "preferences_updated"} <= set(actions)
    logs = Path(app_config["SM_LOG_DIR"]) / "audit"
    assert "user_created" in (logs / "admin_actions.log").read_text()
    assert "preferences_updated" in (logs / "user_actions.log").read_text()


def test_first_admin_is_created_once_with_a_printed_password(app):
    from manager.auth.service import ensure_first_admin, verify_password
    from manager.extensions import db
    from manager.models import User

    with app.app_context():
        generated = ensure_first_admin(db.session, "admin", None)
        db.session.commit()
        assert generated and len(generated) >= 12
        assert ensure_first_admin(db.session, "admin", None) is None
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert verify_password(generated, admin.password_hash)
        assert admin.password_hash.startswith("$2")  # bcrypt
