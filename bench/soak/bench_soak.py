"""Soak: sessions opening and closing for a long time; does the manager stay flat?

Runs the real ``scriptsmanager serve`` with Docker sessions. ``--workers`` loops (one admin, a
project each) repeat until the time is up: open the calculator, load its page and POST a
calculation through the proxy, stop it and wait until it is gone; every second cycle a batch
run (``unit_converter.py``) to completion. Meanwhile the probe in the manager's worker
(``probe_gunicorn.py``) samples its RSS, file descriptors, threads, live greenlets and
database connections (checked out, idle in the pool) every ``--sample`` seconds.

Prints each figure at the end of the warm-up (the first tenth of the run: the reference from
the same run), at the end, its maximum, and the RSS trend over the rest of the run (MiB per
10 minutes, a least-squares slope), plus the cycles done, errors and containers left behind.

    python bench/soak/bench_soak.py [--duration 1800] [--workers 4] [--sample 10] [--save FILE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib  # noqa: E402

FIGURES = ("rss_mib", "fds", "threads", "greenlets", "db_checked_out", "db_idle_in_pool")
# The memory behind the RSS, where the probe has them: glibc's heap (handed out, free inside
# it), SQLite's caches, CPython's small-object arenas. Each gets a trend, as the RSS does.
MEMORY = ("malloc_in_use_mib", "malloc_free_mib", "sqlite_mib", "pymalloc_arenas_mib")


class Soak:
    def __init__(self, root: Path, duration: float, workers: int, sample: float):
        self.manager = benchlib.Manager(root, "soak", probe_interval=sample)
        self.duration, self.workers = duration, workers
        self.cycles = 0
        self.batches = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def cycle(self, admin: requests.Session, project_id: int, batch: bool) -> None:
        url = self.manager.url
        answer = admin.post(
            f"{url}/api/scripts/{self.ids['calculator.py']}/execute",
            json={"project_id": project_id},
            timeout=120,
        )
        answer.raise_for_status()
        body = answer.json()
        deadline = time.time() + 120
        while admin.get(body["proxy_url"], timeout=60).status_code != 200:
            if time.time() > deadline:
                raise TimeoutError(f"{body['proxy_url']} never answered")
            time.sleep(0.1)
        admin.post(
            body["proxy_url"] + "calculate", json={"expression": "6*7"}, timeout=60
        ).raise_for_status()
        admin.post(f"{url}/api/sessions/{body['execution_id']}/stop", timeout=60).raise_for_status()
        self.manager.wait_status(admin, body["execution_id"], {"terminated", "completed"})
        with self.lock:
            self.cycles += 1
        if batch:
            answer = admin.post(
                f"{url}/api/scripts/{self.ids['unit_converter.py']}/execute",
                json={"project_id": project_id},
                timeout=120,
            )
            answer.raise_for_status()
            self.manager.wait_status(admin, answer.json()["execution_id"], {"completed"})
            with self.lock:
                self.batches += 1

    def worker(self, admin: requests.Session, project_id: int, until: float) -> None:
        n = 0
        while time.time() < until:
            try:
                self.cycle(admin, project_id, batch=n % 2 == 1)
            except (requests.RequestException, TimeoutError, KeyError) as exc:
                with self.lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(1)
            n += 1

    def run(self) -> dict:
        import docker

        info = benchlib.machine()
        self.manager.start()
        try:
            admin = benchlib.login(self.manager.server)
            self.ids = self.manager.script_ids(admin)
            projects = []
            for n in range(self.workers):
                answer = admin.post(f"{self.manager.url}/api/projects", json={"name": f"soak-{n}"})
                answer.raise_for_status()
                projects.append(answer.json()["project"]["id"])
            began = time.time()
            until = began + self.duration
            threads = [
                threading.Thread(target=self.worker, args=(admin, p, until), daemon=True)
                for p in projects
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(until - time.time() + 300)
            time.sleep(2 * self.manager.probe_interval + 1)  # a sample with every session gone
            samples = [s for s in self.manager.probe.read() if "rss_mib" in s]
            client = docker.from_env()
            label = f"io.scriptsmanager.instance={self.manager.instance}"
            left = len(client.containers.list(all=True, filters={"label": label}))
            client.close()
        finally:
            self.manager.stop()
        return {"machine": info, "began": began, "duration": self.duration,
                "samples": samples, "cycles": self.cycles, "batches": self.batches,
                "errors": self.errors, "left": left, "workers": self.workers}  # fmt: skip


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (value per second) of (time, value) points."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0


def rows(f: dict) -> list[tuple[str, str, str]]:
    samples = [s for s in f["samples"] if s["t"] >= f["began"]]
    if not samples:
        return [("soak", "no samples", "")]
    warm = f["began"] + f["duration"] / 10
    after = [s for s in samples if s["t"] >= warm] or samples
    reference = after[0]
    out = [
        (f"soak: {f['duration'] / 60:.0f} min, {f['workers']} loops: sessions opened+closed",
         str(f["cycles"]), f"batch runs {f['batches']}; errors {len(f['errors'])} (target 0); "
         f"containers left {f['left']}"),
    ]  # fmt: skip
    for key in FIGURES + MEMORY:
        values = [s[key] for s in after if s.get(key) is not None]
        if not values:
            continue
        end = values[-1]
        ratio = f"end/warm-up {end / reference[key]:.2f}x" if reference[key] else ""
        value = f"{reference[key]} / {end} / {max(values)}"
        out.append((f"soak: manager {key}: after warm-up / end / max", value, ratio))
    trend = slope([(s["t"], s["rss_mib"]) for s in after]) * 600
    out.append(("soak: manager RSS trend after warm-up", f"{trend:+.1f} MiB/10 min",
                "target flat (about 0)"))  # fmt: skip
    for key in MEMORY:
        points = [(s["t"], s[key]) for s in after if s.get(key) is not None]
        if points:
            trend = slope(points) * 600
            name = key.removesuffix("_mib")
            out.append((f"soak: manager {name} trend", f"{trend:+.1f} MiB/10 min", ""))
    return out


def run(
    duration: float = 1800, workers: int = 4, sample: float = 10, save: Path | None = None
) -> dict:
    with tempfile.TemporaryDirectory(prefix="sm-bench-soak-") as tmp:
        soak = Soak(Path(tmp), duration, workers, sample)
        try:
            return soak.run()
        finally:
            if save is not None and soak.manager.probe.path.exists():
                shutil.copyfile(soak.manager.probe.path, save)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sample", type=float, default=10)
    parser.add_argument("--save", type=Path, help="keep the probe's samples (JSON lines) here")
    args = parser.parse_args()
    figures = run(args.duration, args.workers, args.sample, args.save)
    print(benchlib.machine_line(figures["machine"]))
    table = rows(figures)
    width = max(len(r[0]) for r in table)
    for figure, value, note in table:
        print(f"{figure:<{width}}  {value:>18}  {note}")
    for error in figures["errors"][:5]:
        print("  error:", error)


if __name__ == "__main__":
    main()
