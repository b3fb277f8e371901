"""``make bench``: every benchmark of issue 12 in one run, one table of figures and ratios.

``BENCH_SCALE=full`` (default) uses the issue's sizes: load 50 users for 5 minutes, density 100
idle sessions, soak 30 minutes, proxy 5 s x 3 rounds; ``BENCH_SCALE=quick`` a short check of
the same (load 30 s, density 20 sessions, soak 2 minutes, proxy 2 s x 1). Each benchmark starts
what it measures and removes it again (its own Docker instance label). A benchmark that cannot
run prints why in its row; this never exits non-zero: benchmarks never fail CI.

    BENCH_SCALE=quick python bench/run_all.py \
        [--only load,density,soak,proxy,start,scale,jupyterhub,live]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
for folder in ("load", "density", "soak"):
    sys.path.insert(0, str(BENCH / folder))

import benchlib  # noqa: E402

SIZES = {
    "full": {
        "load": {"users": 50, "duration": 300},
        "density": {"sessions": 100},
        "soak": {"duration": 1800},
        "proxy": ["--duration", "5", "--rounds", "3"],
        "start": ["--runs", "20"],
        "scale": ["--runs", "100000"],
        "jupyterhub": ["--spawns", "20"],
        "live": ["--duration", "10", "--watchers", "1,100", "--rates", "2000,10000"],
    },
    "quick": {
        "load": {"users": 50, "duration": 30},
        "density": {"sessions": 20},
        "soak": {"duration": 120, "sample": 5},
        "proxy": ["--duration", "2", "--rounds", "1"],
        "start": ["--runs", "5"],
        "scale": ["--runs", "10000", "--requests", "10"],
        "jupyterhub": ["--spawns", "5"],
        "live": ["--duration", "3", "--watchers", "100", "--rates", "10000", "--burst", "100000"],
    },
}
Row = tuple[str, str, str]


def load(size: dict) -> list[Row]:
    import bench_load

    return bench_load.rows(bench_load.run(**size))


def density(size: dict) -> list[Row]:
    import bench_density

    return bench_density.rows(bench_density.run(**size))


def soak(size: dict) -> list[Row]:
    import bench_soak

    return bench_soak.rows(bench_soak.run(**size))


PROXY_LINE = re.compile(r"^(small|1 MiB)\s+(\d+) \| (\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s*$")


def proxy(args: list[str]) -> list[Row]:
    """``bench/proxy/bench_proxy.py``: ours vs direct vs nginx, the same wrk runs."""
    output = _script(BENCH / "proxy" / "bench_proxy.py", args)
    cells: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for line in output.splitlines():
        match = PROXY_LINE.match(line)
        if match:
            label, conns, way, rps, p50, _ = match.groups()
            cells.setdefault((label, conns), {})[way] = (float(rps), float(p50))
    rows = []
    for (label, conns), ways in cells.items():
        ours, direct, nginx = ways["ours"], ways["direct"], ways["nginx"]
        authz = ways.get("authz")  # nginx in front, asking ours (auth_request mode)
        rows.append((
            f"proxy: {label}, {conns} conn req/s ours / direct / nginx",
            f"{ours[0]:.0f} / {direct[0]:.0f} / {nginx[0]:.0f}",
            f"ours/nginx {ours[0] / nginx[0]:.0%}, ours/direct {ours[0] / direct[0]:.0%}; "
            f"p50 ms {ours[1]:.2f} / {direct[1]:.2f} / {nginx[1]:.2f}"
            + (f"; auth_request mode {authz[0]:.0f} req/s, p50 {authz[1]:.2f} ms" if authz else ""),
        ))  # fmt: skip
    return rows or [("proxy", "no figures", output[-300:].replace("\n", " "))]


def start(args: list[str]) -> list[Row]:
    """``bench/sessions/bench_start.py``: execute to first page, and a batch run."""
    output = _script(BENCH / "sessions" / "bench_start.py", args)
    rows = []
    for title, figures in re.findall(r"^(\w[^\n]*):\n\s+(p50[^\n]*)", output, re.MULTILINE):
        rows.append((f"sessions: {title.split(',')[0]} p50/p95/max", figures.strip(), title))
    over = re.search(r"cold over the floor: (-?\d+) ms .*run by run, p50 (-?\d+) ms", output)
    if over:
        rows.append(("sessions: cold start over the docker run -d floor",
                     f"{over[1]} ms (run by run {over[2]} ms)", "target <= 100 ms"))  # fmt: skip
    return rows or [("sessions", "no figures", output[-300:].replace("\n", " "))]


def scale(args: list[str]) -> list[Row]:
    """``bench/scale/bench_scale.py``: 1,000 scripts, 100,000 runs; PostgreSQL too when
    ``SM_BENCH_POSTGRES_URL`` names an empty database of its own."""
    postgres = os.environ.get("SM_BENCH_POSTGRES_URL", "")
    output = _script(BENCH / "scale" / "bench_scale.py",
                     [*args, *(["--postgres-url", postgres] if postgres else [])])  # fmt: skip
    rows: list[Row] = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("scale "):
            rows.append((cells[0], cells[1], cells[2]))
    return rows or [("scale", "no figures", output[-300:].replace("\n", " "))]


def jupyterhub(args: list[str]) -> list[Row]:
    """``bench/reference/bench_jupyterhub.py``: the JupyterHub + DockerSpawner reference spawn,
    with our cold start and ``docker run -d`` of our session image interleaved with it."""
    output = _script(BENCH / "reference" / "bench_jupyterhub.py", args)
    rows: list[Row] = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("jupyterhub"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows or [("jupyterhub", "no figures", output[-300:].replace("\n", " "))]


def live(args: list[str]) -> list[Row]:
    """``bench/logs/bench_live.py``: the log pump's throughput from a real container, and 1 and
    100 Socket.IO watchers' print-to-watcher latency at 2,000 and 10,000 lines/s."""
    sys.path.insert(0, str(BENCH / "logs"))
    import bench_live

    output = _script(BENCH / "logs" / "bench_live.py", args)
    return bench_live.rows(output) or [("live", "no figures", output[-300:].replace("\n", " "))]


