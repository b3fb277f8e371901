"""docker-compose.yml as shipped, brought up by Debian's docker-compose: the manager image
(``make image``) and a PostgreSQL 15 image built from Debian's package (nothing can be pulled
here). Logs in, runs a batch script and an interactive one through its session host, restarts the
manager container (the session is re-adopted), and brings the stack down leaving nothing behind.

The images it builds (``smtest-manager:compose``, ``smtest-postgres:15``) stay, as build cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import missing
from tests.support.serve import (
    docker_engine,
    free_port,
    remove_instance,
    script_ids,
    wait_status,
)

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:6]
PROJECT = f"smtestcompose{RUN}"
INSTANCE = f"smtest-compose-{RUN}"
PREFIX = f"smtest-cmp-{RUN}"
MANAGER_IMAGE = "smtest-manager:compose"
POSTGRES_IMAGE = "smtest-postgres:15"
ADMIN_PASSWORD = "compose-admin-password"


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        shutil.copytree(REPO / "script_groups", root / "srv" / "script_groups")
        self.env = {
            **os.environ,
            "SM_IMAGE": MANAGER_IMAGE,
            "POSTGRES_IMAGE": POSTGRES_IMAGE,
            "POSTGRES_PASSWORD": "compose-test-" + uuid.uuid4().hex,
            "POSTGRES_PORT": str(free_port()),
            "SECRET_KEY": "compose-test-secret-" + uuid.uuid4().hex,
            "SM_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SM_ROOT": str(root / "srv"),
            "SM_PORT": str(self.port),
            "SM_INSTANCE": INSTANCE,
            "SM_NETWORK_PREFIX": PREFIX,
        }
        self.env.pop("DATABASE_URL", None)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", PROJECT, "-f", str(REPO / "docker-compose.yml"), *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=3).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        logs = self.compose("logs", "--tail", "80").stdout
        raise AssertionError(f"the stack did not come up:\n{logs}")

    def log(self) -> str:
        """What tests.support.serve's helpers show when a run does not reach a state."""
        return self.system_log()

    def system_log(self) -> str:
        """The manager's own log (it logs to files, not to the container's output)."""
        path = self.root / "srv" / "logs" / "system" / "application.log"
        return "\n" + (path.read_text(errors="replace")[-4000:] if path.exists() else "")

    def login(self) -> requests.Session:
        http = requests.Session()
        answer = http.post(
            self.url + "/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        http.headers["X-CSRFToken"] = http.get(self.url + "/api/auth/csrf").json()["csrf_token"]
        return http


def build_images() -> None:
    for command in (
        ["make", "image", f"IMAGE={MANAGER_IMAGE}"],
        ["docker", "build", "-q", "-t", POSTGRES_IMAGE, "tests/compose/postgres"],
    ):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("docker-compose") is None:
        missing("docker", "docker-compose is not installed (apt-get install docker-compose)")
    build_images()
    deployed = Stack(tmp_path_factory.mktemp("compose"))
    up = deployed.compose("up", "-d", "--no-build")
    assert up.returncode == 0, up.stderr
    try:
        deployed.wait_healthy()
        yield deployed
    finally:
        deployed.compose("down", "-v", "--remove-orphans", "--timeout", "5")
        remove_instance(engine, INSTANCE, PREFIX)


def test_the_stack_runs_scripts_and_survives_a_manager_restart(stack: Stack, engine) -> None:
    http = stack.login()
    health = http.get(stack.url + "/health").json()
    assert health["database"]["engine"] == "postgresql"
    ids = script_ids(stack, http)

    batch = http.post(f"{stack.url}/api/scripts/{ids['csv_summary.py']}/execute", json={})
    assert batch.status_code == 201, batch.text + stack.system_log()
    done = wait_status(stack, http, batch.json()["execution_id"], {"completed", "failed"})
    assert done["status"] == "completed", done

    opened = http.post(f"{stack.url}/api/scripts/{ids['calculator.py']}/execute", json={})
    assert opened.status_code == 201, opened.text
    session = opened.json()
    wait_status(stack, http, session["execution_id"], {"running"})
    assert session["proxy_url"].startswith("http://p") and ".localhost:" in session["proxy_url"]
    assert http.get(session["proxy_url"]).status_code == 200
    answer = http.post(session["proxy_url"] + "calculate", json={"expression": "6*7"})
    assert answer.status_code == 200 and answer.json()["formatted"] == "42"

    restarted = stack.compose("restart", "manager")
    assert restarted.returncode == 0, restarted.stderr
    stack.wait_healthy()
    history = http.get(session["proxy_url"] + "history")
    assert history.status_code == 200 and history.json()[0]["result"] == "42"

    assert http.post(f"{stack.url}/api/sessions/{session['execution_id']}/stop").status_code == 200
    wait_status(stack, http, session["execution_id"], {"terminated"})


def test_down_leaves_nothing_behind(stack: Stack, engine) -> None:
    """Runs last in this module: the stack goes down here, and the fixture finds nothing left."""
    down = stack.compose("down", "-v", "--remove-orphans", "--timeout", "5")
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        label = {"label": f"com.docker.compose.project={PROJECT}"}
        left = (
            engine.containers.list(all=True, filters=label)
            + engine.containers.list(
                all=True, filters={"label": f"io.scriptsmanager.instance={INSTANCE}"}
            )
            + engine.volumes.list(filters=label)
        )
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
    assert not [n for n in engine.networks.list() if n.name.startswith(PROJECT)]
