"""The JupyterHub reference's hub: the proxy and hub containers, and a REST client to spawn.

configurable-http-proxy and the hub run on a network of the run's own (``smbench-jh-<run>``),
every container labelled with the run; ``bench_jupyterhub.cleanup`` removes them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
BENCH_LABEL = "io.scriptsmanager.bench"
RUN_LABEL = "io.scriptsmanager.bench.run"
SPAWN_TIMEOUT = 120.0


class SpawnError(RuntimeError):
    """A spawn or stop did not complete; the message says what the hub answered."""


class Hub:
    """The hub container on its own network, and the benchmark's REST client for it."""

    def __init__(self, client: Any, run: str, hub_image: str, singleuser_image: str):
        self.client = client
        self.run = run
        self.name = f"smbench-jh-{run}-hub"
        self.network = f"smbench-jh-{run}"
        self.labels = {BENCH_LABEL: "jupyterhub", RUN_LABEL: run}
        self.hub_image = hub_image
        self.singleuser_image = singleuser_image
        self.token = secrets.token_hex(32)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"
        self.url = ""

    def start(self, timeout: float = 300) -> None:
        """Start the proxy, then the hub, and wait until the hub's API answers through the proxy.

        configurable-http-proxy runs in a container of its own (as zero-to-jupyterhub runs it in
        a pod of its own): a hub that starts the proxy itself gives it 15 s (hard-coded), which
        node on a loaded 2-core machine does not always make.
        """
        proxy_token = secrets.token_hex(32)
        self.client.networks.create(self.network, driver="bridge", labels=self.labels)
        hub_url = f"http://{self.name}:8081"
        proxy = self.client.containers.run(
            self.hub_image, name=f"smbench-jh-{self.run}-proxy", detach=True,
            network=self.network, labels=self.labels,
            environment={"CONFIGPROXY_AUTH_TOKEN": proxy_token},
            command=["configurable-http-proxy", "--ip", "0.0.0.0", "--port", "8000",
                     "--api-ip", "0.0.0.0", "--api-port", "8001", "--default-target", hub_url,
                     "--error-target", f"{hub_url}/hub/error"],
        )  # fmt: skip
        proxy.reload()
        address = proxy.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        self.url = f"http://{address}:8000"
        deadline = time.monotonic() + timeout
        self._wait(deadline, [proxy], lambda answer: True)  # any answer: it is listening
        hub = self.client.containers.run(
            self.hub_image, name=self.name, detach=True, network=self.network, labels=self.labels,
            environment={
                "SMBENCH_JH_RUN": self.run, "SMBENCH_JH_TOKEN": self.token,
                "SMBENCH_JH_IMAGE": self.singleuser_image, "SMBENCH_JH_NETWORK": self.network,
                "SMBENCH_JH_HUB_NAME": self.name, "SMBENCH_JH_PROXY_NAME": proxy.name,
                "CONFIGPROXY_AUTH_TOKEN": proxy_token,
            },
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                str(HERE / "jupyterhub_config.py"):
                    {"bind": "/etc/jupyterhub/jupyterhub_config.py", "mode": "ro"},
            },
        )  # fmt: skip
        self._wait(deadline, [proxy, hub], lambda answer: answer.status_code == 200)

    def _wait(
        self, deadline: float, containers: list[Any], done: Callable[[requests.Response], bool]
    ) -> None:
        """GET ``/hub/api/`` through the proxy until ``done``; raise if a container exits."""
        while time.monotonic() < deadline:
            try:
                if done(self.http.get(f"{self.url}/hub/api/", timeout=2)):
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or busy starting
            for container in containers:
                container.reload()
                if container.status != "running":
                    tail = container.logs(tail=15).decode(errors="replace")
                    raise SpawnError(f"{container.name} exited: {tail[-600:]}")
            time.sleep(0.2)
        names = ", ".join(container.name for container in containers)
        raise SpawnError(f"no answer from {self.url}/hub/api/ in time ({names})")

    def create_user(self, user: str) -> None:
        response = self.http.post(f"{self.url}/hub/api/users/{user}")
        if response.status_code not in (201, 409):
            raise SpawnError(f"creating {user}: {response.status_code} {response.text[:200]}")

    def spawn(self, user: str) -> float:
        """POST the server, then GET ``/user/<u>/api`` through the proxy until 200; seconds."""
        began = time.perf_counter()
        response = self.http.post(f"{self.url}/hub/api/users/{user}/server")
        if response.status_code not in (201, 202):
            raise SpawnError(f"POST server: {response.status_code} {response.text[:200]}")
        url = f"{self.url}/user/{user}/api"
        asked = began
        while True:
            answer = self.http.get(url, allow_redirects=False)
            if answer.status_code == 200:
                return time.perf_counter() - began
            if time.perf_counter() - began > SPAWN_TIMEOUT:
                raise SpawnError(f"no 200 from {url} in {SPAWN_TIMEOUT:.0f} s: {answer}")
            if time.perf_counter() - asked > 1:  # has the hub given up on it?
                asked = time.perf_counter()
                if not self._pending_or_running(user):
                    raise SpawnError(f"the hub gave up: {self._last_log_line()}")
            time.sleep(0.01)  # bench_start polls ours every 10 ms too

    def _pending_or_running(self, user: str) -> bool:
        model = self.http.get(f"{self.url}/hub/api/users/{user}").json()
        return bool(model.get("servers") or model.get("pending"))

    def _last_log_line(self) -> str:
        """The hub's last error or warning line (why a spawn failed)."""
        logs = self.client.containers.get(self.name).logs(tail=50).decode(errors="replace")
        lines = [line for line in logs.splitlines() if line.startswith(("[E", "[W"))]
        return lines[-1][-300:] if lines else "(nothing in the hub's log)"

    def stop(self, user: str, timeout: float = 60) -> None:
        """DELETE the server and wait until the hub has no server for ``user``."""
        response = self.http.delete(f"{self.url}/hub/api/users/{user}/server")
        if response.status_code not in (202, 204, 400):  # 400: it was not running
            raise SpawnError(f"DELETE server: {response.status_code} {response.text[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending_or_running(user):
                return
            time.sleep(0.1)
        raise SpawnError(f"the server of {user} did not stop in {timeout:.0f} s")