def _script(path: Path, args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=3600
    )
    if done.returncode:
        raise RuntimeError(f"{path.name} exited {done.returncode}: {done.stderr[-500:]}")
    return done.stdout


BENCHES: dict[str, Callable[[dict], list[Row]]] = {
    "load": load,
    "density": density,
    "soak": soak,
    "proxy": proxy,  # type: ignore[dict-item]
    "start": start,  # type: ignore[dict-item]
    "scale": scale,  # type: ignore[dict-item]
    "jupyterhub": jupyterhub,  # type: ignore[dict-item]
    "live": live,  # type: ignore[dict-item]
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    args = parser.parse_args()
    scale = benchlib.scale()
    info = benchlib.machine()
    reference_before = benchlib.cpu_reference()
    began = time.time()
    table: list[Row] = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        print(f"running {name} ({scale}) ...", file=sys.stderr, flush=True)
        try:
            table += BENCHES[name](SIZES[scale][name])
        except Exception as exc:  # noqa: BLE001 - a benchmark that cannot run is a row, not a failure
            traceback.print_exc()
            table.append((name, "did not run", f"{type(exc).__name__}: {str(exc)[:200]}"))
    reference_after = benchlib.cpu_reference()
    print()
    print(f"ScriptsManager benchmarks, BENCH_SCALE={scale}, {(time.time() - began) / 60:.0f} min")
    print(benchlib.machine_line(info))
    print(
        f"CPU reference (pure-Python loop, best of 5): {reference_before:.1f} ms before, "
        f"{reference_after:.1f} ms after (a slower machine shows as a larger figure)"
    )
    print()
    print("| figure | value | reference / ratio |")
    print("|---|---|---|")
    for figure, value, note in table:
        print(f"| {figure} | {value} | {note} |")


if __name__ == "__main__":
    main()
