"""Density: how many idle interactive sessions this machine holds, at what memory each.

Runs the real ``scriptsmanager serve`` with Docker sessions and opens ``--sessions`` calculator
sessions (one admin, one project each: a user has one interactive session per script and
project), ``--parallel`` at a time, each until its page answers through the proxy. Once all are
up and idle it reads each session container's memory (usage less inactive page cache, from the
cgroup), the host's MemAvailable before and after (the whole cost: container, shim, network),
and the manager worker's RSS and file descriptors (``probe_gunicorn.py``); then checks that
every session still answers. The reference, in the same run: a container of the same image
running only ``python3 -m http.server`` (the least a Python web server costs).

What limits the count is printed from these figures: host memory left / cost per session, the
manager's open-file limit / descriptors per session, the engine's container start time as the
count grows, and ``SM_MAX_CONCURRENT_SESSIONS`` (20 by default: raise it for more).

    python bench/density/bench_density.py [--sessions 100] [--parallel 4] [--settle 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib  # noqa: E402


class Density:
    def __init__(self, root: Path, sessions: int, parallel: int, settle: float):
        self.manager = benchlib.Manager(root, "density", probe_interval=2)
        self.sessions, self.parallel, self.settle = sessions, parallel, settle
        self.errors: list[str] = []

    def open(self, admin: requests.Session, project_id: int) -> tuple[float, str | None]:
        """Seconds from execute to the first 200 through the proxy, and the session's URL."""
        url = self.manager.url
        began = time.perf_counter()
        answer = admin.post(
            f"{url}/api/scripts/{self.calculator}/execute",
            json={"project_id": project_id},
            timeout=120,
        )
        if not answer.ok:
            self.errors.append(f"execute: {answer.status_code} {answer.text[:200]}")
            return time.perf_counter() - began, None
        body = answer.json()
        self.image = body["image"]
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if admin.get(body["proxy_url"], timeout=60).status_code == 200:
                    return time.perf_counter() - began, str(body["proxy_url"])
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.errors.append(f"no answer from {body['proxy_url']}")
        return time.perf_counter() - began, None

    def reference_memory(self, client) -> float:  # type: ignore[no-untyped-def]
        """MiB of a bare ``python3 -m http.server`` container of the same image."""
        if not hasattr(self, "image"):
            return 0.0  # no session started: no image to compare with
        container = client.containers.run(
            self.image,
            entrypoint=["python3", "-m", "http.server", "8080"],
            detach=True,
            network_mode="none",
            labels={"io.scriptsmanager.instance": self.manager.instance},
            mem_limit="256m",
        )
        time.sleep(3)
        size = benchlib.container_memory(client, self.manager.instance).get(container.id, 0.0)
        anon = benchlib.container_memory(client, self.manager.instance, True).get(container.id)
        container.remove(force=True)
        self.reference_anon = float(anon or 0.0)
        return float(size or 0.0)

    def run(self) -> dict:
        import docker

        client = docker.from_env()
        info = benchlib.machine()
        self.manager.start()
        try:
            admin = benchlib.login(self.manager.server)
            self.calculator = self.manager.script_ids(admin)["calculator.py"]
            projects = []
            for n in range(self.sessions):
                answer = admin.post(
                    f"{self.manager.url}/api/projects", json={"name": f"density-{n:03d}"}
                )
                answer.raise_for_status()
                projects.append(answer.json()["project"]["id"])
            time.sleep(self.settle)
            base = self.manager.probe.latest()
            available_before = benchlib.mem_available_mib()
            began = time.time()
            with ThreadPoolExecutor(self.parallel) as pool:
                opened = list(pool.map(lambda p: self.open(admin, p), projects))
            opening = time.time() - began
            time.sleep(self.settle)  # idle: the first request's allocations settle
            sizes = list(benchlib.container_memory(client, self.manager.instance).values())
            anon = list(benchlib.container_memory(client, self.manager.instance, True).values())
            available_after = benchlib.mem_available_mib()
            loaded = self.manager.probe.latest()
            urls = [url for _, url in opened if url]
            answering = sum(1 for url in urls if self._answers(admin, url))
            reference = self.reference_memory(client)
            reference_anon = getattr(self, "reference_anon", 0.0)
            worker = benchlib.worker_pid(self.manager.server.process.pid)  # type: ignore[union-attr]
            fd_limit = _open_file_limit(worker)
        finally:
            self.manager.stop()
            client.close()
        return {
            "machine": info, "sessions": self.sessions, "starts": [t for t, _ in opened],
            "opened": len(urls), "answering": answering, "opening_s": opening, "sizes": sizes,
            "anon": anon,
            "host_mib": available_before - available_after, "base": base, "loaded": loaded,
            "reference_mib": reference, "reference_anon": reference_anon, "fd_limit": fd_limit,
            "errors": self.errors,
            "mem_available_mib": available_after,
        }  # fmt: skip

    @staticmethod
    def _answers(session: requests.Session, url: str) -> bool:
        try:
            return session.get(url, timeout=60).status_code == 200
        except requests.RequestException:
            return False


