"""Session hosts: tickets, the per-session cookie, the manager's origin kept apart, and the
headers every proxied answer gets. Real gunicorn (gevent) and werkzeug managers in front of
real upstream servers; ``*.localhost`` resolves to loopback as in browsers."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import Manager

from manager.proxy.hosts import HostRouter, NoSessionDomain, SessionSite

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


def ticket_redirect(manager: Manager, http: requests.Session, session: str) -> str:
    """The manager's answer to a logged-in visit: a redirect to the session host's entry."""
    response = http.get(manager.manager_url(session), headers=HTML, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(manager.origin(session) + "/__sm/enter?ticket=")
    assert response.headers["Cache-Control"] == "no-store"
    return str(location)


def test_ticket_is_single_use(any_manager: Manager) -> None:
    http = any_manager.login("alice", enter=False)
    location = ticket_redirect(any_manager, http, "alice")
    first = requests.get(location, allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"] == any_manager.sessions["alice"] + "/"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith("sm_host=") and "HttpOnly" in cookie and "Domain" not in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    again = requests.get(location, allow_redirects=False, timeout=10)
    assert again.status_code == 403
    assert "Set-Cookie" not in again.headers


def test_ticket_for_another_session_is_refused(any_manager: Manager) -> None:
    http = any_manager.login("alice", enter=False)
    location = ticket_redirect(any_manager, http, "alice")
    ticket = parse_qs(urlsplit(location).query)["ticket"][0]
    prefix = any_manager.sessions["dead"]
    on_dead = f"{any_manager.origin('dead')}/__sm/enter?ticket={ticket}&next={prefix}/"
    assert requests.get(on_dead, allow_redirects=False, timeout=10).status_code == 403
    # Leading elsewhere from the host the ticket is for: refused before the ticket is looked at.
    crossed = f"{any_manager.origin('dead')}/__sm/enter?ticket={ticket}"
    crossed += f"&next={any_manager.sessions['alice']}/"
    assert requests.get(crossed, allow_redirects=False, timeout=10).status_code == 400
    # The ticket was not spent by those attempts... but a made-up one never works.
    fake = f"{any_manager.origin('alice')}/__sm/enter?ticket=not-a-ticket&next=/"
    assert requests.get(fake, allow_redirects=False, timeout=10).status_code == 403
    assert requests.get(location, allow_redirects=False, timeout=10).status_code == 302


def test_entry_redirect_goes_back_to_the_page_asked_for(any_manager: Manager) -> None:
    http = any_manager.login("alice", enter=False)
    page = http.get(any_manager.manager_url("alice", "/echo?a=1&b=%20x"), timeout=10)
    assert page.status_code == 200
    assert page.url == any_manager.url("alice", "/echo?a=1&b=%20x")
    assert page.json()["args"] == {"a": ["1"], "b": [" x"]}
    # An open redirect is not offered: a foreign "next" lands on the session's own root.
    location = ticket_redirect(any_manager, http, "alice").split("&next=")[0]
    bounced = requests.get(
        location + "&next=https://evil.example/x", allow_redirects=False, timeout=10
    )
    assert bounced.status_code == 302
    assert bounced.headers["Location"] == any_manager.sessions["alice"] + "/"


def test_one_sessions_cookie_is_refused_elsewhere(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    alice_cookie = any_manager.cookie(http, "alice")
    assert alice_cookie.startswith("sm_host=")
    ok = requests.get(any_manager.url("alice", "/echo"), headers={**JSON, "Cookie": alice_cookie})
    assert ok.status_code == 200
    on_dead = requests.get(
        any_manager.url("dead", "/echo"), headers={**JSON, "Cookie": alice_cookie}
    )
    assert on_dead.status_code == 401
    value = alice_cookie.split("=", 1)[1]
    for cookie in (alice_cookie, f"sm_session={value}", f"remember_token={value}"):
        manager = requests.get(f"{any_manager.base}/api/auth/user", headers={"Cookie": cookie})
        assert manager.status_code == 401, cookie


def test_the_managers_cookie_means_nothing_on_a_session_host(any_manager: Manager) -> None:
    http = any_manager.login("alice", enter=False)
    manager_cookie = any_manager.cookie(http)
    assert "sm_session=" in manager_cookie
    response = requests.get(
        any_manager.url("alice", "/echo"), headers={**JSON, "Cookie": manager_cookie}, timeout=10
    )
    assert response.status_code == 401


def test_session_host_serves_nothing_of_the_manager(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    origin = any_manager.origin("alice")
    for path in ("/api/auth/user", "/api/auth/csrf", "/login", "/admin/users", "/socket.io/"):
        response = http.get(origin + path, headers=JSON, allow_redirects=False, timeout=10)
        assert response.status_code == 404, path
    root = http.get(origin + "/", allow_redirects=False, timeout=10)
    assert root.status_code == 302
    assert root.headers["Location"] == any_manager.sessions["alice"] + "/"
    assert http.get(origin + "/favicon.ico", timeout=10).status_code == 204


def test_every_answer_carries_the_protective_headers(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    echo = http.get(any_manager.url("alice", "/echo"), timeout=10)
    assert echo.headers["X-Content-Type-Options"] == "nosniff"
    assert echo.headers["Content-Security-Policy"] == f"frame-ancestors {any_manager.base}"
    raw = http.get(any_manager.url("raw", "/cors"), timeout=10)
    assert raw.status_code == 200 and raw.text == "ok"
    names = {name.lower() for name in raw.headers}
    assert not any(name.startswith("access-control-allow-") for name in names)
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    policies = raw.raw.headers.getlist("Content-Security-Policy")
    assert "default-src 'self'" in policies  # the script's own policy stays
    assert f"frame-ancestors {any_manager.base}" in policies
    assert "sm_host=forged" not in str(raw.raw.headers.getlist("Set-Cookie"))
    error_page = http.get(any_manager.url("dead", "/"), headers=HTML, timeout=10)
    assert error_page.status_code == 502 and "<script" not in error_page.text


@pytest.mark.parametrize("path", ["/lf", "/cr", "/ctl", "/fold"])
def test_response_headers_with_control_characters_are_refused(
    any_manager: Manager, path: str
) -> None:
    http = any_manager.login("alice")
    response = http.get(any_manager.url("raw", path), headers=HTML, timeout=10)
    assert response.status_code == 502
    assert "control characters" in response.text
    assert not response.raw.headers.getlist("Set-Cookie")
    assert http.get(any_manager.url("alice", "/echo"), timeout=10).status_code == 200


def test_request_headers_with_control_characters_never_reach_the_script(
    any_manager: Manager,
) -> None:
    """gunicorn refuses them itself; behind a server that passes them on, the proxy does."""
    manager = any_manager
    http = manager.login("alice")
    cookie = manager.cookie(http, "alice")
    head = (
        f"GET {manager.sessions['alice']}/echo HTTP/1.1\r\nHost: {manager.host('alice')}\r\n"
        f"Cookie: {cookie}\r\nX-Smuggle: a\x01b\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", manager.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert b'"headers"' not in answer  # not the script's echo


def test_the_managers_tokens_are_never_forwarded(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    token = any_manager.tokens["alice"]
    with_cookie = http.get(
        any_manager.url("alice", "/echo"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert "authorization" not in {k.lower() for k in with_cookie["headers"]}
    foreign = http.get(
        any_manager.url("alice", "/echo"), headers={"Authorization": "Basic dTpw"}, timeout=10
    ).json()
    assert {k.lower(): v for k, v in foreign["headers"].items()}["authorization"] == "Basic dTpw"
    by_token = requests.get(
        any_manager.url("alice", "/echo"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert by_token.status_code == 200
    assert "authorization" not in {k.lower() for k in by_token.json()["headers"]}


def test_logout_ends_the_session_hosts_cookie(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    cookie = any_manager.cookie(http, "alice")
    url = any_manager.url("alice", "/echo")
    assert requests.get(url, headers={**JSON, "Cookie": cookie}).status_code == 200
    csrf = http.get(f"{any_manager.base}/api/auth/csrf").json()["csrf_token"]
    assert http.post(f"{any_manager.base}/api/auth/logout", headers={"X-CSRFToken": csrf}).ok
    assert requests.get(url, headers={**JSON, "Cookie": cookie}).status_code == 401


def test_the_manager_origin_only_hands_out_tickets(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    csrf = http.get(f"{any_manager.base}/api/auth/csrf").json()["csrf_token"]
    posted = http.post(
        any_manager.manager_url("alice", "/echo"), headers={**JSON, "X-CSRFToken": csrf}
    )
    assert posted.status_code == 400
    assert any_manager.url("alice", "") in posted.json()["message"]


def test_an_unknown_manager_name_is_explained_not_served(any_manager: Manager) -> None:
    http = any_manager.login("alice", enter=False)
    cookie = any_manager.cookie(http)
    response = requests.get(
        f"http://127.0.0.1:{any_manager.port}{any_manager.sessions['alice']}/",
        headers={"Host": f"scripts.example.org:{any_manager.port}", "Cookie": cookie, **HTML},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 503
    assert "SM_SESSION_DOMAIN" in response.text


# -- the router, as a pure object -------------------------------------------------------------


def test_router_names_one_host_per_session() -> None:
    router = HostRouter()
    assert router.site("p1-s2-u3.localhost:5002") == SessionSite("p1-s2-u3.localhost", (1, 2, 3))
    assert router.site("P1-S2-U3.LOCALHOST") == SessionSite("p1-s2-u3.localhost", (1, 2, 3))
    for manager_host in (
        "localhost:5002",
        "127.0.0.1:5002",
        "evil.localhost",
        "x.p1-s2-u3.localhost",
    ):
        assert router.site(manager_host) is None, manager_host
    assert router.session_url("http", "localhost:5002", (1, 2, 3)) == (
        "http://p1-s2-u3.localhost:5002/project/1/script/2/user/3/"
    )
    assert router.session_url("http", "[::1]:8000", (1, 2, 3), "/x?y=1") == (
        "http://p1-s2-u3.localhost:8000/project/1/script/2/user/3/x?y=1"
    )
    assert router.manager_origin("http", "p1-s2-u3.localhost:5002") == "http://localhost:5002"
    with pytest.raises(NoSessionDomain):
        router.session_url("http", "scripts.example.org", (1, 2, 3))


def test_router_with_a_domain_and_the_other_modes() -> None:
    router = HostRouter(domain="sessions.example.org", public_url="https://sm.example.org/")
    assert router.session_url("https", "sm.example.org", (4, 5, 6)) == (
        "https://p4-s5-u6.sessions.example.org/project/4/script/5/user/6/"
    )
    assert router.site("p4-s5-u6.sessions.example.org") is not None
    assert router.site("sm.example.org") is None
    assert router.site("p4-s5-u6.localhost") is None
    assert router.manager_origin("https", "p4-s5-u6.sessions.example.org") == (
        "https://sm.example.org"
    )
    shared = HostRouter(mode="shared")
    assert shared.site("sessions.localhost:5002") == SessionSite("sessions.localhost", None)
    assert shared.site("p1-s2-u3.localhost") is None
    assert shared.session_url("http", "localhost:5002", (1, 2, 3)).startswith(
        "http://sessions.localhost:5002/project/1/"
    )
    same = HostRouter(mode="manager")
    assert same.site("p1-s2-u3.localhost") is None and not same.isolated
    with pytest.raises(ValueError, match="SM_SESSION_HOST_MODE"):
        HostRouter(mode="wide-open")


def test_proxied_requests_are_counted_in_the_metrics(manager: Manager) -> None:
    http = manager.login("alice")
    for _ in range(3):
        assert http.get(manager.url("alice", "/echo"), timeout=10).status_code == 200
    assert http.get(manager.url("dead", "/echo"), headers=JSON, timeout=10).status_code == 502
    admin = manager.login("root", enter=False)
    text = admin.get(f"{manager.base}/metrics", timeout=10).text
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
             if line and not line.startswith("#")}  # fmt: skip
    assert lines['sm_proxy_responses_total{status="2xx"}'] >= 3
    assert lines['sm_proxy_responses_total{status="5xx"}'] >= 1
    assert lines["sm_proxy_request_seconds_count"] >= 4


def test_the_container_is_told_which_session_is_meant(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    echo = http.get(
        any_manager.url("alice", "/echo"), headers={"X-SM-Session": "exec-bob"}, timeout=10
    ).json()
    headers = {k.lower(): v for k, v in echo["headers"].items()}
    assert headers["x-sm-session"] == "exec-alice"  # the client's own value is dropped


def test_a_container_serving_another_session_is_never_relayed(any_manager: Manager) -> None:
    """The route's address now belongs to another session's container, which refuses the
    request (421 with X-SM-Session-Mismatch): the proxy drops the route, asks again, and
    answers 502; nothing of that container's answer reaches the client."""
    http = any_manager.login("alice")
    for accept in (HTML, JSON):
        response = http.get(any_manager.url("raw", "/misdirected"), headers=accept, timeout=10)
        assert response.status_code == 502
        assert "container has gone" in response.text
        assert "ANOTHER-SESSIONS-SECRET" not in response.text
        assert "X-SM-Session-Mismatch" not in response.headers
    assert http.get(any_manager.url("alice", "/echo"), timeout=10).status_code == 200
