"""The JupyterHub reference: a DockerSpawner spawn, POST server -> first 200 through the proxy.

Builds (once, cached by a hash tag) a hub image (JupyterHub, DockerSpawner, configurable-http-
proxy) and a single-user image (``jupyterhub-singleuser`` on jupyter_server) on the project's
debootstrap base (``jupyterhub_images.py``; nothing is pulled), runs the hub on a network of its
own with the Docker socket, and times N spawns through the hub's REST API: POST
``/hub/api/users/<u>/server``, then GET ``/user/<u>/api`` through the proxy until it answers 200,
as ``bench/sessions/bench_start.py`` times ours (execute -> first 200 through our proxy). Each
server is stopped before the next. Interleaved with the spawns, round by round: ours (bench_start's
cold start, ``ours_start.py``; ``--no-ours`` leaves it out) and ``docker run -d`` of our session
image (the engine's floor, bench_start's flags). Every container, network and volume it creates
carries the run's label and is removed at the end, on Ctrl-C or SIGTERM too.

Prints a Markdown table (rows starting ``| jupyterhub``) for ``bench/run_all.py``; when Docker or
an image is missing the row says why. Never exits non-zero except on Ctrl-C.

    python bench/reference/bench_jupyterhub.py [--spawns 20] [--no-ours]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "bench"))

import jupyterhub_images  # noqa: E402
from ours_start import OurStart, StartTimeout  # noqa: E402

BENCH_LABEL = "io.scriptsmanager.bench"
RUN_LABEL = "io.scriptsmanager.bench.run"
SPAWN_TIMEOUT = 120.0
Row = tuple[str, str, str]
Progress = Callable[[str], None]


class SpawnError(RuntimeError):
    """A spawn or stop did not complete; the message says what the hub answered."""


@dataclass
class Result:
    spawns: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str = ""  # why nothing was measured


def summary(values: list[float]) -> str:
    """``p50 / p95 / max`` in milliseconds (p95: the nearest rank, as bench_start's)."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{statistics.median(values) * 1000:.0f} / {p95 * 1000:.0f} / {ordered[-1] * 1000:.0f}"


def versions() -> str:
    pins = [*jupyterhub_images.HUB_PACKAGES, jupyterhub_images.CONFIGURABLE_HTTP_PROXY]
    return ", ".join(pin.replace("==", " ").replace("@", " ") for pin in pins)


def rows(result: Result) -> list[Row]:
    """The table rows for ``bench/run_all.py``: the reference, ours and the floor, with ratios."""
    if result.skipped:
        return [("jupyterhub: reference spawn", "did not run", _cell(result.skipped))]
    first = f" ({_cell(result.errors[0][:120])})" if result.errors else ""
    errors = f"errors {len(result.errors)}{first}"
    if not result.spawns:
        return [("jupyterhub: reference spawn", "no figures", errors)]
    spawn = statistics.median(result.spawns)
    ratios = [f"{spawn / statistics.median(result.ours):.1f}x ours"] if result.ours else []
    ratios += [f"{spawn / statistics.median(result.floor):.1f}x the floor"] if result.floor else []
    table = [
        (
            f"jupyterhub: reference spawn p50/p95/max ms ({len(result.spawns)})",
            summary(result.spawns),
            f"{versions()}; POST server -> first 200 through the proxy; "
            f"p50 {', '.join(ratios) or 'alone'}; {errors}",
        )
    ]
    if result.ours:
        table.append((
            f"jupyterhub: ours, cold start p50/p95/max ms ({len(result.ours)})",
            summary(result.ours),
            "bench_start's cold start (execute -> first 200 through our proxy), interleaved; "
            f"ours/JupyterHub p50 {statistics.median(result.ours) / spawn:.0%}",
        ))  # fmt: skip
    if result.floor:
        table.append((
            f"jupyterhub: docker run -d floor p50/p95/max ms ({len(result.floor)})",
            summary(result.floor),
            "our session image, bench_start's flags, interleaved",
        ))  # fmt: skip
    return table


def _cell(text: str) -> str:
    """``text`` fit for one cell of a Markdown table row."""
    return " ".join(text.replace("|", "/").split())


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


def floor_run(image: str, run: str) -> float:
    """``docker run -d`` of our session image (bench_start's flags, plus the run's labels)."""
    name = f"smbench-jh-{run}-floor-{uuid.uuid4().hex[:6]}"
    began = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", f"{BENCH_LABEL}=jupyterhub",
         "--label", f"{RUN_LABEL}={run}", "--network", "none", "--read-only",
         "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--init",
         "--user", "10001:10001", "--memory", "256m", "--entrypoint", "sleep", image, "60"],
        capture_output=True, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - began
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    return elapsed


