"""Where an idle interactive session's memory is: per process, and the container's total.

Starts one calculator session (``script_groups/engineering_tools/calculator.py``) on the local
Docker engine the way the manager does (DockerBackend, output capture on, interactive network),
loads its page once (``--warm N``: then N more requests, 8 at a time, over its pages,
calculations and history, so every server thread has worked), lets it idle ``--settle`` seconds,
then prints for each process of the container its RSS, PSS and anonymous memory
(``/proc/<pid>/smaps_rollup``, read on the host: run as root) and threads, and the container's
figure as ``docker stats`` shows it (cgroup usage less inactive page cache) and its anonymous
memory. Removes the container and its networks after.

    python bench/density/session_memory.py [--image IMAGE] [--env NAME=VALUE ...] [--rounds 1]

``--env`` adds environment variables to the session (to compare allocator settings, say) and
``--image`` measures another image than the ``base`` environment's current one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from manager.sessions import images  # noqa: E402
from manager.sessions.backend import LABEL_INSTANCE  # noqa: E402
from manager.sessions.docker import (  # noqa: E402
    DockerBackend,
    prepare_workspace,
    write_context_file,
)
from manager.sessions.limits import Limits  # noqa: E402
from manager.sessions.network import remove_networks  # noqa: E402
from manager.sessions.spec import build_spec, context_document  # noqa: E402

GROUP = ROOT / "script_groups" / "engineering_tools"
SCRIPT = "calculator.py"
PREFIX = "/project/1/script/2/user/3"
SMAPS_FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Anonymous", "Private_Dirty")


def env_image(client: Any) -> str:
    """The ``base`` environment image for the runner files as they are now (built if missing)."""
    base = images.DEBOOTSTRAP_BASE_TAG
    wheelhouse = Path.home() / ".cache" / "scriptsmanager" / "wheelhouse"
    spec = ROOT / "conda-envs" / "base.yml"
    return images.build_env_image("base", spec, ROOT / "runner-image", client, base, wheelhouse)


def process_memory(container_id: str) -> list[dict[str, Any]]:
    """Each process of the container: pid, parent pid, command line, threads, smaps_rollup
    figures in KiB."""
    procs = Path(f"/sys/fs/cgroup/memory/docker/{container_id}/cgroup.procs")
    if not procs.exists():
        procs = Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cgroup.procs")
    if not procs.exists():
        return []  # no cgroup files here (a remote or rootless engine)
    found = []
    for pid in procs.read_text().split():
        proc = Path("/proc", pid)
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            rollup = (proc / "smaps_rollup").read_text().splitlines()
            status = (proc / "status").read_text().splitlines()
        except OSError:
            continue
        row: dict[str, Any] = {"pid": int(pid), "cmd": cmdline}
        for line in rollup[1:]:
            key, _, value = line.partition(":")
            if key in SMAPS_FIELDS:
                row[key] = int(value.split()[0])
        for line in status:
            if line.startswith("Threads:"):
                row["threads"] = int(line.split()[1])
            elif line.startswith("PPid:"):
                row["ppid"] = int(line.split()[1])
        found.append(row)
    return found


def container_memory(client: Any, container_id: str) -> tuple[float, float]:
    """MiB: usage less inactive page cache (``docker stats``' figure), and anonymous memory.

    The same figures as ``benchlib.container_memory``: read from the cgroup files when this host
    has them, else from the engine's stats (which give no anonymous figure: NaN).
    """
    mib = 1024 * 1024
    for folder, usage_file, cache_key, anon_key in (
        (f"/sys/fs/cgroup/memory/docker/{container_id}", "memory.usage_in_bytes",
         "total_inactive_file", "total_rss"),
        (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope", "memory.current",
         "inactive_file", "anon"),
    ):  # fmt: skip
        path = Path(folder)
        if (path / usage_file).exists():
            usage = int((path / usage_file).read_text())
            stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
            return (usage - int(stat[cache_key])) / mib, int(stat[anon_key]) / mib
    memory = client.containers.get(container_id).stats(stream=False).get("memory_stats", {})
    stats = memory.get("stats", {})
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return (memory.get("usage", 0) - cache) / mib, float("nan")


def start_calculator(
    backend: DockerBackend,
    image: str,
    root: Path,
    environment: dict[str, str],
    script: str = SCRIPT,
) -> Any:
    """Start one calculator session (or ``script``'s) as the manager would; return its handle."""
    execution = str(uuid.uuid4())
    workspace = prepare_workspace(root / "workspace")
    document = context_document(
        script_filename=script, parameters={}, user_id=3, user_level="operator",
        project_id=1, project_name="Density", prefix=PREFIX,
    )  # fmt: skip
    context = write_context_file(root / f"{execution}.json", document)
    spec = build_spec(
        execution_uuid=execution, image=image, script_host_dir=str(GROUP),
        script_filename=script, workspace_host_dir=str(workspace), context_host_file=str(context),
        limits=Limits(memory="256m", cpus=1.0, pids=64, tmpfs="16m", run_timeout=600),
        user_id=3, script_id=2, project_id=1, interactive=True, instance=backend.instance,
    )  # fmt: skip
    spec = dataclasses.replace(spec, environment={**spec.environment, **environment})
    return backend.start(spec)


def wait_page(
    backend: DockerBackend, handle: Any, timeout: float = 60, prefix: str = PREFIX
) -> float:
    """Seconds until the session's page answers 200 (loaded once, as a user opening it)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        target = backend.address(handle)
        if target is not None:
            try:
                url = f"http://{target.host}:{target.port}{prefix}/"
                if requests.get(url, timeout=5).status_code == 200:
                    return time.monotonic() - began
            except requests.RequestException:
                pass
        if backend.poll(handle) is not None:
            break
        time.sleep(0.1)
    lines = "\n".join(f"{line.stream}: {line.text}" for line in backend.logs(handle))
    raise RuntimeError(f"the session did not answer within {timeout} s:\n{lines}")


def warm(backend: DockerBackend, handle: Any, requests_count: int) -> None:
    """``requests_count`` requests, 8 at a time, spread over the calculator's routes."""
    from concurrent.futures import ThreadPoolExecutor

    target = backend.address(handle)
    url = f"http://{target.host}:{target.port}{PREFIX}"

    def one(n: int) -> int:
        with requests.Session() as client:
            if n % 3 == 0:
                return client.get(f"{url}/", timeout=30).status_code
            if n % 3 == 1:
                expression = {"expression": f"sqrt({n}) * sin({n}) + {n} ** 2"}
                return client.post(f"{url}/calculate", json=expression, timeout=30).status_code
            return client.get(f"{url}/history", timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(requests_count)))
    failed = [status for status in statuses if status != 200]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {requests_count} warm-up requests failed: {failed[:5]}"
        )


