"""nginx carries the bytes, the manager decides (SM_PROXY_AUTHZ): the shipped
deploy/nginx/session-host-locations.conf in front of a werkzeug manager and a real upstream, with
the same properties as the manager's own proxy (ownership, the session host's cookie, headers
stripped and added, WebSocket origin)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from conftest import Manager, Upstream, free_port, serve_dev_manager

from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]
LOCATIONS = REPO / "deploy" / "nginx" / "session-host-locations.conf"
JSON = {"Accept": "application/json"}

CONF = """
worker_processes 1;
user root;  # the worker writes the decision cache under this test's folder
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    map $http_upgrade $sm_connection {{ default upgrade; '' ''; }}
    proxy_cache_path {root}/authz-cache keys_zone=sm_authz:1m max_size=16m inactive=10s;
    upstream scriptsmanager {{ server 127.0.0.1:{manager}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} default_server;
        location / {{
            proxy_pass http://scriptsmanager;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name ~^p\\d+-s\\d+-u\\d+\\.localhost$;
        include {locations};
    }}
}}
"""


class Fronted:
    """URLs of the sessions and of the manager as seen through nginx."""

    def __init__(self, manager: Manager, port: int) -> None:
        self.manager = manager
        self.port = port
        self.base = f"http://localhost:{port}"

    def url(self, session: str, path: str = "/") -> str:
        host = self.manager.host(session).split(":")[0]
        return f"http://{host}:{self.port}{self.manager.sessions[session]}{path}"

    def login(self, username: str) -> requests.Session:
        http = requests.Session()
        answer = http.post(
            f"{self.base}/api/auth/login", json={"username": username, "password": "password123"}
        )
        assert answer.status_code == 200, answer.text
        return http


@pytest.fixture(scope="module")
def authz_manager(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> Iterator[Manager]:
    yield from serve_dev_manager(tmp_path_factory, upstream, {"SM_PROXY_AUTHZ": True})


@pytest.fixture(scope="module")
def nginx(authz_manager: Manager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fronted]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        missing("nginx", "nginx is not installed (apt-get install nginx)")
    root = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        CONF.format(root=root, manager=authz_manager.port, port=port, locations=LOCATIONS)
    )
    check = subprocess.run(
        [binary, "-t", "-c", str(conf), "-p", str(root)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(root)], stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield Fronted(authz_manager, port)
    process.terminate()
    process.wait(10)


def entered(nginx: Fronted, username: str, session: str) -> requests.Session:
    http = nginx.login(username)
    page = http.get(nginx.url(session, "/echo"), headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    return http


def test_an_entered_session_is_served_by_nginx_with_the_managers_rules(nginx: Fronted) -> None:
    http = entered(nginx, "alice", "alice")
    token = nginx.manager.tokens["alice"]
    answer = http.get(
        nginx.url("alice", "/echo?a=1"),
        headers={
            "X-CSRFToken": "secret",
            "Authorization": f"Bearer {token}",
            "X-SM-Session": "exec-bob",  # a client cannot name another session
            **JSON,
        },
    )
    assert answer.status_code == 200
    echo = answer.json()
    headers = {k.lower(): v for k, v in echo["headers"].items()}
    assert echo["path"] == "/echo" and echo["args"] == {"a": ["1"]}
    assert headers["x-forwarded-prefix"] == nginx.manager.sessions["alice"]
    assert headers["x-sm-session"] == "exec-alice"  # the runner checks it (421 otherwise)
    assert "sm_host" not in echo["cookies"] and "sm_session" not in echo["cookies"]
    assert "authorization" not in headers and "x-csrftoken" not in headers
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"].startswith("frame-ancestors ")
    foreign = http.get(nginx.url("alice", "/echo"), headers={"Authorization": "Basic dTpw"}).json()
    assert {k.lower(): v for k, v in foreign["headers"].items()}["authorization"] == "Basic dTpw"


def test_without_a_valid_cookie_the_manager_answers(nginx: Fronted) -> None:
    anonymous = requests.get(nginx.url("alice", "/echo"), headers=JSON)
    assert anonymous.status_code == 401
    page = requests.get(
        nginx.url("alice", "/echo"), headers={"Accept": "text/html"}, allow_redirects=False
    )
    assert page.status_code == 302 and page.headers["Location"].startswith(nginx.base)
    bob = entered(nginx, "bob", "bob")
    bobs_cookie = "; ".join(f"{c.name}={c.value}" for c in bob.cookies if c.name == "sm_host")
    on_alices = requests.get(nginx.url("alice", "/echo"), headers={**JSON, "Cookie": bobs_cookie})
    assert on_alices.status_code == 401
    dead = entered_or_none(nginx, "alice", "dead")
    assert dead.status_code == 502


def entered_or_none(nginx: Fronted, username: str, session: str) -> requests.Response:
    http = nginx.login(username)
    return http.get(nginx.url(session, "/echo"), headers={"Accept": "text/html"})


def test_cors_grants_are_dropped_and_protection_added(nginx: Fronted) -> None:
    http = entered(nginx, "alice", "alice")
    http.get(nginx.url("raw", "/"), headers={"Accept": "text/html"})  # enter the raw session
    raw = http.get(nginx.url("raw", "/cors"))
    assert raw.status_code == 200 and raw.text == "ok"
    assert not [k for k in raw.headers if k.lower().startswith("access-control-allow-")]
    assert raw.headers["X-Content-Type-Options"] == "nosniff"


def test_websocket_through_nginx_checks_the_origin(nginx: Fronted) -> None:
    http = entered(nginx, "alice", "alice")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies if c.name == "sm_host")
    url = nginx.url("alice", "/ws").replace("http://", "ws://", 1)
    origin = "http://" + url.split("/")[2]
    ws = websocket.create_connection(url, cookie=cookie, origin=origin, timeout=10)
    try:
        ws.send("hello")
        assert ws.recv() == "echo: hello"
    finally:
        ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, cookie=cookie, origin="http://evil.localhost", timeout=10)
    assert refused.value.status_code == 403


def test_the_decision_endpoint_is_off_unless_enabled(dev_manager: Manager) -> None:
    http = dev_manager.login("alice")
    answer = http.get(
        f"{dev_manager.origin('alice')}/__sm/authz",
        headers={"X-Original-URI": dev_manager.sessions["alice"] + "/echo"},
    )
    assert answer.status_code == 404
