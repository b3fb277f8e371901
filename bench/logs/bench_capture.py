"""Capture rate end to end: a real container printing as fast as it can → capture file → pump →
the run's log file.

Runs the real ``scriptsmanager serve`` (gunicorn, gevent worker) with Docker sessions and a script
printing ``count`` lines of ``width`` characters in a tight loop. For each case prints:

- the script's own printing time (with the capture's backpressure: a script printing faster
  than the capture writes waits, and this is how long it waited in total);
- end to end: from the first line printed to the last line stored in the run's log file, in
  lines/s and MB/s of text, and whether every line was stored once, in order;
- for a 256 MiB line without a newline: how long the run took and the slowest ``/health``
  answer meanwhile.

    python bench/logs/bench_capture.py [--lines 300000] [--widths 10,100,1000]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from manager.logs.store import iter_lines, tail_lines  # noqa: E402
from tests.support.serve import (  # noqa: E402
    Server,
    login,
    remove_instance,
    script_ids,
    wait_status,
)

SCRIPT = '''"""
ScriptsManager Metadata:
@description: Print numbered lines as fast as possible
@required_level: operator
@parameters: [
    {"name": "count", "type": "int", "default": 300000, "min": 1, "max": 10000000},
    {"name": "width", "type": "int", "default": 10, "min": 0, "max": 100000},
    {"name": "long_line_mib", "type": "int", "default": 0, "min": 0, "max": 1024}
]
@execution_timeout: 900
"""
import sys
import time

count = int(PARAMETERS["count"])
pad = "x" * int(PARAMETERS["width"])
began = time.time()
print(f"first {began:.6f}")
if PARAMETERS["long_line_mib"]:
    chunk = "y" * (1 << 20)
    for _ in range(int(PARAMETERS["long_line_mib"])):
        sys.stdout.write(chunk)
    print()
for n in range(1, count + 1):
    print(f"{n} {pad}")
print(f"printed {time.time() - began:.6f}", file=sys.stderr)
'''


def stored_until(path_of, last: str, timeout: float = 600) -> float:
    """Wait for the line ``last`` in the run's log file; return the moment it showed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        path = path_of()
        if path is not None and any(
            li.text == last for li in tail_lines(path, 3, streams=["stdout"])
        ):
            return time.time()
        time.sleep(0.02)
    raise SystemExit(f"the line {last!r} was not stored within {timeout} s")


def run_case(server: Server, session: requests.Session, script: int, **params: int) -> dict:
    started = session.post(f"{server.url}/api/scripts/{script}/execute",
                           json={"parameters": params})  # fmt: skip
    started.raise_for_status()
    run_id = started.json()["execution_id"]

    def path_of() -> Path | None:
        found = list((server.root / "logs" / "executions").rglob(f"execution_{run_id}.log"))
        return found[0] if found else None

    count = params["count"]
    last = f"{count} {'x' * params['width']}"
    stored_at = stored_until(path_of, last)
    wait_status(server, session, run_id, {"completed", "failed"}, timeout=120)
    path = path_of()
    assert path is not None
    first = printed = None
    numbers: list[int] = []
    pattern = re.compile(r"(\d+) x*")
    for line in iter_lines(path, streams=["stdout", "stderr"]):
        if line.text.startswith("first "):
            first = float(line.text.split()[1])
        elif line.text.startswith("printed "):
            printed = float(line.text.split()[1])
        elif m := pattern.fullmatch(line.text):
            numbers.append(int(m.group(1)))
    assert first is not None and printed is not None
    elapsed = stored_at - first
    return {
        "printed_s": printed,
        "stored_s": elapsed,
        "lines_s": count / elapsed,
        "mb_s": count * (len(last) + 1) / elapsed / 1e6,
        "whole": numbers == list(range(1, count + 1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--widths", default="10,100,1000")
    parser.add_argument("--long-line-mib", type=int, default=256)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:6]
    instance = prefix = f"smbench-capture-{tag}"
    with tempfile.TemporaryDirectory(prefix="sm-bench-capture-") as tmp:
        root = Path(tmp)
        server = Server(root, instance, prefix, SM_LOG_MAX_BYTES=str(4 << 30))
        (root / "script_groups" / "data_processing" / "bench_flood.py").write_text(SCRIPT)
        server.start()
        try:
            session = login(server)
            script = script_ids(server, session)["bench_flood.py"]
            print(f"{'width':>6} {'lines':>9} {'printed s':>10} {'stored s':>9} "
                  f"{'lines/s':>10} {'MB/s':>7}  whole")  # fmt: skip
            for width in (int(w) for w in args.widths.split(",")):
                count = args.lines if width <= 100 else max(args.lines // 10, 1)
                r = run_case(server, session, script, count=count, width=width, long_line_mib=0)
                print(f"{width:>6} {count:>9} {r['printed_s']:>10.2f} {r['stored_s']:>9.2f} "
                      f"{r['lines_s']:>10,.0f} {r['mb_s']:>7.1f}  {r['whole']}")  # fmt: skip
            if args.long_line_mib:
                latencies: list[float] = []
                stop = threading.Event()

                def probe() -> None:
                    while not stop.is_set():
                        began = time.perf_counter()
                        requests.get(f"{server.url}/health", timeout=60)
                        latencies.append(time.perf_counter() - began)
                        time.sleep(0.05)

                prober = threading.Thread(target=probe, daemon=True)
                prober.start()
                began = time.time()
                r = run_case(server, session, script, count=10, width=0,
                             long_line_mib=args.long_line_mib)  # fmt: skip
                stop.set()
                prober.join()
                print(f"a {args.long_line_mib} MiB line then 10 lines: stored in "
                      f"{time.time() - began:.2f} s (API call to the last line), /health "
                      f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} probes, "
                      f"next lines whole: {r['whole']}")  # fmt: skip
        finally:
            server.kill()
            import docker

            remove_instance(docker.from_env(), instance, prefix)


if __name__ == "__main__":
    main()
