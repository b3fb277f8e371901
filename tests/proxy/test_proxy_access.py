"""Who may reach a session, and what the proxy says when it cannot show one."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests
from conftest import Manager

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}


def test_anonymous_browser_goes_to_login_and_comes_back(any_manager: Manager) -> None:
    """Session host -> the same path on the manager's origin -> its login page."""
    url = any_manager.url("alice", "/form?x=1")
    response = requests.get(url, headers=HTML, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    path = url.removeprefix(any_manager.origin("alice"))
    assert response.headers["Location"] == f"http://localhost:{any_manager.port}{path}"
    on_manager = requests.get(
        any_manager.manager_url("alice", "/form?x=1"),
        headers=HTML,
        allow_redirects=False,
        timeout=10,
    )
    assert on_manager.status_code == 302
    assert on_manager.headers["Location"] == f"/login?next={quote(path, safe='')}"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_anonymous_api_client_gets_401(any_manager: Manager, method: str) -> None:
    response = requests.request(method, any_manager.url("alice", "/echo"), headers=JSON, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == 401


def test_forged_or_expired_cookie_is_anonymous(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    value = http.cookies["sm_session"]
    forged = requests.get(
        any_manager.url("alice", "/echo"),
        headers=JSON,
        # Change a character well inside the signature (the last ones may only carry padding).
        cookies={"sm_session": value[:-10] + ("a" if value[-10] != "a" else "b") + value[-9:]},
        timeout=10,
    )
    assert forged.status_code == 401
    bad_token = requests.get(
        any_manager.url("alice", "/echo"),
        headers={**JSON, "Authorization": "Bearer sm_nope"},
        timeout=10,
    )
    assert bad_token.status_code == 401


@pytest.mark.parametrize("session", ["bob", "starting", "dead"])
def test_another_users_session_is_forbidden(any_manager: Manager, session: str) -> None:
    """The manager refuses a ticket into another user's session; without one, the session's
    host lets nobody in."""
    http = any_manager.login("alice" if session == "bob" else "bob")
    entry = http.get(any_manager.manager_url(session, "/echo"), headers=JSON, timeout=10)
    assert entry.status_code == 403
    response = http.get(any_manager.url(session, "/echo"), headers=JSON, timeout=10)
    assert response.status_code == 401


def test_url_user_id_is_checked_not_trusted(any_manager: Manager) -> None:
    """Alice putting Bob's id (or her own id on Bob's script) in the URL gets nothing."""
    http = any_manager.login("alice")
    ids = any_manager.ids
    bob_path = f"/project/1/script/2/user/{ids['bob']}/echo"
    as_alice = f"/project/1/script/2/user/{ids['alice']}/echo"
    assert http.get(any_manager.base + bob_path, headers=JSON, timeout=10).status_code == 403
    assert http.get(any_manager.base + as_alice, headers=JSON, timeout=10).status_code == 404
    # Alice's own session host does not serve Bob's path, cookie or not.
    on_alices_host = any_manager.origin("alice") + bob_path
    assert http.get(on_alices_host, headers=JSON, timeout=10).status_code == 404
    missing = f"/project/9/script/9/user/{ids['alice']}/"
    page = http.get(any_manager.base + missing, headers=HTML, timeout=10)
    assert page.status_code == 404 and "There is no such session" in page.text


def test_admin_may_inspect_any_session(any_manager: Manager) -> None:
    http = any_manager.login("root")
    echo = http.get(any_manager.url("bob", "/echo"), timeout=10)
    assert echo.status_code == 200 and echo.json()["path"] == "/echo"


def test_starting_session_page_refreshes_itself(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    page = http.get(any_manager.url("starting"), headers=HTML, timeout=10)
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "2"
    assert '<meta http-equiv="refresh" content="2">' in page.text
    assert "This session is starting" in page.text
    data = http.get(any_manager.url("starting"), headers=JSON, timeout=10)
    assert data.status_code == 503 and data.json()["retry_after"] == 2


@pytest.mark.parametrize("session", ["gone", "dead"])
def test_ended_or_unreachable_session_says_so(any_manager: Manager, session: str) -> None:
    http = any_manager.login("alice")
    page = http.get(any_manager.url(session, "/form"), headers=HTML, timeout=10)
    assert page.status_code == 502
    assert "This session has ended or cannot be reached" in page.text
    assert 'data-sm="to-dashboard"' in page.text
    assert "Traceback" not in page.text
    data = http.get(any_manager.manager_url(session, "/echo"), headers=JSON, timeout=10)
    assert data.status_code == 502 and data.json()["error"] == 502


def test_activity_is_reported_to_the_resolver(manager: Manager) -> None:
    http = manager.login("bob")
    before = http.get(f"{manager.base}/_test/touched", timeout=10).json().get("exec-bob", 0)
    http.get(manager.url("bob", "/echo"), timeout=10)
    time.sleep(1.1)  # reports are at most one a second per session
    http.get(manager.url("bob", "/echo"), timeout=10)
    after = http.get(f"{manager.base}/_test/touched", timeout=10).json()["exec-bob"]
    assert after >= before + 1


def test_manager_pages_are_untouched_by_the_proxy(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    assert http.get(f"{any_manager.base}/api/auth/user", timeout=10).status_code == 200
    assert (
        requests.get(f"{any_manager.base}/project/x", headers=JSON, timeout=10).status_code == 404
    )


def test_anonymous_form_post_gets_a_page_with_a_login_link(any_manager: Manager) -> None:
    response = requests.post(
        any_manager.manager_url("alice", "/form"),
        data={"name": "x"},
        headers=HTML,
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 401
    assert 'href="/login"' in response.text
    on_host = requests.post(
        any_manager.url("alice", "/form"), data={"name": "x"}, headers=HTML, timeout=10
    )
    assert on_host.status_code == 401