def measure(
    backend: DockerBackend,
    image: str,
    root: Path,
    environment: dict[str, str],
    settle: float,
    warm_requests: int = 0,
    script: str = SCRIPT,
) -> dict[str, Any]:
    handle = start_calculator(backend, image, root, environment, script)
    try:
        # A legacy script serves its own app, at the root (the manager's proxy strips the prefix).
        legacy = "@interface: legacy" in (GROUP / script).read_text(encoding="utf-8")
        ready = wait_page(backend, handle, prefix="" if legacy else PREFIX)
        if warm_requests:
            warm(backend, handle, warm_requests)
        time.sleep(settle)
        container_id = handle.state["container_id"]
        total, anon = container_memory(backend.client, container_id)
        return {"ready_s": ready, "total_mib": total, "anon_mib": anon,
                "processes": process_memory(container_id)}  # fmt: skip
    finally:
        backend.remove(handle)


def show(result: dict[str, Any]) -> None:
    print(f"container: {result['total_mib']:.1f} MiB (docker stats), anon {result['anon_mib']:.1f}"
          f" MiB; page answered after {result['ready_s']:.1f} s")  # fmt: skip
    print(f"  {'pid':>7} {'thr':>3} " + " ".join(f"{k:>13}" for k in SMAPS_FIELDS) + "  command")
    for row in result["processes"]:
        figures = " ".join(f"{row.get(k, 0) / 1024:>10.1f} Mi" for k in SMAPS_FIELDS)
        print(f"  {row['pid']:>7} {row.get('threads', 0):>3} {figures}  {row['cmd'][:60]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="image to measure (default: the base env image)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the session")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--script", default=SCRIPT, help="another script of engineering_tools")
    parser.add_argument("--warm", type=int, default=0, help="requests after the first page")
    parser.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    args = parser.parse_args()
    environment = dict(item.split("=", 1) for item in args.env)

    import docker

    client = docker.from_env()
    run = uuid.uuid4().hex[:6]
    instance, prefix, bridges = f"smdensity-{run}", f"smdensity-{run}", f"smd{run}"
    backend = DockerBackend(
        client, instance=instance, network_prefix=prefix, bridge_prefix=bridges,
        capture_dir=tempfile.mkdtemp(prefix="smdensity-capture-"),
    )  # fmt: skip
    image = args.image or env_image(client)
    try:
        with tempfile.TemporaryDirectory(prefix="smdensity-") as folder:
            for _ in range(args.rounds):
                result = measure(
                    backend, image, Path(folder), environment, args.settle, args.warm, args.script
                )
                result["image"] = image
                print(json.dumps(result)) if args.json else show(result)
    finally:
        for container in client.containers.list(
            all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
        ):
            container.remove(force=True)
        remove_networks(client, prefix, bridges)
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
