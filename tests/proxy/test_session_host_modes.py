"""The other session-host modes: one shared host apart from the manager, and (unsafe, warned
about) the manager's own origin. werkzeug managers with the mode set, real upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from conftest import Manager, Upstream, serve_dev_manager

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Manager]:
    yield from serve_dev_manager(tmp_path_factory, upstream, {"SM_SESSION_HOST_MODE": "shared"})


@pytest.fixture(scope="module")
def same_origin(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Manager]:
    yield from serve_dev_manager(tmp_path_factory, upstream, {"SM_SESSION_HOST_MODE": "manager"})


def test_shared_mode_serves_every_session_from_one_host(shared: Manager) -> None:
    http = shared.login("alice", enter=False)
    page = http.get(shared.manager_url("alice", "/echo"), timeout=10)
    assert page.status_code == 200
    assert page.url == f"http://sessions.localhost:{shared.port}{shared.sessions['alice']}/echo"
    cookie = next(c for c in http.cookies if c.name == "sm_host")
    assert cookie.domain == "sessions.localhost" and cookie.path == shared.sessions["alice"] + "/"
    # Alice's cookie is scoped to her session's path and holds for that session only.
    dead = f"http://sessions.localhost:{shared.port}{shared.sessions['dead']}/echo"
    forged = requests.get(dead, headers={**JSON, "Cookie": f"sm_host={cookie.value}"})
    assert forged.status_code == 401
    # Nothing of the manager on the shared host either.
    api = http.get(f"http://sessions.localhost:{shared.port}/api/auth/user", headers=JSON)
    assert api.status_code == 404
    # A session host name of the per-session mode is just another name for the manager here.
    assert requests.get(shared.url("alice", "/echo"), headers=JSON).status_code != 200


def test_manager_mode_serves_on_the_managers_origin_and_warns(same_origin: Manager) -> None:
    http = same_origin.login("root", enter=False)
    echo = http.get(same_origin.manager_url("alice", "/echo"), headers=JSON, timeout=10)
    assert echo.status_code == 200 and echo.url.startswith(same_origin.base)
    assert echo.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    page = http.get(f"{same_origin.base}/", timeout=10)
    assert 'data-sm="session-host-warning"' in page.text
    assert "can act as whoever opens it" in page.text


def test_admins_are_told_when_no_session_domain_fits(manager: Manager) -> None:
    http = manager.login("root", enter=False)
    on_localhost = http.get(f"{manager.base}/", timeout=10)
    assert 'data-sm="session-host-warning"' not in on_localhost.text
    elsewhere = requests.get(
        f"http://127.0.0.1:{manager.port}/",
        headers={"Host": f"scripts.example.org:{manager.port}", "Cookie": manager.cookie(http)},
        timeout=10,
    )
    assert 'data-sm="session-host-warning"' in elsewhere.text
    assert "SM_SESSION_DOMAIN" in elsewhere.text