def session_image(client: Any) -> str:
    """Our ``base`` session image on the debootstrap base (as bench_start's manager runs it)."""
    from manager.sessions.images import build_env_image

    wheelhouse = Path.home() / ".cache" / "scriptsmanager" / "wheelhouse"
    return build_env_image(
        "base", REPO / "conda-envs" / "base.yml", REPO / "runner-image", client,
        jupyterhub_images.DEBOOTSTRAP_BASE_TAG, wheelhouse,
    )  # fmt: skip


def cleanup(client: Any, run: str) -> None:
    """Remove this run's containers (with their volumes), networks and volumes; nothing else."""
    import docker.errors

    selector = {"label": f"{RUN_LABEL}={run}"}
    prefix = f"smbench-jh-{run}-"
    found = {c.id: c for c in client.containers.list(all=True, filters=selector)}
    for container in client.containers.list(all=True, filters={"name": prefix}):
        if container.name.startswith(prefix):  # a spawn whose labels did not take
            found[container.id] = container
    for container in found.values():
        with contextlib.suppress(docker.errors.NotFound):  # DockerSpawner removed it first
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=selector):
        network.remove()
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)


def measure(client: Any, spawns: int, progress: Progress = print, ours: bool = True) -> Result:
    """Build what is missing, then time ``spawns`` spawns, our starts (with ``ours``) and floors,
    interleaved; remove everything this run created."""
    from docker.errors import DockerException

    from manager.sessions.base_image import ImageBuildError

    result = Result()
    try:
        hub_image, singleuser_image = jupyterhub_images.ensure_images(client, progress)
        floor_image = session_image(client)
    except (ImageBuildError, DockerException, LookupError, ValueError, OSError) as exc:
        result.skipped = f"an image could not be built: {exc}"[:400]
        return result
    run = uuid.uuid4().hex[:8]
    hub = Hub(client, run, hub_image, singleuser_image)
    with tempfile.TemporaryDirectory(prefix="smbench-jh-") as tmp:
        manager = OurStart(Path(tmp), f"smbench-jh-{run}-ours") if ours else None
        try:
            hub.start()
            for user in ["warmup", *(f"bench{i}" for i in range(spawns))]:
                hub.create_user(user)
            hub.spawn("warmup")  # the engine's and the hub's caches, as bench_start warms ours
            hub.stop("warmup")
            floor_run(floor_image, run)
            if manager is not None:
                manager.start()
            _interleave(hub, manager, floor_image, spawns, result, progress)
        except (SpawnError, DockerException, requests.RequestException,
                subprocess.CalledProcessError, AssertionError, KeyError,
                StartTimeout) as exc:  # fmt: skip
            result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            if manager is not None:
                manager.stop()
            cleanup(client, run)
    return result


def _interleave(
    hub: Hub,
    manager: OurStart | None,
    floor_image: str,
    spawns: int,
    result: Result,
    progress: Progress,
) -> None:
    """Ours, the reference, the floor; again: the machine's noise falls on all three alike."""
    for i in range(spawns):
        user = f"bench{i}"
        ours = ""
        if manager is not None:
            try:
                result.ours.append(manager.time())
                ours = f"; ours {result.ours[-1]:.2f} s"
            except (StartTimeout, requests.RequestException, KeyError) as exc:
                ours = f"; ours failed: {exc}"
                result.errors.append(f"ours: {type(exc).__name__}: {exc}")
        try:
            result.spawns.append(hub.spawn(user))
            spawned = f"{result.spawns[-1]:.2f} s"
        except (SpawnError, requests.RequestException) as exc:
            spawned = f"failed: {exc}"
            result.errors.append(f"{user}: {exc}")
        hub.stop(user)
        result.floor.append(floor_run(floor_image, hub.run))
        line = f"{i + 1}/{spawns}: JupyterHub {spawned}; floor {result.floor[-1]:.2f} s"
        progress(line + ours)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument(
        "--ours",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="interleave our cold start (bench_start's) with the spawns (default: yes)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # cleanup runs in measure's finally

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    import benchlib

    info = benchlib.machine()
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        result = Result(skipped=f"Docker is not available: {exc}"[:300])
    else:
        try:
            result = measure(client, args.spawns, progress, args.ours)
        except Exception as exc:  # noqa: BLE001 - a benchmark that cannot run is a row
            traceback.print_exc()
            result = Result(skipped=f"{type(exc).__name__}: {exc}"[:300])
    print(benchlib.machine_line(info))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| figure | value | reference / ratio |")
    print("|---|---|---|")
    for figure, value, note in rows(result):
        print(f"| {figure} | {value} | {note} |")
    for error in result.errors:
        print(f"error: {error}")


if __name__ == "__main__":
    main()
