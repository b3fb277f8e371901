"""Where a session start's time goes, hop by hop: cold and pooled starts of the calculator.

Runs the real ``scriptsmanager serve`` with Docker, as ``bench_start.py`` does, and for each
start prints the moments (ms after the execute request was sent) read from the requests, the
engine and the run's capture file, whose records carry the runner's own stamps:

- ``answered``: the execute request's answer;
- ``created``/``started``: the container's creation and start (the engine's stamps, cold only);
- ``context``: the context file written (its mtime, pooled only);
- ``script``: the script's first line of output (the calculator prints its workspace);
- ``serving``: the runner's ``serving on`` note (the script ran, the web server listens);
- ``enter``: ``/__sm/enter`` answered (the ticket redeemed, a redirect to the page);
- ``page``: the first 200 of the page (after as many asks as the proxy needed).

Pooled starts come two ways: ``pooled`` executes 0.5 s after the standby said it was ready (a
person reading the form), ``pooled-soon`` at once (its container is a fresh one then).

    python bench/sessions/probe_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.sessions.bench_start import (  # noqa: E402
    _group_of,
    add_monitor_interval,
    cleanup,
    set_pool_size,
    wait_pool,
    wait_ready,
)
from tests.support.serve import Server, login, script_ids, wait_status  # noqa: E402

STEPS = ("answered", "created", "started", "context", "script", "serving", "enter", "page")


def stamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 stamp with up to 9 decimals."""
    whole, _, rest = text.rstrip("Z").partition(".")
    digits = (rest.split("+")[0] + "000000000")[:9]
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + int(digits)


def capture_moments(path: Path) -> dict[str, int]:
    """The script's first output line and the runner's ``serving on`` note (ns)."""
    found: dict[str, int] = {}
    if not path.exists():
        return found
    for line in path.read_bytes().splitlines():
        head, _, text = line.partition(b"\t")
        parts = head.split(b" ")
        if len(parts) != 3:
            continue
        moment = stamp_ns(parts[1].decode())
        kind = parts[2]
        if kind == b"stdout" and "script" not in found:
            found["script"] = moment
        if kind == b"note" and text.startswith(b"[smrunner] serving on"):
            found["serving"] = moment
    return found


def one_start(
    server: Server, session: requests.Session, script_id: int, pooled: bool = False
) -> dict[str, float]:
    began_wall = time.time_ns()
    began = time.perf_counter()
    body = session.post(f"{server.url}/api/scripts/{script_id}/execute", json={}).json()
    moments: dict[str, float] = {"answered": (time.perf_counter() - began) * 1000}
    url = body.get("enter_url") or body["proxy_url"]
    response = session.get(url, allow_redirects=False)
    if response.status_code in (301, 302, 303):
        moments["enter"] = (time.perf_counter() - began) * 1000
        url = requests.compat.urljoin(url, response.headers["Location"])
        response = session.get(url)
    while response.status_code != 200:
        time.sleep(0.01)
        response = session.get(body["proxy_url"])
    moments["page"] = (time.perf_counter() - began) * 1000
    run = body["execution_id"]
    if not pooled:
        moments.update(engine_moments(began_wall, run))
    capture = server.root / "logs" / "capture" / run / "output.log"
    for name, moment in capture_moments(capture).items():
        moments[name] = (moment - began_wall) / 1e6
    session.post(f"{server.url}/api/sessions/{run}/stop")
    wait_status(server, session, run, {"terminated"})
    written = [
        path.stat().st_mtime_ns
        for path in (server.root / "data" / "system" / "pool").glob("*/context.json")
    ]
    if pooled and written:
        moments["context"] = (max(written) - began_wall) / 1e6
    return moments


def engine_moments(began_wall: int, run: str) -> dict[str, float]:
    import docker

    client = docker.from_env()
    found = client.containers.list(
        all=True, filters={"label": f"io.scriptsmanager.execution={run}"}
    )
    if not found:
        return {}
    attrs = found[0].attrs
    return {
        "created": (stamp_ns(attrs["Created"]) - began_wall) / 1e6,
        "started": (stamp_ns(attrs["State"]["StartedAt"]) - began_wall) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    add_monitor_interval(parser)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    instance = f"smprobe-{uuid.uuid4().hex[:6]}"
    rows: dict[str, list[dict[str, float]]] = {"cold": [], "pooled": [], "pooled-soon": []}
    with tempfile.TemporaryDirectory(prefix="sm-probe-") as tmp:
        server = Server(Path(tmp), instance, instance, SM_MONITOR_INTERVAL=args.monitor_interval)
        server.start()
        try:
            session = login(server)
            calculator = script_ids(server, session)["calculator.py"]
            group_id = _group_of(server, session, "calculator.py")
            one_start(server, session, calculator)  # warm the engine caches
            for _ in range(args.runs):
                set_pool_size(server, session, group_id, 0)
                wait_pool(instance, 0)
                rows["cold"].append(one_start(server, session, calculator))
                set_pool_size(server, session, group_id, 1)
                for mode, pause in (("pooled", 0.5), ("pooled-soon", 0.0)):
                    url = f"{server.url}/api/scripts/{calculator}/presets"
                    assert session.get(url).status_code == 200
                    wait_pool(instance, 1)
                    wait_ready(server)
                    time.sleep(pause)
                    rows[mode].append(one_start(server, session, calculator, pooled=True))
        finally:
            server.kill()
            cleanup(instance)
    for mode, found in rows.items():
        print(f"{mode} ({len(found)} starts), ms after the execute request was sent, p50:")
        for step in STEPS:
            values = [row[step] for row in found if step in row]
            if values:
                listed = " ".join(f"{v:.0f}" for v in values)
                print(f"  {step:<9} {statistics.median(values):7.0f}   ({listed})")


if __name__ == "__main__":
    main()
