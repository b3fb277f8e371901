"""Live logs over Socket.IO, with the real python-socketio client against the real server.

The manager runs under gunicorn's gevent worker (as ``serve`` runs it) with its pumps, monitor
and Socket.IO; sessions are FakeBackend runs that the test makes print over HTTP
(``tests/logs/stream_server.py``). A client that gets every line once, in order, sees seq
numbers 1, 2, 3, ... with nothing missing and nothing twice: that is what is asserted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from tests.conftest import REPO

PASSWORD = "password123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The manager under gunicorn (gevent worker), on a temp database and folders."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "config": {
                "TESTING": True,
                "SECRET_KEY": "stream-test-secret-key",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root}/manager.db",
                "SM_DATA_DIR": str(root / "data"),
                "SM_LOG_DIR": str(root / "logs"),
                "SM_BACKUP_DIR": str(root / "backup"),
                "SM_SCRIPT_GROUPS_DIR": str(REPO / "script_groups"),
                "SM_CONDA_ENVS_DIR": str(REPO / "conda-envs"),
                "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
                "SM_WATCH_SCRIPTS": False,
                "SM_MONITOR_INTERVAL": 0.2,
                "SM_MAX_SESSIONS_PER_USER": 50,
                "SM_MAX_CONCURRENT_SESSIONS": 100,
            },
            "users": [
                {"username": "olga", "level": "operator"},
                {"username": "bob", "level": "operator"},
                {"username": "root", "level": "admin"},
            ],
        }
        (root / "settings.json").write_text(json.dumps(config))
        env = {**os.environ, "PYTHONPATH": str(REPO),
               "SM_STREAM_TEST_CONFIG": str(root / "settings.json")}  # fmt: skip
        self._log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers", "1",
             "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "2",
             "tests.logs.stream_server:application()"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.base + "/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + self.log())
            time.sleep(0.2)
        self.script_id = self._script_id("unit_converter.py")

    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def login(self, username: str) -> requests.Session:
        http = requests.Session()
        answer = http.post(
            self.base + "/api/auth/login",
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        http.headers["X-CSRFToken"] = http.get(self.base + "/api/auth/csrf").json()["csrf_token"]
        return http

    def _script_id(self, filename: str) -> int:
        http = self.login("olga")
        for group in http.get(self.base + "/api/script-groups").json()["groups"]:
            listing = http.get(f"{self.base}/api/script-groups/{group['id']}/scripts").json()
            for script in listing["scripts"]:
                if script["filename"] == filename:
                    return int(script["id"])
        raise AssertionError(f"{filename} is not in the catalog")

    def start_run(self, username: str = "olga") -> str:
        answer = self.login(username).post(
            f"{self.base}/api/scripts/{self.script_id}/execute", json={"parameters": {}}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["execution_id"])

    def emit(self, run_id: str, count: int, **options: Any) -> None:
        params = {"execution_id": run_id, "count": count, **options}
        assert requests.get(self.base + "/_test/emit", params=params, timeout=10).ok

    def finish(self, run_id: str) -> None:
        assert requests.get(self.base + "/_test/finish", params={"execution_id": run_id}).ok


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = Server(tmp_path_factory.mktemp("stream"))
    yield instance
    instance.stop()


def in_order(client: socketio.Client) -> socketio.Client:
    """Handle messages on the reading thread, one after the other, as they arrive.

    The stock client runs each message's handler on a new thread: their order is then up to
    the scheduler, which would blur what these tests check (and a slow handler would not slow
    the reading down).
    """
    trigger = client.eio._trigger_event

    def trigger_in_order(event: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["run_async"] = False
        return trigger(event, *args, **kwargs)

    client.eio._trigger_event = trigger_in_order  # type: ignore[method-assign]
    return client


class Broken(logging.Handler):
    """Collects what the Engine.IO client says when a frame it reads makes no sense."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Unexpected error" in message:
            self.messages.append(message[:200])