def _open_file_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 0


def rows(f: dict) -> list[tuple[str, str, str]]:
    n = max(1, f["opened"])
    sizes = f["sizes"] or [float("nan")]
    each = benchlib.median(sizes)
    host_each = f["host_mib"] / n
    ref = f["reference_mib"]
    starts = f["starts"]
    tenth = max(1, len(starts) // 10)
    first, last = benchlib.median(starts[:tenth]), benchlib.median(starts[-tenth:])
    fds_each = (f["loaded"].get("fds", 0) - f["base"].get("fds", 0)) / n
    rss_each = (f["loaded"].get("rss_mib", 0) - f["base"].get("rss_mib", 0)) / n
    by_memory = f["mem_available_mib"] / max(host_each, each, 1e-9)
    by_fds = (f["fd_limit"] - f["loaded"].get("fds", 0)) / fds_each if fds_each > 0 else 0
    limits = {"host memory": by_memory}
    if by_fds:
        limits["manager open files"] = by_fds
    bound = min(limits, key=lambda k: limits[k])
    return [
        ("density: idle sessions opened / answering", f"{f['opened']} / {f['answering']}",
         f"asked {f['sessions']}; target >= 100; errors {len(f['errors'])}"),
        ("density: container MiB each, median / max", f"{each:.1f} / {max(sizes):.1f}",
         f"target <= 30; bare python http.server {ref:.1f} MiB: ratio {each / ref:.2f}x"
         if ref else "target <= 30"),
        ("density: of which the processes' own (anon) MiB",
         f"{benchlib.median(f['anon'] or [0]):.1f}",
         f"the rest is page cache and tmpfs; bare http.server {f['reference_anon']:.1f} MiB"),
        ("density: host MemAvailable drop per session MiB", f"{host_each:.1f}",
         "container + shim + network; noisy on a shared host"),
        ("density: manager per session: RSS MiB / fds", f"{rss_each:.2f} / {fds_each:.1f}",
         f"worker RSS {f['loaded'].get('rss_mib', 0):.0f} MiB, fds "
         f"{f['loaded'].get('fds', 0)} of {f['fd_limit']}"),
        ("density: open to first page s, first / last tenth", f"{first:.1f} / {last:.1f}",
         f"all {f['opened']} in {f['opening_s']:.0f} s"),
        ("density: sessions this host could hold", f"{min(limits.values()):.0f}",
         "limited by " + bound + "; " + ", ".join(f"{k} {v:.0f}" for k, v in limits.items())
         + "; SM_MAX_CONCURRENT_SESSIONS caps it (20 by default)"),
    ]  # fmt: skip


def run(sessions: int = 100, parallel: int = 4, settle: float = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="sm-bench-density-") as tmp:
        return Density(Path(tmp), sessions, parallel, settle).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--settle", type=float, default=10)
    args = parser.parse_args()
    figures = run(args.sessions, args.parallel, args.settle)
    print(benchlib.machine_line(figures["machine"]))
    table = rows(figures)
    width = max(len(r[0]) for r in table)
    for figure, value, note in table:
        print(f"{figure:<{width}}  {value:>12}  {note}")
    for error in figures["errors"][:5]:
        print("  error:", error)


if __name__ == "__main__":
    main()
