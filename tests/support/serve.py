"""Run the real ``scriptsmanager serve`` (gunicorn, gevent worker) for end-to-end tests and
benchmarks, on its own data, with its own Docker instance label and network prefix."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.localnames import resolve_localhost_names

resolve_localhost_names()  # session hosts are <label>.localhost

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "e2e-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``scriptsmanager serve`` in its own process group, restartable on the same data."""

    def __init__(self, root: Path, instance: str, prefix: str, **env: str):
        self.root = root
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"  # session hosts: *.localhost, same port
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
            "SM_INSTANCE": instance,
            "SM_NETWORK_PREFIX": prefix,
            "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
            "SM_MONITOR_INTERVAL": "0.3",
            "SM_PORT": str(self.port),
            **env,
        }
        self.env.pop("DATABASE_URL", None)  # the embedded default, as `make run` uses

    def start(self) -> None:
        log = open(self.root / "serve.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "manager.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
        )
        deadline = time.time() + 120  # a busy machine can take long to import and migrate
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.kill()  # never leave a half-started server behind
        raise AssertionError("server did not start:\n" + self.log())

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean shutdown of anything."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-5000:]


def login(server: Server) -> requests.Session:
    session = requests.Session()
    response = session.post(
        server.url + "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
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


def wait_status(
    server: Server, session: requests.Session, run_id: str, wanted: set[str], timeout: float = 60
) -> dict:
    deadline = time.time() + timeout
    body: dict = {}
    while time.time() < deadline:
        body = session.get(f"{server.url}/api/executions/{run_id}").json()
        if body["status"] in wanted:
            return body
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} stayed {body.get('status')}:\n{server.log()}")


def docker_engine(instance: str, prefix: str):
    """Generator for a module fixture: the Docker client (skip/fail without an engine or the
    base image); afterwards removes the containers and networks of ``instance``/``prefix``."""
    from tests.conftest import missing

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
    remove_instance(client, instance, prefix)
    client.close()


def remove_instance(client, instance: str, prefix: str) -> None:
    """Remove every container labelled with ``instance`` and the networks named ``prefix``."""
    import docker

    from manager.sessions.network import remove_networks

    label = {"label": f"io.scriptsmanager.instance={instance}"}
    for container in client.containers.list(all=True, filters=label, sparse=True):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # The manager's own removal may still run in the engine after it stopped.
            if exc.status_code != 409:
                raise
    deadline = time.monotonic() + 30
    while client.containers.list(all=True, filters=label, sparse=True):
        if time.monotonic() > deadline:
            raise AssertionError(f"containers of {instance} are still there after 30 s")
        time.sleep(0.2)
    remove_networks(client, prefix)
