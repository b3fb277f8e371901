"""Live logs on real parts: container output → pump → file → Socket.IO watchers.

Runs the real ``scriptsmanager serve`` (gunicorn, one gevent worker) with Docker sessions, adds a
script that waits for a go-file in its workspace and then prints ``<n> <send time>`` lines at a
steady rate (or as fast as it can), and watches the run with lean raw-WebSocket clients
(``lean_client.py``) that join before the go. Prints:

- throughput: lines/s from the container's first print to the last line at a watcher (and to
  the stored file), for one run printing as fast as it can;
- latency: print-to-watcher p50/p95/max for 1 and 100 watchers at 2,000 and 10,000 lines/s,
  whether every watcher got every line in order, the manager worker's CPU (from
  /proc/<pid>/stat) over the run, and how much of the time was the container's (print to the
  capture file's stamp);
- whether the manager deflated its frames: the watchers offer compression as browsers do.

Every watcher checks that it got every line once, in order; every ``--timed-every``-th (10th)
also notes each line's latency (the watchers share the manager's two cores here: reading every
line at all of them cost more CPU than the manager's sending).

    python bench/logs/bench_live.py [--duration 10] [--watchers 1,100] [--rates 2000,10000]
                                    [--burst 200000] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from lean_client import Result, Watchers  # noqa: E402

from manager.logs.store import count_lines, parse_record, read_lines  # noqa: E402
from manager.sessions.capture import stamp_ns  # noqa: E402
from tests.support.serve import Server, login, script_ids, wait_status  # noqa: E402

SCRIPT = '''"""
ScriptsManager Metadata:
@description: Log benchmark: wait for a go-file, then print "<n> <send time>" lines
@required_level: operator
@parameters: [
    {"name": "count", "type": "int", "default": 1000, "min": 1, "max": 10000000},
    {"name": "rate", "type": "float", "default": 0, "min": 0, "max": 10000000},
    {"name": "go", "type": "string", "default": ""}
]
@execution_timeout: 900
"""

import os
import sys
import time

count = int(PARAMETERS["count"])
rate = float(PARAMETERS["rate"])
go = os.path.join("/workspace", PARAMETERS["go"])
deadline = time.time() + 300
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.002)
write = sys.stdout.write
now = time.time
began = now()
for n in range(1, count + 1):
    if rate:
        delay = began + n / rate - now()
        if delay > 0.0005:
            time.sleep(delay)
    write(f"{n} {now():.6f}\\n")
'''
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def capture_delays(log: Path) -> list[float]:
    """Seconds from each stdout line's print (its text) to the capture's stamp (nanoseconds,
    kept verbatim in the stored record)."""
    delays = []
    with open(log, "rb") as records:
        for record in records:
            _seq, stamp, stream, text = parse_record(record)
            if stream == "stdout":
                delays.append(stamp_ns(stamp) / 1e9 - float(text.split()[1]))
    return delays


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


class Bench:
    def __init__(self, root: Path, processes: int, timed_every: int = 1):
        tag = uuid.uuid4().hex[:6]
        self.instance = f"smbench-logs-{tag}"
        # The monitor's production pace (the end-to-end tests' 0.3 s would triple its passes).
        self.server = Server(root, self.instance, self.instance, SM_MONITOR_INTERVAL="1.0")
        (root / "script_groups" / "data_processing" / "bench_lines.py").write_text(SCRIPT)
        self.server.start()
        self.session = login(self.server)
        self.script = script_ids(self.server, self.session)["bench_lines.py"]
        self.cookie = "; ".join(f"{k}={v}" for k, v in self.session.cookies.items())
        self.worker = worker_pid(self.server.process.pid)  # type: ignore[union-attr]
        self.processes = processes
        self.timed_every = timed_every
        # <group>/<user id>/<project id>: the one user here runs in one project
        self.workspace = root / "data" / "script_groups" / "data_processing"

    def run(self, count: int, rate: float, watchers: int) -> tuple[list[Result], dict]:
        go = f"go-{uuid.uuid4().hex[:8]}"
        answer = self.session.post(
            f"{self.server.url}/api/scripts/{self.script}/execute",
            json={"parameters": {"count": count, "rate": rate, "go": go}},
        )
        answer.raise_for_status()
        run_id = answer.json()["execution_id"]
        wait_status(self.server, self.session, run_id, {"running"})
        timeout = 60 + (count / rate if rate else count / 5000)
        crowd = Watchers(self.server.url, self.cookie, run_id, watchers, count, timeout,
                         processes=min(self.processes, watchers),
                         timed_every=self.timed_every)  # fmt: skip
        crowd.wait_joined()
        cpu_before, began = cpu_seconds(self.worker), time.time()
        workspaces = [path for path in self.workspace.glob("*/*") if path.is_dir()]
        (workspaces[0] / go).write_text("go")
        results = crowd.results()
        ended = time.time()
        cpu = (cpu_seconds(self.worker) - cpu_before) / (ended - began)
        wait_status(self.server, self.session, run_id, {"completed", "failed"}, timeout=120)
        log = next((self.server.root / "logs").rglob(f"*{run_id}.log"))
        stdout = read_lines(log, streams=["stdout"])
        first_sent = float(stdout[0].text.split()[1])
        last_sent = float(stdout[-1].text.split()[1])
        # The capture's stamp of each line: where the print -> watcher time was spent, in the
        # container (print -> capture file) or in the manager (file -> watcher).
        captured = capture_delays(log)
        info = {
            "cpu": cpu,
            "captured": captured,
            "first_sent": first_sent,
            "last_sent": last_sent,
            "ended": ended,
            "stored": sum(1 for _ in stdout),
            "log": log,
            "count_lines": count_lines(log),
        }
        (workspaces[0] / go).unlink()
        return results, info

    def stop(self) -> None:
        self.server.kill()
        import docker

        from manager.sessions.network import remove_networks

        client = docker.from_env()  # what the killed manager had no time to remove
        label = f"io.scriptsmanager.instance={self.instance}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        remove_networks(client, self.instance)
        client.close()


def report_latency(bench: Bench, duration: float, rate: float, watchers: int) -> None:
    count = int(rate * duration)
    results, info = bench.run(count, rate, watchers)
    complete = all(r.timed == count and r.last_n == count and r.in_order and not r.error
                   for r in results)  # fmt: skip
    latencies = [value for r in results if r.sampled for value in r.latencies]
    sampled = sum(1 for r in results if r.sampled)
    errors = {r.error for r in results if r.error}
    captured = info["captured"]
    deflated = sum(1 for r in results if r.deflated)
    print(f"{watchers:>4} watchers × {rate:>6.0f} lines/s, {count} lines: "
          f"every line to every watcher in order: {'yes' if complete else 'NO'}; "
          f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:6.1f} ms, "
          f"max {max(latencies) * 1000:6.1f} ms; manager CPU {info['cpu'] * 100:5.1f} % "
          f"of a core; messages/watcher {sum(r.messages for r in results) / len(results):.0f}; "
          f"print to capture file p50 {percentile(captured, 0.5) * 1000:.1f} ms, "
          f"p95 {percentile(captured, 0.95) * 1000:.1f} ms; "
          f"deflated for {deflated} of {len(results)} watchers; "
          f"latencies of every line at {sampled} of them"
          + (f"; errors {errors}" if errors else ""), flush=True)  # fmt: skip
    if not complete:
        worst = min(results, key=lambda r: r.timed)
        print(f"      worst watcher: {worst.timed}/{count} lines, in order {worst.in_order}")


def report_throughput(bench: Bench, count: int) -> None:
    results, info = bench.run(count, 0, 1)
    result = results[0]
    # The watcher's last line arrived at (its send time + its latency).
    arrival = info["last_sent"] + result.latencies[-1]
    printing = info["last_sent"] - info["first_sent"]
    through = arrival - info["first_sent"]
    print(f"one run printing {count} lines as fast as it can: the container printed them in "
          f"{printing:.2f} s ({count / printing:,.0f} lines/s); all stored and at the watcher "
          f"after {through:.2f} s: {count / through:,.0f} lines/s through the pump; "
          f"in order {result.in_order and result.timed == count}; manager CPU "
          f"{info['cpu'] * 100:.0f} % of a core", flush=True)  # fmt: skip


LATENCY_LINE = re.compile(
    r"^\s*(\d+) watchers × \s*(\d+) lines/s, (\d+) lines: every line to every watcher in "
    r"order: (yes|NO); p50\s+([\d.]+) ms, p95\s+([\d.]+) ms, max\s+([\d.]+) ms"
)
THROUGHPUT_LINE = re.compile(
    r"^one run printing (\d+) lines .*: ([\d,]+) lines/s through the pump; in order (\w+)"
)


def rows(output: str) -> list[tuple[str, str, str]]:
    """``make bench`` rows (``bench/run_all.py``) from this script's printed lines."""
    found = []
    for line in output.splitlines():
        if match := THROUGHPUT_LINE.match(line):
            count, rate, in_order = match.groups()
            found.append((f"live: pump, one run printing {int(count):,} lines as fast as it can",
                          f"{rate} lines/s", f"in order and complete: {in_order}; "
                          "target >= 50,000 lines/s"))  # fmt: skip
        elif match := LATENCY_LINE.match(line):
            watchers, rate, count, complete, p50, p95, most = match.groups()
            found.append((f"live: {watchers} watchers x {int(rate):,} lines/s, print to watcher "
                          "p50/p95/max ms", f"{p50} / {p95} / {most}",
                          f"every one of {int(count):,} lines to every watcher in order: "
                          f"{complete}; target p95 <= 100 ms"))  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--watchers", default="1,100")
    parser.add_argument("--rates", default="2000,10000")
    parser.add_argument("--burst", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timed-every", type=int, default=10,
                        help="every n-th watcher times each line; the others check order "
                        "and count (1: all time every line)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sm-bench-logs-") as tmp:
        bench = Bench(Path(tmp), args.processes, args.timed_every)
        try:
            if args.burst:
                report_throughput(bench, args.burst)
            for watchers in [int(w) for w in args.watchers.split(",") if w]:
                for rate in [float(r) for r in args.rates.split(",") if r]:
                    report_latency(bench, args.duration, rate, watchers)
        except requests.RequestException as exc:
            print(f"request failed: {exc}\n{bench.server.log()}")
        finally:
            bench.stop()


if __name__ == "__main__":
    main()
