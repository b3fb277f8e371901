"""End to end on real parts: ``scriptsmanager serve`` (gunicorn, gevent worker), Docker sessions
with the real runner image, the reverse proxy, a manager killed with SIGKILL and restarted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, missing

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-e2e-{RUN}"
PREFIX = f"smtest-e2e-{RUN}"
ADMIN_PASSWORD = "e2e-admin-password"

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def engine():
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        missing("docker", f"Docker is not available: {exc}")
    from manager.sessions.images import DEBOOTSTRAP_BASE_TAG, image_exists

    if not image_exists(client, DEBOOTSTRAP_BASE_TAG):
        missing("docker", f"{DEBOOTSTRAP_BASE_TAG} is not built (scriptsmanager images base)")
    yield client
    for container in client.containers.list(
        all=True, filters={"label": f"io.scriptsmanager.instance={INSTANCE}"}
    ):
        container.remove(force=True)
    from manager.sessions.network import remove_networks

    remove_networks(client, PREFIX)
    client.close()


class Server:
    """``scriptsmanager serve`` in its own process group, restartable on the same data."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        groups = root / "script_groups"
        if not groups.exists():
            shutil.copytree(REPO / "script_groups", groups)
        self.env = {
            **os.environ,
            "SECRET_KEY": "e2e-secret-key-" + "x" * 32,
            "SM_DATA_DIR": str(root / "data"),
            "SM_LOG_DIR": str(root / "logs"),
            "SM_SCRIPT_GROUPS_DIR": str(groups),
            "SM_CONDA_ENVS_DIR": str(REPO / "conda-envs"),
            "SM_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SM_INSTANCE": INSTANCE,
            "SM_NETWORK_PREFIX": PREFIX,
            "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
            "SM_MONITOR_INTERVAL": "0.3",
            "SM_PORT": str(self.port),
        }
        self.env.pop("DATABASE_URL", None)  # the embedded default, as `make run` uses

    def start(self) -> None:
        log = open(self.root / "serve.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "manager.cli", "serve"], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("server did not start:\n" + self.log())

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean shutdown of anything."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-5000:]


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    instance = Server(tmp_path_factory.mktemp("e2e"))
    instance.start()
    yield instance
    instance.kill()


def login(server: Server) -> requests.Session:
    session = requests.Session()
    response = session.post(server.url + "/api/auth/login",
                            json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    token = session.get(server.url + "/api/auth/csrf").json()["csrf_token"]
    session.headers["X-CSRFToken"] = token
    return session


def script_ids(server: Server, session: requests.Session) -> dict[str, int]:
    ids = {}
    for group in session.get(server.url + "/api/script-groups").json()["groups"]:
        listing = session.get(f"{server.url}/api/script-groups/{group['id']}/scripts").json()
        ids.update({s["filename"]: s["id"] for s in listing["scripts"]})
    return ids


def wait_status(server: Server, session: requests.Session, run_id: str, wanted: set[str],
                timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    body: dict = {}
    while time.time() < deadline:
        body = session.get(f"{server.url}/api/executions/{run_id}").json()
        if body["status"] in wanted:
            return body
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} stayed {body.get('status')}:\n{server.log()}")


def test_batch_run_in_a_container(server: Server):
    session = login(server)
    ids = script_ids(server, session)
    started = session.post(f"{server.url}/api/scripts/{ids['csv_summary.py']}/execute",
                           json={"parameters": {}})
    assert started.status_code == 201, started.text
    done = wait_status(server, session, started.json()["execution_id"],
                       {"completed", "failed"})
    assert done["status"] == "completed" and done["exit_code"] == 0, done
    workspace = server.root / "data" / "script_groups" / "data_processing" / "admin"
    assert any(workspace.rglob("*.json")), "the report should persist in the workspace"


def test_interactive_session_through_the_proxy_survives_a_manager_kill(server: Server, engine):
    session = login(server)
    ids = script_ids(server, session)
    opened = session.post(f"{server.url}/api/scripts/{ids['calculator.py']}/execute", json={})
    assert opened.status_code == 201, opened.text
    body = opened.json()
    wait_status(server, session, body["execution_id"], {"running"})
    page = session.get(server.url + body["proxy_url"])
    assert page.status_code == 200 and "<html" in page.text.lower()
    answer = session.post(server.url + body["proxy_url"] + "calculate",
                          json={"expression": "6*7"})
    assert answer.status_code == 200 and answer.json()["formatted"] == "42"

    server.kill()
    server.start()  # same data, same engine: the session is re-adopted
    again = session.get(server.url + body["proxy_url"] + "history")
    assert again.status_code == 200, again.text
    assert again.json()[0]["result"] == "42"

    stranger = requests.get(server.url + body["proxy_url"], allow_redirects=False)
    assert stranger.status_code in (302, 401)

    stopped = session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
    assert stopped.status_code == 200
    final = wait_status(server, session, body["execution_id"], {"terminated"})
    assert final["status"] == "terminated"
    deadline = time.time() + 20
    while time.time() < deadline:
        left = engine.containers.list(
            all=True, filters={"label": f"io.scriptsmanager.execution={body['execution_id']}"})
        if not left:
            break
        time.sleep(0.3)
    assert not left, "the reaper should remove the stopped container"
