"""An ordinary Flask app works unchanged through the proxy: pages, forms, sessions, files, APIs."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import requests
from conftest import Manager
from proxy_upstream_app import BIG, STREAM_PARTS, STREAM_PAUSE


def test_pages_links_and_static_files_stay_under_the_prefix(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]
    page = http.get(any_manager.url("alice"), timeout=10)
    assert page.status_code == 200
    assert f'href="{prefix}/form"' in page.text
    assert f'href="{prefix}/static/site.css"' in page.text
    assert f'<p id="script-root">{prefix}</p>' in page.text
    assert f'href="{any_manager.origin("alice")}{prefix}/thanks"' in page.text  # _external=True
    css = http.get(any_manager.url("alice", "/static/site.css"), timeout=10)
    assert css.status_code == 200 and "#123456" in css.text
    assert css.headers["Content-Type"].startswith("text/css")


def test_the_scripts_own_session_cookie_works(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    visits = [http.get(any_manager.url("alice"), timeout=10).text for _ in range(3)]
    counts = [int(re.search(r"visits=(\d+)", page).group(1)) for page in visits]  # type: ignore[union-attr]
    assert counts[2] == counts[0] + 2
    cookie = next(c for c in http.cookies if c.name == "session")
    assert cookie.path == any_manager.sessions["alice"] + "/"


def test_form_post_and_redirect(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]
    form = http.get(any_manager.url("alice", "/form"), timeout=10)
    assert f'action="{prefix}/form"' in form.text
    posted = http.post(
        any_manager.url("alice", "/form"), data={"name": "Ada"}, allow_redirects=False, timeout=10
    )
    assert posted.status_code == 302
    assert posted.headers["Location"] == f"{prefix}/thanks"
    followed = http.get(any_manager.origin("alice") + posted.headers["Location"], timeout=10)
    assert "Thanks, Ada" in followed.text


def test_json_api(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    created = http.post(any_manager.url("alice", "/api/items"), json={"name": "second"}, timeout=10)
    assert created.status_code == 201 and created.json()["name"] == "second"
    listed = http.get(any_manager.url("alice", "/api/items"), timeout=10).json()
    assert {"id": 1, "name": "first"} in listed["items"]


def test_file_download(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    response = http.get(any_manager.url("alice", "/download"), timeout=10)
    assert response.content == b"a,b\n1,2\n"
    assert response.headers["Content-Disposition"] == "attachment; filename=report.csv"


def test_large_response(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    response = http.get(any_manager.url("alice", "/big"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(BIG))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(BIG).digest()


def test_streamed_response_arrives_incrementally(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    started = time.monotonic()
    arrivals = []
    with http.get(any_manager.url("alice", "/stream"), stream=True, timeout=10) as response:
        for line in response.iter_lines():
            arrivals.append((time.monotonic() - started, line))
    assert [line.split(b" at ")[0] for _, line in arrivals] == [
        f"part {n}".encode() for n in range(STREAM_PARTS)
    ]
    # The first part is seen long before the generator finished.
    assert arrivals[0][0] < arrivals[-1][0] - STREAM_PAUSE * (STREAM_PARTS - 2)


def test_request_bodies_stream_both_ways_of_framing(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    payload = bytes(range(256)) * 20_000  # ~5 MB, far over one relay chunk

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    expected = {"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    with_length = http.post(any_manager.url("alice", "/upload"), data=payload, timeout=30)
    assert with_length.json() == expected
    chunked = http.post(any_manager.url("alice", "/upload"), data=chunks(), timeout=30)
    assert chunked.json() == expected


def test_methods_query_string_and_path_pass_through(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = http.request(
            method,
            any_manager.url("alice", "/echo?a=1&a=2&b=%20x"),
            data=b"body" if method != "GET" else None,
            timeout=10,
        )
        echo = response.json()
        assert echo["method"] == method
        assert echo["args"] == {"a": ["1", "2"], "b": [" x"]}
    echo = http.get(any_manager.url("alice", "/echo/caf%C3%A9%2Fx"), timeout=10).json()
    assert echo["raw_uri"] == "/echo/caf%C3%A9%2Fx"
    head = http.head(any_manager.url("alice", "/big"), timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(BIG))
    assert head.content == b""


def test_no_content_and_not_modified(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    for code in (204, 304, 404, 500):
        assert http.get(any_manager.url("alice", f"/status/{code}"), timeout=10).status_code == code
    assert http.get(any_manager.url("alice", "/echo"), timeout=10).status_code == 200


def test_manager_cookies_and_csrf_header_never_reach_the_script(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    token = http.get(f"{any_manager.base}/api/auth/csrf", timeout=10).json()["csrf_token"]
    host = any_manager.host("alice").split(":")[0]
    session_cookie = next(c.value for c in http.cookies if c.name == "sm_session")
    # A client that sends the manager's cookies to the session host anyway: they are dropped.
    http.cookies.set("sm_session", session_cookie, domain=host)
    http.cookies.set("remember_token", "secret-remember", domain=host)
    http.cookies.set("mine", "kept", domain=host)
    echo = http.post(
        any_manager.url("alice", "/echo"),
        headers={"X-CSRFToken": token, "X-CSRF-Token": token, "X-Custom": "kept"},
        timeout=10,
    ).json()
    headers = {k.lower(): v for k, v in echo["headers"].items()}
    assert "sm_session" not in echo["cookies"] and "remember_token" not in echo["cookies"]
    assert "sm_host" not in echo["cookies"]
    assert echo["cookies"].get("mine") == "kept"
    assert "x-csrftoken" not in headers and "x-csrf-token" not in headers
    assert headers["x-custom"] == "kept"
    assert token not in str(echo)


def test_forwarded_headers_and_hop_by_hop(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]
    echo = http.get(
        any_manager.url("alice", "/echo"),
        headers={
            "X-Forwarded-Prefix": "/evil",
            "X-Forwarded-Host": "evil.example",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "dropped",
            "Proxy-Authorization": "Basic eA==",
        },
        timeout=10,
    ).json()
    headers = {k.lower(): v for k, v in echo["headers"].items()}
    host = any_manager.host("alice")
    assert echo["script_root"] == prefix
    assert echo["url_root"] == f"{any_manager.origin('alice')}{prefix}/"
    assert echo["remote_addr"] == "127.0.0.1"
    assert headers["x-forwarded-prefix"] == prefix
    assert headers["x-forwarded-host"] == host
    assert headers["x-forwarded-proto"] == "http"
    assert "x-hop" not in headers and "proxy-authorization" not in headers


def test_redirects_stay_under_the_prefix(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]

    def location(path: str) -> str:
        response = http.get(any_manager.url("alice", path), allow_redirects=False, timeout=10)
        assert response.status_code == 302
        return str(response.headers["Location"])

    assert location("/redirect/root") == f"{prefix}/thanks"
    assert location("/redirect/prefixed") == f"{prefix}/thanks"
    assert location("/redirect/absolute") == f"{prefix}/thanks?from=absolute"
    assert location("/redirect/elsewhere") == "https://example.org/somewhere"


def test_cookies_set_by_the_script_are_scoped(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]
    response = http.get(any_manager.url("alice", "/cookies/set"), timeout=10)
    set_cookies = response.raw.headers.getlist("Set-Cookie")
    by_name = {value.split("=", 1)[0]: value for value in set_cookies}
    assert set(by_name) == {"plain", "pathed", "domained"}
    assert f"Path={prefix}/" in by_name["plain"]
    assert f"Path={prefix}/sub" in by_name["pathed"]
    assert "Domain" not in by_name["domained"] and f"Path={prefix}/" in by_name["domained"]
    # The manager's login survived the script's attempt to overwrite it.
    assert http.get(f"{any_manager.base}/api/auth/user", timeout=10).status_code == 200


def test_prefix_without_trailing_slash_redirects(any_manager: Manager) -> None:
    http = any_manager.login("alice")
    prefix = any_manager.sessions["alice"]
    response = http.get(
        f"{any_manager.origin('alice')}{prefix}?x=1", allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{prefix}/?x=1"


def test_keep_alive_connection_mixes_proxy_and_manager_requests(manager: Manager) -> None:
    """Requests served on the proxy's fast path hand the connection back for manager pages."""
    http = manager.login("alice")
    for _ in range(3):
        assert http.get(manager.url("alice", "/echo"), timeout=10).status_code == 200
        assert (
            http.get(f"{manager.base}/api/auth/user", timeout=10).json()["user"]["username"]
            == "alice"
        )
        assert (
            http.post(manager.url("alice", "/upload"), data=b"x" * 10, timeout=10).json()["length"]
            == 10
        )
        assert http.get(manager.url("alice", "/stream"), timeout=10).status_code == 200


def test_bearer_token_reaches_the_session(manager: Manager) -> None:
    token = manager.tokens["alice"]
    response = requests.get(
        manager.url("alice", "/echo"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200
    assert "authorization" not in {k.lower() for k in response.json()["headers"]}
    other = requests.get(
        manager.url("bob", "/echo"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert other.status_code == 403
