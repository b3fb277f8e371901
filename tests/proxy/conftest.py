"""Real processes for the proxy tests: an upstream Flask app under gunicorn (gthread), and the
manager under gunicorn's gevent worker (or werkzeug's development server) in front of it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from raw_upstream import RawServer

from manager.proxy.upstream import Connection

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PASSWORD = "password123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
            if proc is not None and proc.poll() is not None or time.monotonic() > deadline:
                output = log.read_text() if log and log.exists() else ""
                raise RuntimeError(f"{url} did not come up:\n{output}") from None
            time.sleep(0.1)


class Process:
    """A server subprocess whose output goes to a file, shown when it fails to start."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def gunicorn_args(app: str, port: int, worker: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        worker,
        "--graceful-timeout",
        "2",
        *extra,
        app,
    ]


@dataclass
class Upstream:
    port: int
    raw_port: int = 0  # a RawServer: malformed and hostile responses

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """The script's web app stand-in, on its own loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}",
        "UPSTREAM_ADDR": f"127.0.0.1:{port}",
    }
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    server = Process(
        gunicorn_args("proxy_upstream_app:app", port, "gthread", "--threads", "8"), env, log
    )
    raw = RawServer()
    try:
        wait_until_up(f"http://127.0.0.1:{port}/echo", server.proc, log)
        yield Upstream(port, raw.port)
    finally:
        server.stop()
        raw.close()


@dataclass
class Manager:
    """The manager under test, and who is who in it.

    ``base`` is the manager's origin; each session is served from a host of its own,
    ``p<p>-s<s>-u<u>.localhost`` on the same port (tests resolve ``*.localhost`` to loopback).
    """

    base: str
    ids: dict[str, int]
    tokens: dict[str, str]
    sessions: dict[str, str] = field(default_factory=dict)  # name -> proxy prefix

    def login(self, username: str, enter: bool = True) -> requests.Session:
        """Log in on the manager's origin; with ``enter``, also take a ticket into every
        session host the user may open (as a browser does on the way to a session's page)."""
        http = requests.Session()
        response = http.post(
            f"{self.base}/api/auth/login",
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        if enter:
            for name in self.sessions:
                self.enter(http, name)
        return http

    def enter(self, http: requests.Session, session: str) -> requests.Response:
        """Follow the manager's ticket redirect into a session's host."""
        return http.get(self.manager_url(session), headers={"Accept": "text/html"}, timeout=10)

    def cookie(self, http: requests.Session, session: str | None = None) -> str:
        """The Cookie header a browser would send to ``session``'s host (None: the manager)."""
        name = self.host(session).split(":")[0] if session else "localhost.local"
        return "; ".join(f"{c.name}={c.value}" for c in http.cookies if c.domain == name)

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def host(self, session: str) -> str:
        project, script, user = self.sessions[session].split("/")[2::2]
        return f"p{project}-s{script}-u{user}.localhost:{self.port}"

    def origin(self, session: str) -> str:
        return f"http://{self.host(session)}"

    def url(self, session: str, path: str = "/") -> str:
        """The session's URL on its own host."""
        return f"{self.origin(session)}{self.sessions[session]}{path}"

    def manager_url(self, session: str, path: str = "/") -> str:
        """The same path on the manager's origin (it redirects to the session host)."""
        return f"{self.base}{self.sessions[session]}{path}"


def manager_settings(root: Path, upstream: Upstream) -> tuple[dict[str, Any], dict[str, str]]:
    """The app config, users and sessions the manager is built with; and the session prefixes."""
    dead_port = free_port()  # nothing listens there
    users = [
        {"username": "alice", "level": "operator"},
        {"username": "bob", "level": "operator"},
        {"username": "root", "level": "admin"},
    ]
    # name: (project, script, owner, port, state)
    table = {
        "alice": (1, 1, "alice", upstream.port, "running"),
        "bob": (1, 2, "bob", upstream.port, "running"),
        "starting": (1, 3, "alice", upstream.port, "starting"),
        "gone": (1, 4, "alice", upstream.port, "gone"),
        "dead": (1, 5, "alice", dead_port, "running"),
        "raw": (1, 6, "alice", upstream.raw_port, "running"),
    }
    sessions = [
        {
            "project": p,
            "script": s,
            "user": u,
            "host": "127.0.0.1",
            "port": port,
            "key": f"exec-{name}",
            "state": state,
        }
        for name, (p, s, u, port, state) in table.items()
    ]
    settings = {
        "config": {
            "TESTING": True,
            "SECRET_KEY": "proxy-test-secret-key",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root}/manager.db",
            "SM_DATA_DIR": str(root / "data"),
            "SM_LOG_DIR": str(root / "logs"),
            "SM_BACKUP_DIR": str(root / "backup"),
            "SM_SCRIPT_GROUPS_DIR": str(root / "script_groups"),
            "SM_CONDA_ENVS_DIR": str(REPO / "conda-envs"),
            "SM_WATCH_SCRIPTS": False,
        },
        "users": users,
        "sessions": sessions,
        "output": str(root / "manager-output.json"),
    }
    return settings, {name: (p, s, u) for name, (p, s, u, _, _) in table.items()}  # type: ignore[misc]


def _manager(
    settings: dict[str, Any], ids_by_name: dict[str, Any], base: str, output: Path
) -> Manager:
    info = json.loads(output.read_text())
    ids = info["ids"]
    prefixes = {
        name: f"/project/{p}/script/{s}/user/{ids[u]}" for name, (p, s, u) in ids_by_name.items()
    }
    return Manager(base, ids, info["tokens"], prefixes)


@pytest.fixture(scope="session")
def manager(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Manager]:
    """The manager under gunicorn's gevent worker, as in production."""
    with _served(tmp_path_factory.mktemp("manager"), upstream) as served:
        yield served


@pytest.fixture(scope="session")
def trusting_manager(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> Iterator[Manager]:
    """The same, behind one trusted proxy (``SM_TRUSTED_PROXIES=1``), as behind nginx."""
    with _served(tmp_path_factory.mktemp("trusting"), upstream, SM_TRUSTED_PROXIES="1") as served:
        yield served


@contextmanager
def _served(root: Path, upstream: Upstream, **config: Any) -> Iterator[Manager]:
    """A manager under gunicorn's gevent worker, with ``config`` over the usual settings."""
    settings, names = manager_settings(root, upstream)
    settings["config"].update(config)
    config_file = root / "settings.json"
    config_file.write_text(json.dumps(settings))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{REPO}",
        "SM_PROXY_TEST_CONFIG": str(config_file),
    }
    log = root / "manager.log"
    server = Process(
        gunicorn_args("proxy_manager_wsgi:app", port, "gevent", "--keep-alive", "30"), env, log
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/login", server.proc, log)
        yield _manager(settings, names, f"http://localhost:{port}", Path(settings["output"]))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dev_manager(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Manager]:
    """The same manager under werkzeug's development server (threads, no gevent)."""
    yield from serve_dev_manager(tmp_path_factory, upstream, {})


def serve_dev_manager(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, config: dict[str, Any]
) -> Iterator[Manager]:
    """A werkzeug manager with ``config`` on top of the usual settings."""
    from werkzeug.serving import make_server

    sys.path.insert(0, str(HERE))
    from proxy_manager_wsgi import build

    root = tmp_path_factory.mktemp("dev-manager")
    settings, names = manager_settings(root, upstream)
    settings["config"].update(config)
    app = build(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://localhost:{server.server_port}"
        wait_until_up(f"{base}/login", None, None)
        yield _manager(settings, names, base, Path(settings["output"]))
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["sm_proxy"].pool.clear()


@pytest.fixture(params=["gunicorn", "werkzeug"])
def any_manager(request: pytest.FixtureRequest) -> Manager:
    """Both servers: gunicorn+gevent (direct socket writes) and werkzeug (plain WSGI)."""
    return request.getfixturevalue("manager" if request.param == "gunicorn" else "dev_manager")


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    """A connection the proxy reads from, and the other end (the "container") to write."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    yield Connection(ours, ("test", 0)), theirs
    ours.close()
    theirs.close()
