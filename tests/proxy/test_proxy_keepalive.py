"""Keep-alive connections under gunicorn: the proxy serves follow-up requests itself and hands
anything else back to gunicorn, with the same answers as on a fresh connection."""

from __future__ import annotations

import http.client
import io
import json
import socket

from conftest import Manager


def connect(manager: Manager) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", manager.port, timeout=10)


def cookie_header(manager: Manager, username: str, session: str | None = None) -> dict[str, str]:
    """Host and Cookie headers for ``session``'s host (None: the manager's host)."""
    http = manager.login(username)
    host = manager.host(session) if session else f"localhost:{manager.port}"
    return {"Host": host, "Cookie": manager.cookie(http, session)}


def exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_one_connection_serves_every_kind_of_answer(manager: Manager) -> None:
    alice = cookie_header(manager, "alice", "alice")
    on_manager = cookie_header(manager, "alice")
    dead = cookie_header(manager, "alice", "dead")
    starting = cookie_header(manager, "alice", "starting")
    prefix = manager.sessions["alice"]
    conn = connect(manager)
    ids = manager.ids
    steps = [
        ("GET", f"{prefix}/echo", alice, None, 200),
        ("GET", f"{prefix}/api/items", alice, None, 200),  # served by the fast loop
        ("POST", f"{prefix}/upload", alice, b"z" * 100_000, 200),
        ("HEAD", f"{prefix}/big", alice, None, 200),
        ("GET", f"{prefix}/stream", alice, None, 200),  # chunked, through the WSGI writer
        ("GET", f"{prefix}/status/204", alice, None, 204),
        ("GET", f"{prefix}/status/304", alice, None, 304),
        (
            "GET",
            f"/project/9/script/9/user/{ids['alice']}/",
            {**on_manager, "Accept": "text/html"},
            None,
            404,
        ),
        ("GET", manager.sessions["bob"] + "/echo", on_manager, None, 403),
        ("GET", manager.sessions["dead"] + "/echo", dead, None, 502),
        ("GET", manager.sessions["starting"] + "/", starting, None, 503),
        ("GET", f"{prefix}/echo", {"Host": alice["Host"], "Accept": "application/json"}, None, 401),
        ("GET", manager.sessions["bob"] + "/echo", alice, None, 404),  # not this host's session
        ("GET", prefix, alice, None, 302),
        ("GET", "/api/auth/user", on_manager, None, 200),  # handed back to gunicorn and Flask
        ("GET", f"{prefix}/redirect/root", alice, None, 302),
        ("GET", f"{prefix}/big", alice, None, 200),
    ]
    for method, path, headers, body, status in steps:
        got, response_headers, content = exchange(conn, method, path, headers, body)
        assert got == status, (method, path, content[:200])
        if path.endswith("/upload"):
            assert json.loads(content)["length"] == 100_000
        if method == "HEAD":
            assert content == b"" and response_headers["content-length"] == str(1 << 20)
        if path.endswith("/big") and method == "GET":
            assert len(content) == 1 << 20
        if status == 404 and headers is not alice:
            assert b"There is no such session" in content
    conn.close()


def test_the_same_header_lines_again_are_decided_anew(manager: Manager) -> None:
    """Requests with the same header lines on one connection (their parse is kept): the script
    gets each request's own path and headers, and the caller is checked for each one: once
    the login has ended, the very bytes just served are refused."""
    http = manager.login("alice")
    site = {"Host": manager.host("alice"), "Cookie": manager.cookie(http, "alice")}
    site["Accept"] = "application/json"
    prefix = manager.sessions["alice"]
    conn = connect(manager)
    steps = [
        ("/echo?n=1", {"X-Test": "one"}),
        ("/echo?n=2", {"X-Test": "one"}),
        ("/echo?n=2", {"X-Test": "one"}),
        ("/echo/deeper?n=3", {"X-Test": "one"}),
        ("/echo?n=4", {"X-Test": "two"}),
        ("/echo?n=5", {"X-Test": "two", "Cookie": site["Cookie"] + "; app=1"}),
        ("/echo?n=6", {"X-Test": "two"}),
    ]
    for path, extra in steps:
        status, _, body = exchange(conn, "GET", prefix + path, {**site, **extra})
        assert status == 200, body[:200]
        echo = json.loads(body)
        assert echo["full_path"] == path
        assert echo["headers"]["X-Test"] == extra["X-Test"]
        assert echo["headers"]["X-Forwarded-Prefix"] == prefix
        assert "sm_host" not in echo["cookies"]  # the host's own cookie never reaches it
        assert echo["cookies"].get("app") == ("1" if "Cookie" in extra else None)
    csrf = http.get(f"{manager.base}/api/auth/csrf").json()["csrf_token"]
    assert http.post(f"{manager.base}/api/auth/logout", headers={"X-CSRFToken": csrf}).ok
    status, _, _ = exchange(conn, "GET", prefix + "/echo?n=6", {**site, "X-Test": "two"})
    assert status == 401
    conn.close()


