"""The manager's CPU per proxied request, for one or more checkouts side by side.

Two ways, both with the manager under gunicorn's gevent worker (as ``bench_proxy.py`` starts it)
and a trivial upstream, so nearly all the CPU measured is the proxy's:

- by default the worker drives itself (``self_driven.py``): client and upstream are greenlets in
  the worker, pinned to one CPU; steady to about 2 %, the figure to compare changes with.
- ``--wrk``: ``raw_upstream.py`` and ``wrk -c1`` as separate processes, the worker's
  utime+stime read from /proc. Closer to the bench, but on a 2-vCPU VM the figure doubles when
  the processes wake each other across CPUs (``--pin apart``) rather than on one
  (``--pin together``), and unpinned it jumps between the two.

Checkouts are interleaved, so a noisy neighbour hurts them alike. Prints, per checkout, the best
and the median CPU per request.

    python bench/proxy/cpu_per_request.py [--checkout DIR ...] [--rounds 3] [--wrk ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bench_proxy as bench

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def bench_env(checkout: Path, root: Path, upstream_port: int) -> dict[str, str]:
    """The environment ``manager_wsgi`` of ``checkout`` is built from."""
    return {
        **os.environ,
        "PYTHONPATH": f"{checkout / 'bench' / 'proxy'}{os.pathsep}{checkout}",
        "SM_BENCH_DIR": str(root),
        "SM_BENCH_UPSTREAM_PORT": str(upstream_port),
        "SM_BENCH_USERNAME": bench.USERNAME,
        "SM_BENCH_PASSWORD": bench.PASSWORD,
    }


# -- the worker drives itself ------------------------------------------------------------------


def self_driven(checkout: Path, requests: int, runs: int, cpu: int) -> list[float]:
    """Start ``checkout``'s manager with ``self_driven.py``; its us per request, one a run."""
    with tempfile.TemporaryDirectory(prefix="sm-cpu-") as tmp:
        root = Path(tmp)
        port = bench.free_port()
        env = {
            **bench_env(checkout, root, bench.free_port()),
            "SM_DRIVE_PORT": str(port),
            "SM_DRIVE_REQUESTS": str(requests),
            "SM_DRIVE_RUNS": str(runs),
            "SM_DRIVE_OUT": str(root / "runs.json"),
        }
        config = ["--keep-alive", "30", "--config", str(HERE / "self_driven.py")]
        command = [
            "taskset",
            "-c",
            str(cpu),
            *bench.gunicorn("manager_wsgi:app", port, "gevent", config),
        ]
        with open(root / "manager.log", "wb") as log:
            subprocess.run(
                command, env=env, cwd=checkout, stdout=log, stderr=subprocess.STDOUT, timeout=900
            )
        try:
            results: list[float] = json.loads((root / "runs.json").read_text())
        except FileNotFoundError:
            sys.exit((root / "manager.log").read_text()[-3000:])
        return results


# -- wrk against the worker --------------------------------------------------------------------


@dataclass
class Target:
    """One checkout's manager, ready to be measured with wrk."""

    checkout: Path
    url: str
    headers: list[str]
    worker: int  # the gevent worker's pid
    upstream: int
    runs: list[tuple[float, float]] = field(default_factory=list)  # (us per request, req/s)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def manager_of(checkout: Path, root: Path, path: str, delay_ms: float) -> Iterator[Target]:
    """The trivial upstream and the manager of ``checkout``, started and logged in."""
    up_port, sm_port = bench.free_port(), bench.free_port()
    env = bench_env(checkout, root, up_port)
    upstream_cmd = [sys.executable, str(HERE / "raw_upstream.py"), str(up_port), str(delay_ms)]
    manager_cmd = bench.gunicorn("manager_wsgi:app", sm_port, "gevent", ["--keep-alive", "30"])
    with (
        bench.process(upstream_cmd, env, root / "upstream.log") as upstream,
        bench.process(manager_cmd, env, root / "manager.log") as manager,
    ):
        bench.wait_for(f"http://127.0.0.1:{up_port}/")
        bench.wait_for(f"http://127.0.0.1:{sm_port}/login")
        base = f"http://localhost:{sm_port}"
        http, user_id = bench.login(base, bench.USERNAME, bench.PASSWORD)
        prefix = f"/project/1/script/1/user/{user_id}"
        headers = bench.enter(http, base, prefix)
        children = Path(f"/proc/{manager.pid}/task/{manager.pid}/children").read_text().split()
        url = f"http://127.0.0.1:{sm_port}{prefix}{path}"
        yield Target(checkout, url, headers, int(children[0]), upstream.pid)