def transport_logger(broken: Broken) -> logging.Logger:
    logger = logging.getLogger(f"tests.stream.engineio.{id(broken)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(broken)
    return logger


class Watcher:
    """A python-socketio client that records everything it receives and never dedupes.

    On every (re)connection it joins with the last seq it has, as the browser does.
    """

    def __init__(self, base: str, cookie: str, run_id: str, log: Callable[[], str], **join: Any):
        self.base = base
        self.cookie = cookie
        self.log = log
        self.run_id = run_id
        self.join_args = join
        self.received: list[list[Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.viewers: list[int] = []
        self.statuses: list[dict[str, Any]] = []
        self.connects = 0
        self.on_lines: Callable[[dict[str, Any]], None] | None = None
        self.broken = Broken()  # frames that came garbled: a WebSocket stream out of step
        self.sio = in_order(
            socketio.Client(
                reconnection_delay=0.2,
                reconnection_delay_max=1,
                engineio_logger=transport_logger(self.broken),
            )
        )
        self.sio.on("connect", self._connected, namespace="/logs")
        self.sio.on("lines", self._lines, namespace="/logs")
        self.sio.on("error", self.errors.append, namespace="/logs")
        self.sio.on("viewers", lambda data: self.viewers.append(data["count"]), namespace="/logs")
        self.sio.on("status", self.statuses.append, namespace="/logs")
        self._lock = threading.Lock()

    @property
    def last_seq(self) -> int:
        return int(self.received[-1][0]) if self.received else 0

    def connect(self) -> Watcher:
        self.sio.connect(self.base, headers={"Cookie": self.cookie}, namespaces=["/logs"],
                         transports=["websocket"], wait_timeout=10)  # fmt: skip
        return self

    def _connected(self) -> None:
        self.connects += 1
        self.sio.emit("join", {"execution_id": self.run_id, "last_seq": self.last_seq,
                               **self.join_args}, namespace="/logs")  # fmt: skip

    def _lines(self, data: dict[str, Any]) -> None:
        with self._lock:
            assert data["execution_id"] == self.run_id
            self.messages.append(data)
            self.received.extend(data["lines"])
        if self.on_lines is not None:
            self.on_lines(data)

    def texts(self, stream: str = "stdout") -> list[str]:
        return [row[3] for row in self.received if row[2] == stream]

    def wait(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out with {len(self.received)} lines, last {self.received[-1:]}, "
                    f"errors {self.errors}, connections {self.connects}, "
                    f"garbled frames {self.broken.messages}\n{self.log()}"
                )
            time.sleep(0.02)

    def wait_ended(self, timeout: float = 60) -> None:
        self.wait(lambda: any(row[3].startswith("ended:") for row in self.received[-5:]), timeout)

    def close(self) -> None:
        self.sio.disconnect()


def cookie_of(http: requests.Session) -> str:
    return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


def watch(server: Server, username: str, run_id: str, **join: Any) -> Watcher:
    return Watcher(server.base, cookie_of(server.login(username)), run_id, server.log, **join)


def assert_every_line_once_in_order(watcher: Watcher) -> None:
    seqs = [int(row[0]) for row in watcher.received]
    assert seqs == list(range(1, len(seqs) + 1)), "a line is missing, doubled or out of order"


def numbers(texts: list[str]) -> list[int]:
    return [int(text.split()[1]) for text in texts if text.startswith("line ")]


def test_every_line_of_a_10000_line_run_arrives_in_order(server):
    run_id = server.start_run()
    watcher = watch(server, "olga", run_id).connect()
    try:
        server.emit(run_id, 10_000)
        watcher.wait(lambda: "line 10000" in watcher.texts()[-1:])
        server.finish(run_id)
        watcher.wait_ended()
        assert_every_line_once_in_order(watcher)
        assert numbers(watcher.texts()) == list(range(1, 10_001))
        assert watcher.texts("debug")[0].startswith("requested by olga")
        # Batched: far fewer messages than lines, each within the size cap.
        assert len(watcher.messages) < 1000
        assert max(len(json.dumps(m)) for m in watcher.messages) < 300 * 1024
        watcher.wait(lambda: any(s["status"] == "completed" for s in watcher.statuses), 10)
        done = [s for s in watcher.statuses if s["status"] == "completed"][0]
        assert done == {"execution_id": run_id, "status": "completed", "exit_code": 0}
    finally:
        watcher.close()


def test_a_late_joiner_gets_the_replay_then_live_lines(server):
    run_id = server.start_run()
    server.emit(run_id, 6000, rate=3000)
    time.sleep(1.0)  # about a third printed before the second watcher comes
    watcher = watch(server, "olga", run_id).connect()
    try:
        watcher.wait(lambda: "line 6000" in watcher.texts()[-1:])
        server.finish(run_id)
        watcher.wait_ended()
        assert_every_line_once_in_order(watcher)
        assert numbers(watcher.texts()) == list(range(1, 6001))
        replayed = [m for m in watcher.messages if m.get("replay")]
        live = [m for m in watcher.messages if not m.get("replay")]
        assert replayed and live, "expected a replay first, then live batches"
        assert watcher.messages.index(replayed[-1]) < watcher.messages.index(live[0])
    finally:
        watcher.close()


def test_a_watcher_that_reconnects_with_its_last_seq_gets_the_rest(server):
    run_id = server.start_run()
    watcher = watch(server, "olga", run_id).connect()
    try:
        server.emit(run_id, 4000, rate=4000)
        watcher.wait(lambda: len(watcher.texts()) > 500)
        watcher.sio.disconnect()  # dropped mid-run
        time.sleep(0.5)
        watcher.connect()  # joins with last_seq again
        watcher.wait(lambda: "line 4000" in watcher.texts()[-1:])
        assert watcher.connects == 2
        assert_every_line_once_in_order(watcher)
        assert numbers(watcher.texts()) == list(range(1, 4001))
    finally:
        watcher.close()
        server.finish(run_id)


def test_a_lagging_watcher_loses_no_line(server):
    """A client too slow to read falls out of the live room and catches up from the file."""
    run_id = server.start_run()
    watcher = watch(server, "olga", run_id)
    stalls = {"left": 60}

    def slow(data: dict[str, Any]) -> None:
        if stalls["left"] > 0:
            stalls["left"] -= 1
            time.sleep(0.25)  # 15 s of reading nothing while lines pour in

    watcher.on_lines = slow
    watcher.connect()
    try:
        # 4 MB/s for 10 s: far more than the socket buffers hold.
        server.emit(run_id, 40_000, rate=4000, pad=1000)
        watcher.wait(lambda: numbers(watcher.texts()[-1:]) == [40_000], timeout=120)
        assert_every_line_once_in_order(watcher)
        assert numbers(watcher.texts()) == list(range(1, 40_001))
        # Every frame arrived whole (a part-written frame garbles the stream and forces a
        # reconnect: the line count still converges, so this is what shows it).
        assert watcher.broken.messages == []
        # It fell behind, the server took it out of the live room, it caught up from the file.
        kinds = [bool(m.get("replay")) for m in watcher.messages]
        assert True in kinds[kinds.index(False) :], "expected a catch-up replay after live lines"
    finally:
        watcher.close()
        server.finish(run_id)


def test_a_foreign_run_is_refused_without_a_line(server):
    run_id = server.start_run("olga")
    server.emit(run_id, 50)
    stranger = watch(server, "bob", run_id).connect()
    admin = watch(server, "root", run_id).connect()
    try:
        stranger.wait(lambda: bool(stranger.errors), 10)
        admin.wait(lambda: len(admin.texts()) == 50, 10)  # admins may watch any run
        time.sleep(0.5)
        assert stranger.received == [] and stranger.errors[0]["execution_id"] == run_id
        nobody = socketio.Client()
        with pytest.raises(socketio.exceptions.ConnectionError):
            nobody.connect(server.base, namespaces=["/logs"], transports=["websocket"],
                           wait_timeout=5)  # fmt: skip
    finally:
        stranger.close()
        admin.close()
        server.finish(run_id)


def test_a_watcher_gets_only_the_streams_it_asked_for(server):
    run_id = server.start_run()
    errors_only = watch(server, "olga", run_id, streams=["stderr"]).connect()
    everything = watch(server, "olga", run_id).connect()
    try:
        server.emit(run_id, 3000, rate=3000, stderr_every=10)
        everything.wait(lambda: "line 3000" in everything.texts("stderr")[-1:])
        errors_only.wait(lambda: "line 3000" in errors_only.texts("stderr")[-1:])
        assert {row[2] for row in errors_only.received} == {"stderr"}
        assert numbers(errors_only.texts("stderr")) == list(range(10, 3001, 10))
        seqs = [row[0] for row in errors_only.received]
        assert seqs == sorted(set(seqs))
        assert_every_line_once_in_order(everything)
    finally:
        errors_only.close()
        everything.close()
        server.finish(run_id)


def test_the_viewer_count_follows_joins_and_leaves(server):
    run_id = server.start_run()

    def count() -> int:
        answer = requests.get(server.base + "/_test/viewers", params={"execution_id": run_id})
        return int(answer.json()["count"])

    first = watch(server, "olga", run_id).connect()
    try:
        first.wait(lambda: first.viewers[-1:] == [1], 10)
        second = watch(server, "root", run_id, streams=["debug"]).connect()
        first.wait(lambda: first.viewers[-1:] == [2], 10)
        second.wait(lambda: second.viewers[-1:] == [2], 10)
        assert count() == 2
        second.close()
        first.wait(lambda: first.viewers[-1:] == [1], 10)
        assert count() == 1
    finally:
        first.close()
        server.finish(run_id)


def test_the_user_room_hears_about_new_runs_and_their_end(server):
    cookie = cookie_of(server.login("olga"))
    statuses: list[dict[str, Any]] = []
    client = socketio.Client()
    client.on("status", statuses.append, namespace="/logs")
    client.connect(server.base, headers={"Cookie": cookie}, namespaces=["/logs"],
                   transports=["websocket"], wait_timeout=10)  # fmt: skip
    try:
        client.emit("join_user", {}, namespace="/logs")
        time.sleep(0.3)
        run_id = server.start_run()
        other = server.start_run("bob")
        server.finish(run_id)
        deadline = time.monotonic() + 10
        while not any(
            s == {"execution_id": run_id, "status": "completed", "exit_code": 0} for s in statuses
        ):
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        mine = [s["status"] for s in statuses if s["execution_id"] == run_id]
        assert mine[0] in ("starting", "running") and mine[-1] == "completed"
        assert all(s["execution_id"] != other for s in statuses)
    finally:
        client.disconnect()
        server.finish(other)
