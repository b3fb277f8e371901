"""Hostile scripts through the real manager and Docker: each is contained by its group's limits,
recorded with the right state, and the manager keeps answering meanwhile."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import missing
from tests.support.serve import Server, login, remove_instance, script_ids, wait_status

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-hostile-{RUN}"
PREFIX = f"smtest-hos-{RUN}"

pytestmark = pytest.mark.docker

SCRIPTS = {
    "fork_bomb.py": '''"""
ScriptsManager Metadata:
@description: Tries to start a thousand processes
@required_level: operator
"""
import os, time
children = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"stopped after {children} children: {exc}", flush=True)
''',
    "memory_balloon.py": '''"""
ScriptsManager Metadata:
@description: Allocates memory until something stops it
@required_level: operator
"""
blocks = []
while True:
    blocks.append(bytearray(16 * 1024 * 1024))
''',
    "endless_loop.py": '''"""
ScriptsManager Metadata:
@description: Never ends
@required_level: operator
@execution_timeout: 3
"""
while True:
    pass
''',
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        missing("docker", f"Docker is not available: {exc}")
    root = tmp_path_factory.mktemp("hostile")
    instance = Server(root, INSTANCE, PREFIX)
    group = root / "script_groups" / "hostile"
    group.mkdir()
    (group / "metadata.json").write_text(
        json.dumps(
            {
                "name": "Hostile",
                "required_level": "operator",
                "conda_environment": "base",
                "limits": {"memory": "96m", "pids": 32, "cpus": 0.5, "run_timeout": 20},
            }
        )
    )
    for name, source in SCRIPTS.items():
        (group / name).write_text(source)
    instance.start()
    yield instance
    instance.kill()
    remove_instance(client, INSTANCE, PREFIX)
    client.close()


def test_hostile_scripts_are_contained_and_the_manager_stays_responsive(server: Server):
    session = login(server)
    ids = script_ids(server, session)
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            began = time.perf_counter()
            requests.get(server.url + "/health", timeout=10)
            latencies.append(time.perf_counter() - began)
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    runs = {}
    for name in SCRIPTS:
        response = session.post(f"{server.url}/api/scripts/{ids[name]}/execute", json={})
        assert response.status_code == 201, response.text
        runs[name] = response.json()["execution_id"]
    final = {"completed", "failed", "killed", "timed_out", "terminated", "lost"}
    results = {
        name: wait_status(server, session, run, final, timeout=90) for name, run in runs.items()
    }
    done.set()
    prober.join()

    assert results["memory_balloon.py"]["status"] == "killed", results["memory_balloon.py"]
    assert results["memory_balloon.py"]["oom_killed"] is True
    assert results["endless_loop.py"]["status"] == "timed_out", results["endless_loop.py"]
    assert results["endless_loop.py"]["timed_out"] is True
    bomb = results["fork_bomb.py"]
    assert bomb["status"] in {"completed", "failed"}, bomb
    with sqlite3.connect(server.root / "data" / "scriptsmanager.db") as database:
        (output,) = database.execute(
            "SELECT output FROM execution_logs WHERE execution_uuid = ?", (runs["fork_bomb.py"],)
        ).fetchone()
    assert "stopped after" in output and "Resource temporarily unavailable" in output, output
    assert latencies, "the health probe never ran"
    assert max(latencies) < 2.0, f"manager slow while sessions misbehaved: {max(latencies):.2f} s"
