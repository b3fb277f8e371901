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
from jupyterhub_hub import BENCH_LABEL, RUN_LABEL, Hub, SpawnError  # noqa: E402
from ours_start import OurStart, StartTimeout  # noqa: E402

Row = tuple[str, str, str]
Progress = Callable[[str], None]


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
