"""Session start latency: execute request -> first 200 through the proxy, p50/p95.

Runs the real ``scriptsmanager serve`` with Docker (like the end-to-end tests), opens the
interactive calculator N times (each a new container: the previous one is stopped first), in
three modes interleaved run by run, so the machine's noise falls on all of them alike:

- cold: the group's pool size is 0 (the default), the container is created and started on the
  request path;
- pooled: pool size 1; the run form is opened first (the intent that fills the pool), then the
  execute takes the standby once it is ready: its runner waits with Flask imported (it says so
  with ``standby-ready`` in its capture folder, sessions/pool.py), and at least 0.5 s after its
  container runs (a person reading the form);
- ``docker run -d`` of the same session image (``sleep``, the session's hardening flags), the
  engine's floor for a start, twice: on the session network an interactive session joins (a
  user-defined bridge: the engine also sets up its embedded DNS and firewall rules in the
  container, about 100 ms more here), the like-for-like floor the cold target is held against,
  and with no network at all, for reference.

Also prints a batch run (execute -> completed, cold) for reference.

    python bench/sessions/bench_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from manager.sessions.network import SessionNetworks  # noqa: E402
from tests.support.serve import (  # noqa: E402
    Server,
    login,
    remove_instance,
    script_ids,
    wait_status,
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def interactive_start(
    server: Server, session: requests.Session, script_id: int, answered: list[float] | None = None
) -> float:
    """Execute -> first 200 through the proxy; ``answered`` gets the execute request's own time.

    Opens ``enter_url`` (the session host with a ticket, as the run form's new tab does) when
    the answer has one, else ``proxy_url``.
    """
    began = time.perf_counter()
    body = session.post(f"{server.url}/api/scripts/{script_id}/execute", json={}).json()
    if answered is not None:
        answered.append(time.perf_counter() - began)
    url = body.get("enter_url") or body["proxy_url"]
    while True:
        response = session.get(url)
        if response.status_code == 200:
            elapsed = time.perf_counter() - began
            break
        url = body["proxy_url"]  # the ticket is spent: ask again as a browser refreshes the page
        time.sleep(0.01)
    session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
    wait_status(server, session, body["execution_id"], {"terminated"})
    return elapsed


def set_pool_size(server: Server, session: requests.Session, group_id: int, size: int) -> None:
    url = f"{server.url}/api/script-groups/{group_id}/limits"
    response = session.put(url, json={"pool_size": size})
    assert response.status_code == 200, response.text


def pool_containers(instance: str) -> list[str]:
    """Running warm-pool containers of this run's instance (``docker ps`` ids)."""
    found = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=io.scriptsmanager.instance={instance}",
         "--filter", "label=io.scriptsmanager.pool-slot"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return found.stdout.split()


def wait_pool(instance: str, count: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while len(pool_containers(instance)) != count:
        if time.time() > deadline:
            raise AssertionError(f"the pool never reached {count} standby(s)")
        time.sleep(0.05)


def wait_ready(server: Server, timeout: float = 60) -> float:
    """Wait until a standby's runner says it is ready; return how long that took."""
    began = time.perf_counter()
    capture = server.root / "logs" / "capture"
    while not any(capture.glob("pool-*/standby-ready")):
        if time.perf_counter() - began > timeout:
            raise AssertionError("the standby never said it was ready")
        time.sleep(0.01)
    return time.perf_counter() - began


def pooled_start(
    server: Server,
    session: requests.Session,
    script_id: int,
    instance: str,
    answered: list[float] | None = None,
    readied: list[float] | None = None,
) -> float:
    """Open the run form (intent), wait for the standby to be ready, then time execute -> 200.

    ``readied`` gets the time from its container running to its runner ready.
    """
    assert session.get(f"{server.url}/api/scripts/{script_id}/presets").status_code == 200
    wait_pool(instance, 1)
    running = time.perf_counter()
    ready = wait_ready(server)
    if readied is not None:
        readied.append(ready)
    # A person reads the form first (at least 0.5 s from the container running).
    time.sleep(max(0.0, 0.5 - (time.perf_counter() - running)))
    return interactive_start(server, session, script_id, answered)


def docker_run_floor(image: str, network: str = "none") -> float:
    """``docker run -d`` of the session image (a sleep, same hardening flags) on ``network``,
    to started."""
    name = f"smbench-floor-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", network, "--read-only",
         "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--init",
         "--user", "10001:10001", "--memory", "256m", "--entrypoint", "sleep", image, "60"],
        capture_output=True, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - began
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    return elapsed


def batch_run(server: Server, session: requests.Session, script_id: int) -> float:
    began = time.perf_counter()
    body = session.post(f"{server.url}/api/scripts/{script_id}/execute", json={}).json()
    wait_status(server, session, body["execution_id"], {"completed", "failed"})
    return time.perf_counter() - began


def add_monitor_interval(parser: argparse.ArgumentParser) -> None:
    """``--monitor-interval``: the server's SM_MONITOR_INTERVAL, the product default unless set
    (a pass 20 times a second would load the engine during the starts being timed)."""
    parser.add_argument(
        "--monitor-interval",
        default="1.0",
        help="SM_MONITOR_INTERVAL of the server (seconds; 1.0, the default, as in production)",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    add_monitor_interval(parser)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    instance = f"smbench-{run}"
    cold: list[float] = []
    pooled: list[float] = []
    floor: list[float] = []
    floor_bare: list[float] = []
    cold_answered: list[float] = []
    pooled_answered: list[float] = []
    readied: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sm-bench-") as tmp:
        server = Server(Path(tmp), instance, instance, SM_MONITOR_INTERVAL=args.monitor_interval)
        server.start()
        try:
            session = login(server)
            ids = script_ids(server, session)
            calculator = ids["calculator.py"]
            group_id = _group_of(server, session, "calculator.py")
            interactive_start(server, session, calculator)  # warm the engine caches
            image = _image(server, session)
            session_network = SessionNetworks(instance).network("internal")
            for _ in range(args.runs):
                set_pool_size(server, session, group_id, 0)
                wait_pool(instance, 0)
                cold.append(interactive_start(server, session, calculator, cold_answered))
                set_pool_size(server, session, group_id, 1)
                pooled.append(
                    pooled_start(server, session, calculator, instance, pooled_answered, readied)
                )
                floor.append(docker_run_floor(image, session_network))
                floor_bare.append(docker_run_floor(image))
            set_pool_size(server, session, group_id, 0)
            wait_pool(instance, 0)
            batches = [
                batch_run(server, session, ids["unit_converter.py"])
                for _ in range(max(5, args.runs // 4))
            ]
        finally:
            server.kill()
            cleanup(instance)
    runs = len(cold)
    print(f"cold interactive start, execute -> first 200 through the proxy ({runs} runs):")
    print(f"  {figures(cold)}   (target p50 <= docker run -d p50 on the session network + 100 ms)")
    print(f"pooled interactive start, execute -> first 200 through the proxy ({runs} runs):")
    print(f"  {figures(pooled)}   (target p50 <= 100 ms)")
    print(f"  of which the execute request: cold {figures(cold_answered)}")
    print(f"  of which the execute request: pooled {figures(pooled_answered)}")
    print(f"standby container running -> its runner ready (Flask imported) ({runs} runs):")
    print(f"  {figures(readied)}")
    print(f"docker run -d of the session image on the session network, the floor ({runs} runs):")
    print(f"  {figures(floor)}")
    over = (statistics.median(cold) - statistics.median(floor)) * 1000
    paired = statistics.median(c - f for c, f in zip(cold, floor, strict=True)) * 1000
    print(f"  cold over the floor: {over:.0f} ms (p50 - p50; target <= 100 ms); "
          f"run by run, p50 {paired:.0f} ms")  # fmt: skip
    print(f"docker run -d of the session image with no network ({runs} runs):")
    print(f"  {figures(floor_bare)}")
    print(f"batch run, execute -> completed ({len(batches)} runs):")
    print(f"  {figures(batches)}")


def _group_of(server: Server, session: requests.Session, filename: str) -> int:
    for group in session.get(server.url + "/api/script-groups").json()["groups"]:
        listing = session.get(f"{server.url}/api/script-groups/{group['id']}/scripts").json()
        if any(s["filename"] == filename for s in listing["scripts"]):
            return int(group["id"])
    raise AssertionError(f"no group holds {filename}")


def _image(server: Server, session: requests.Session) -> str:
    """The session image tag the manager runs (from its environments listing)."""
    envs = session.get(f"{server.url}/api/conda/environments").json()["environments"]
    return str(next(env["image"] for env in envs if env["name"] == "base"))


def figures(values: list[float]) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
    return f"p50 {p50:.0f} ms   p95 {p95:.0f} ms   max {max(values) * 1000:.0f} ms"


def cleanup(instance: str) -> None:
    import docker

    remove_instance(docker.from_env(), instance, instance)


if __name__ == "__main__":
    main()
