"""Session start latency: execute request -> first 200 through the proxy, cold, p50/p95.

Runs the real ``scriptsmanager serve`` with Docker (like the end-to-end tests), opens the
interactive calculator N times (each a new container: the previous one is stopped first), and
prints the figures. Also prints the same for a batch run (execute -> completed) for reference.

    python bench/sessions/bench_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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


def interactive_start(server: Server, session: requests.Session, script_id: int) -> float:
    began = time.perf_counter()
    body = session.post(f"{server.url}/api/scripts/{script_id}/execute", json={}).json()
    url = body["proxy_url"]
    while True:
        response = session.get(url)
        if response.status_code == 200:
            elapsed = time.perf_counter() - began
            break
        time.sleep(0.01)
    session.post(f"{server.url}/api/sessions/{body['execution_id']}/stop")
    wait_status(server, session, body["execution_id"], {"terminated"})
    return elapsed


def batch_run(server: Server, session: requests.Session, script_id: int) -> float:
    began = time.perf_counter()
    body = session.post(f"{server.url}/api/scripts/{script_id}/execute", json={}).json()
    wait_status(server, session, body["execution_id"], {"completed", "failed"})
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="sm-bench-") as tmp:
        server = Server(Path(tmp), f"smbench-{run}", f"smbench-{run}", SM_MONITOR_INTERVAL="0.05")
        server.start()
        try:
            session = login(server)
            ids = script_ids(server, session)
            interactive_start(server, session, ids["calculator.py"])  # warm the engine caches
            starts = [
                interactive_start(server, session, ids["calculator.py"]) for _ in range(args.runs)
            ]
            batches = [
                batch_run(server, session, ids["unit_converter.py"])
                for _ in range(max(5, args.runs // 4))
            ]
        finally:
            server.kill()
            cleanup(f"smbench-{run}")
    print(f"interactive start, execute -> first 200 through the proxy ({len(starts)} runs):")
    print(f"  {figures(starts)}   (target p50 <= 500 ms)")
    print(f"batch run, execute -> completed ({len(batches)} runs):")
    print(f"  {figures(batches)}")


def figures(values: list[float]) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
    return f"p50 {p50:.0f} ms   p95 {p95:.0f} ms   max {max(values) * 1000:.0f} ms"


def cleanup(instance: str) -> None:
    import docker

    remove_instance(docker.from_env(), instance, instance)


if __name__ == "__main__":
    main()
