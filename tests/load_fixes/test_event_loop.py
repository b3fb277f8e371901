"""Password hashing does not stall the gevent worker: the real ``scriptsmanager serve``.

A bcrypt hash is a fraction of a second of CPU. Done on the worker's event loop, or while the
request holds a pooled database connection, fifty logins at once (bench/load) held every other
request for seconds. Here the manager must keep answering /health (which needs the database)
in a small fraction of one hash's time while logins or user creations hash; times are compared
with a hash measured on this machine, in this process, so a slow or busy host does not matter.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.support.serve import ADMIN_PASSWORD, Server, login

LOGINS = 16  # at once: more than the hashing threads and the old pool's 15 connections


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tag = uuid.uuid4().hex[:6]
    instance = Server(
        Path(tmp_path_factory.mktemp("load-fixes")), f"smtest-loadfix-{tag}", f"smlf{tag}"
    )
    instance.start()
    yield instance
    instance.kill()


def hash_seconds() -> float:
    """One bcrypt check at the manager's cost, on this machine now (median of 3)."""
    hashed = bcrypt.hashpw(b"load-fixes-password", bcrypt.gensalt())
    times = []
    for _ in range(3):
        began = time.perf_counter()
        bcrypt.checkpw(b"load-fixes-password", hashed)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


class HealthPoller(threading.Thread):
    """GET /health over and over until stopped; records each answer's latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.statuses = url, [], []
        self.done = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.done.is_set():
                began = time.perf_counter()
                status = session.get(self.url + "/health", timeout=60).status_code
                self.latencies.append(time.perf_counter() - began)
                self.statuses.append(status)
                time.sleep(0.02)

    def stop(self) -> list[float]:
        self.done.set()
        self.join(timeout=90)
        return self.latencies


def logged_in(server: Server) -> int:
    answer = requests.post(
        server.url + "/api/auth/login",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        timeout=120,
    )
    return answer.status_code


def test_logins_at_once_leave_the_manager_answering(server: Server):
    hashing = hash_seconds()
    poller = HealthPoller(server.url)
    poller.start()
    time.sleep(0.3)  # the poller's session is open and warm
    began = time.perf_counter()
    with ThreadPoolExecutor(LOGINS) as pool:
        statuses = list(pool.map(lambda _: logged_in(server), range(LOGINS)))
    storm = time.perf_counter() - began
    latencies = poller.stop()
    assert statuses == [200] * LOGINS
    assert set(poller.statuses) == {200}
    assert storm > 2 * hashing, "the logins were over before they could hold anything up"
    median = statistics.median(latencies)
    assert median < 0.5 * hashing, (
        f"/health took {median * 1000:.0f} ms (median of {len(latencies)}) while {LOGINS} "
        f"logins hashed for {storm:.1f} s; one hash takes {hashing * 1000:.0f} ms here"
    )


def test_creating_users_leaves_the_manager_answering(server: Server):
    admin = login(server)
    hashing = hash_seconds()
    poller = HealthPoller(server.url)
    poller.start()
    time.sleep(0.3)
    tag = uuid.uuid4().hex[:6]
    for n in range(5):
        answer = admin.post(
            server.url + "/api/admin/users",
            json={"username": f"lf{tag}{n}", "password": "load-fixes-password",
                  "user_level": "operator"},
            timeout=60,
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
    latencies = poller.stop()
    slow = [t for t in latencies if t > 0.5 * hashing]
    assert len(slow) <= len(latencies) // 10, (
        f"{len(slow)} of {len(latencies)} /health answers took over half a hash "
        f"({hashing * 1000:.0f} ms here) while users were created: "
        f"{sorted(round(t * 1000) for t in slow)} ms"
    )