def test_long_header_lines_are_read_anew_each_time(manager: Manager) -> None:
    """Header lines past what a connection keeps between requests are parsed for each one,
    and what the script is sent is built for each one."""
    site = cookie_header(manager, "alice", "alice")
    prefix = manager.sessions["alice"]
    conn = connect(manager)
    for _ in range(2):  # the first through gunicorn, the next through the proxy's loop
        assert exchange(conn, "GET", f"{prefix}/echo", site)[0] == 200  # short lines, kept
    for value in "abbc":
        big = {f"X-Big-{n}": value * 6000 for n in range(3)}  # 18 KB of header lines
        status, _, body = exchange(conn, "GET", f"{prefix}/echo", {**site, **big})
        assert status == 200, body[:200]
        assert json.loads(body)["headers"]["X-Big-2"] == value * 6000
    conn.close()


def test_pipelined_requests_are_answered_in_order(manager: Manager) -> None:
    alice = cookie_header(manager, "alice", "alice")
    own = cookie_header(manager, "alice")
    prefix = manager.sessions["alice"]

    def request(path: str, extra: str = "", site: dict[str, str] = alice) -> bytes:
        head = f"GET {path} HTTP/1.1\r\nHost: {site['Host']}\r\nCookie: {site['Cookie']}\r\n"
        return f"{head}{extra}\r\n".encode()

    with socket.create_connection(("127.0.0.1", manager.port), timeout=10) as sock:
        shared = _SharedReader(sock)

        def answer() -> dict:
            response = http.client.HTTPResponse(shared)  # type: ignore[arg-type]
            response.begin()
            return json.loads(response.read())  # type: ignore[no-any-return]

        sock.sendall(request(f"{prefix}/echo?n=1"))  # first one alone: the loop takes over
        assert answer()["args"] == {"n": ["1"]}
        sock.sendall(
            request(f"{prefix}/echo?n=2")
            + request("/api/auth/user", site=own)
            + request(f"{prefix}/echo?n=3", "Connection: close\r\n")
        )
        answers = [answer() for _ in range(3)]
        assert answers[0]["args"] == {"n": ["2"]}
        assert answers[1]["user"]["username"] == "alice"
        assert answers[2]["args"] == {"n": ["3"]}
        assert shared.reader.read(1) == b""  # closed as asked


class _KeepOpen(io.BufferedReader):
    def close(self) -> None:  # HTTPResponse closes its file after each body
        pass


class _SharedReader:
    """Hands every HTTPResponse the same buffered reader, so no read-ahead is lost."""

    def __init__(self, sock: socket.socket) -> None:
        self.reader = _KeepOpen(socket.SocketIO(sock, "rb"))

    def makefile(self, mode: str) -> object:
        return self.reader


def test_smuggled_header_lines_do_not_reach_the_script(manager: Manager) -> None:
    """A bare LF inside a header must not become a header line upstream."""
    site = cookie_header(manager, "alice", "alice")
    alice, host = site["Cookie"], site["Host"]
    prefix = manager.sessions["alice"]
    with socket.create_connection(("127.0.0.1", manager.port), timeout=10) as sock:
        shared = _SharedReader(sock)
        for extra in ("", "X-A: b\nX-Forwarded-Prefix: /evil\r\n"):
            head = f"GET {prefix}/echo HTTP/1.1\r\nHost: {host}\r\nCookie: {alice}\r\n"
            sock.sendall(f"{head}{extra}\r\n".encode())
            response = http.client.HTTPResponse(shared)  # type: ignore[arg-type]
            response.begin()
            body = response.read()
            if response.status == 200:
                assert json.loads(body)["headers"]["X-Forwarded-Prefix"] == prefix
            else:
                assert response.status == 400


def test_behind_a_trusted_proxy_each_request_names_its_own_client(
    trusting_manager: Manager,
) -> None:
    """nginx in front reuses one connection for many clients' requests: the script gets each
    request's own client address and scheme, not those of the connection's first request."""
    manager = trusting_manager
    site = cookie_header(manager, "alice", "alice")
    prefix = manager.sessions["alice"]
    conn = connect(manager)
    clients = [
        ("203.0.113.1", "https"),
        ("203.0.113.2", "http"),
        ("203.0.113.2", "http"),
        ("198.51.100.7", "https"),
    ]
    for client, scheme in clients:
        forwarded = {"X-Forwarded-For": client, "X-Forwarded-Proto": scheme}
        status, _, body = exchange(conn, "GET", f"{prefix}/echo", {**site, **forwarded})
        assert status == 200, body[:200]
        headers = json.loads(body)["headers"]
        assert headers["X-Forwarded-For"].split(",")[-1].strip() == client
        assert headers["X-Forwarded-Proto"] == scheme
    conn.close()
