"""Two manager processes behind one address, as in a Helm deployment with replicas: one
database, one data folder, Redis as Socket.IO's message queue. Real parts: two
``scriptsmanager serve`` (gunicorn + gevent), Debian's redis-server, Docker sessions, a real
python-socketio client on each process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from tests.conftest import missing, reset_database
from tests.support.serve import Server, docker_engine, free_port, login, script_ids, wait_status

pytestmark = pytest.mark.docker

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-replicas-{RUN}"
PREFIX = f"smtest-rep-{RUN}"
LAB = Path(__file__).resolve().parents[1] / "browser" / "lab_group"


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis", "redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    work = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def replicas(engine, redis_url, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("replicas")
    first = Server(root, INSTANCE, PREFIX, SM_REDIS_URL=redis_url, SM_LEADER_LEASE_SECONDS="4")
    shutil.copytree(LAB, root / "script_groups" / "lab")
    second = Server(root, INSTANCE, PREFIX, SM_REDIS_URL=redis_url, SM_LEADER_LEASE_SECONDS="4")
    database = os.environ.get("SM_TEST_POSTGRES_URL")
    if database:  # the production engine when there is one; else both share the SQLite file
        reset_database(database)
        for server in (first, second):
            server.env["DATABASE_URL"] = database
    first.start()
    second.start()
    yield first, second
    for server in (first, second):
        server.kill()


class Watcher:
    """A Socket.IO client on one process, joined to one run; keeps lines by seq."""

    def __init__(self, server: Server, http: requests.Session, run_id: str) -> None:
        self.lines: dict[int, list[Any]] = {}
        self.statuses: list[str] = []
        self.lock = threading.Lock()
        self.client = socketio.Client()
        self.client.on("lines", self._lines, namespace="/logs")
        self.client.on("status", lambda d: self.statuses.append(d["status"]), namespace="/logs")
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        self.client.connect(server.url, headers={"Cookie": cookie}, namespaces=["/logs"],
                            transports=["websocket"], wait_timeout=10)  # fmt: skip
        self.client.emit("join", {"execution_id": run_id, "last_seq": 0}, namespace="/logs")

    def _lines(self, data: dict[str, Any]) -> None:
        with self.lock:
            for row in data["lines"]:
                self.lines.setdefault(int(row[0]), row)

    def stdout(self) -> list[str]:
        with self.lock:
            return [row[3] for _, row in sorted(self.lines.items()) if row[2] == "stdout"]

    def wait_for(self, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.stdout()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stdout()

    def close(self) -> None:
        self.client.disconnect()


def expected(count: int) -> list[str]:
    return [f"line {n}" for n in range(1, count + 1)]


def test_a_line_pumped_by_one_process_reaches_watchers_on_both(replicas) -> None:
    first, second = replicas
    http_first, http_second = login(first), login(second)
    ids = script_ids(second, http_second)
    started = http_second.post(
        f"{second.url}/api/scripts/{ids['counter.py']}/execute", json={"parameters": {}}
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["execution_id"]
    watchers = [Watcher(first, http_first, run_id), Watcher(second, http_second, run_id)]
    try:
        for watcher in watchers:
            assert watcher.wait_for(400) == expected(400), "every line, in order, on each process"
        done = wait_status(first, http_first, run_id, {"completed", "failed"})
        assert done["status"] == "completed", done
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all("completed" in w.statuses for w in watchers):
            time.sleep(0.05)
        assert all("completed" in w.statuses for w in watchers), [w.statuses for w in watchers]
    finally:
        for watcher in watchers:
            watcher.close()


def test_killing_one_replica_loses_no_run_and_no_line(replicas) -> None:
    first, second = replicas
    http = login(second)
    ids = script_ids(second, http)
    started = http.post(f"{second.url}/api/scripts/{ids['counter.py']}/execute", json={})
    assert started.status_code == 201, started.text
    run_id = started.json()["execution_id"]
    time.sleep(1.0)  # mid-run
    os.killpg(first.process.pid, signal.SIGKILL)  # whichever was leading, one replica is gone
    first.process.wait()
    first.process = None
    done = wait_status(second, http, run_id, {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    text = http.get(f"{second.url}/api/logs/execution/{run_id}/download?format=txt").text
    numbered = [row.split("] line ", 1)[1] for row in text.splitlines() if "[stdout] line " in row]
    assert numbered == [str(n) for n in range(1, 401)], "each line stored once, in order"
    first.start()  # back for the rest of the module
