"""The other ways of being someone: API tokens (bearer), and logins whose user changed since.

An API token carries its owner's level and nothing more; a revoked token, a deactivated user
and a demoted user are refused at once, on the API, the pages and the proxy entry alike.
"""

from __future__ import annotations

from tests.authz.conftest import BATCH_SCRIPT, World
from tests.authz.matrix import build_url, owner_for, routes
from tests.authz.table import ROWS
from tests.authz.test_matrix import expected

JSON = {"Accept": "application/json"}


def token_for(world: World, name: str) -> tuple[int, str]:
    body = world.client(name).post("/api/user/tokens", json={"name": "authz bearer"}).get_json()
    return int(body["id"]), str(body["token"])


def test_a_token_opens_what_its_owner_may_open_and_no_more(world: World) -> None:
    """Every GET row of the API, as operator and viewer by token: the table's statuses."""
    bearer = world.app.test_client(use_cookies=False)
    wrong = []
    for level in ("viewer", "operator"):
        _, token = token_for(world, level)
        for key in routes(world.app):
            method, rule = key.split(" ", 1)
            if method != "GET" or not rule.startswith("/api/") or key not in ROWS:
                continue
            url = build_url(world, key, owner_for(world, key, level))
            response = bearer.get(url, headers={**JSON, "Authorization": f"Bearer {token}"})
            response.close()
            want = expected(key)[level]
            if str(response.status_code) != want:
                wrong.append(f"{key} as {level}: expected {want}, got {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_a_revoked_token_is_refused_at_once(world: World) -> None:
    token_id, token = token_for(world, "operator")
    bearer = world.app.test_client(use_cookies=False)
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    assert bearer.get("/api/auth/user", headers=headers).status_code == 200
    assert world.client("operator").delete(f"/api/user/tokens/{token_id}").status_code == 200
    assert bearer.get("/api/auth/user", headers=headers).status_code == 401
    # ...and another user may not revoke mine.
    other_id, other = token_for(world, "operator")
    assert world.client("operator2").delete(f"/api/user/tokens/{other_id}").status_code == 404
    assert (
        bearer.get("/api/auth/user", headers={**JSON, "Authorization": f"Bearer {other}"})
    ).status_code == 200


def test_a_deactivated_user_is_out_everywhere(world: World) -> None:
    name = f"leaver{next(world.counter)}"
    uid = world.add_user(name, "operator")
    client = world.client(name)
    _, token = token_for(world, name)
    sid = world.scripts[BATCH_SCRIPT]
    assert client.get("/api/auth/user").status_code == 200
    admin = world.client("admin")
    assert admin.delete(f"/api/admin/users/{uid}").status_code == 200
    assert client.get("/api/auth/user").status_code == 401
    assert client.post(f"/api/scripts/{sid}/execute", json={}).status_code == 401
    assert client.get("/logs", headers={"Accept": "text/html"}).status_code == 302
    bearer = world.app.test_client(use_cookies=False)
    auth = {**JSON, "Authorization": f"Bearer {token}"}
    assert bearer.get("/api/auth/user", headers=auth).status_code == 401
    relogin = world.app.test_client().post(
        "/api/auth/login", json={"username": name, "password": "password123"}
    )
    assert relogin.status_code in (401, 403)


def test_a_demoted_user_loses_the_levels_rights_at_once(world: World) -> None:
    name = f"demoted{next(world.counter)}"
    uid = world.add_user(name, "developer")
    client = world.client(name)
    sid = world.scripts[BATCH_SCRIPT]
    assert client.get(f"/api/scripts/{sid}/history").status_code == 200  # developer+
    admin = world.client("admin")
    answer = admin.put(f"/api/admin/users/{uid}", json={"user_level": "viewer"})
    assert answer.status_code == 200, answer.get_json()
    assert client.get(f"/api/scripts/{sid}/history").status_code == 403
    assert client.get(f"/api/scripts/{sid}/metadata").status_code == 404  # operator scripts
    assert client.post(f"/api/scripts/{sid}/execute", json={}).status_code == 404
    # Promotion to admin takes effect at once too; and back.
    assert admin.put(f"/api/admin/users/{uid}", json={"user_level": "admin"}).status_code == 200
    assert client.get("/api/admin/users").status_code == 200
    assert admin.put(f"/api/admin/users/{uid}", json={"user_level": "operator"}).status_code == 200
    assert client.get("/api/admin/users").status_code == 403


def test_a_logged_out_cookie_replayed_is_anonymous(world: World) -> None:
    """Logging out ends the login on the server: a copy of the old cookie opens nothing."""
    name = f"replayer{next(world.counter)}"
    world.add_user(name, "operator")
    client = world.client(name)
    cookie = "; ".join(f"{c.key}={c.value}" for c in client.client._cookies.values())
    copy = world.app.test_client(use_cookies=False)
    assert copy.get("/api/auth/user", headers={**JSON, "Cookie": cookie}).status_code == 200
    assert client.post("/api/auth/logout").status_code == 200
    assert copy.get("/api/auth/user", headers={**JSON, "Cookie": cookie}).status_code == 401
    page = copy.get("/logs", headers={"Accept": "text/html", "Cookie": cookie})
    assert page.status_code == 302