def measure(target: Target, duration: int, connections: int) -> None:
    """One wrk run; appends (CPU us per request, req/s) to the target's runs."""
    before = cpu_seconds(target.worker)
    result = bench.wrk(target.url, connections, duration, target.headers)
    spent = cpu_seconds(target.worker) - before
    target.runs.append((1e6 * spent / (result.rps * duration), result.rps))


def with_wrk(checkouts: list[Path], args: argparse.Namespace) -> dict[Path, list[float]]:
    with ExitStack() as stack:
        targets = []
        for checkout in checkouts:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sm-cpu-")))
            manager = manager_of(checkout, root, args.path, args.upstream_delay)
            targets.append(stack.enter_context(manager))
        if args.pin:
            last = 0 if args.pin == "together" else max(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {last})  # wrk
            for target in targets:
                bench.pin(target.upstream, last)
                bench.pin(target.worker, 0)
        for target in targets:
            bench.wrk(target.url, args.connections, 1, target.headers)  # warm up
        for number in range(args.rounds):
            for target in targets:
                measure(target, args.duration, args.connections)
            line = "  ".join(f"{t.runs[-1][0]:6.1f} us ({t.runs[-1][1]:.0f}/s)" for t in targets)
            print(f"round {number + 1}: {line}   (load {load()})", flush=True)
    return {target.checkout: [cost for cost, _ in target.runs] for target in targets}


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkout",
        action="append",
        type=Path,
        help="a clone of the repository to measure (repeat to compare; default: this one)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, checkouts interleaved")
    parser.add_argument("--requests", type=int, default=20000, help="per run, self-driven")
    parser.add_argument("--runs", type=int, default=5, help="runs per round, self-driven")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU of the self-driven worker")
    parser.add_argument("--wrk", action="store_true", help="wrk and an upstream process")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=1, help="wrk's connections")
    parser.add_argument("--path", default="/", help="with wrk: / (small) or /big (1 MiB)")
    parser.add_argument(
        "--upstream-delay",
        type=float,
        default=0.0,
        metavar="MS",
        help="with wrk: the upstream pauses this long before each answer, as an application",
    )
    parser.add_argument(
        "--pin",
        choices=("apart", "together"),
        help="with wrk: apart puts the managers on the first CPU, the upstreams and wrk on the "
        "last; together puts everything on the first (no wake-ups across CPUs)",
    )
    args = parser.parse_args()
    checkouts = [path.resolve() for path in args.checkout or [bench.REPO]]

    if args.wrk:
        costs = with_wrk(checkouts, args)
        how = f"wrk -c{args.connections} {args.path}, {args.duration} s runs"
        how += f", pinned {args.pin}" if args.pin else ""
        how += f", upstream delay {args.upstream_delay} ms" if args.upstream_delay else ""
    else:
        costs = {checkout: [] for checkout in checkouts}
        for number in range(args.rounds):
            for checkout in checkouts:
                runs = self_driven(checkout, args.requests, args.runs, args.cpu)
                costs[checkout] += runs
                shown = " ".join(f"{cost:.1f}" for cost in runs)
                print(f"round {number + 1} {checkout}: {shown} us   (load {load()})", flush=True)
        how = f"self-driven worker, {args.runs} runs of {args.requests} requests a round"
    print(f"manager CPU per proxied request, small response, {how}, {args.rounds} rounds:")
    for checkout, values in costs.items():
        print(
            f"  {checkout}: best {min(values):.1f} us, median {statistics.median(values):.1f} us"
            f" ({len(values)} runs)"
        )


if __name__ == "__main__":
    main()
