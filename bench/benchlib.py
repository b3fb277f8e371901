"""What the load, density and soak benchmarks share: the machine, a reference, the manager.

``Manager`` is ``tests/support/serve.py``'s ``Server`` (a real ``scriptsmanager serve`` with its
own Docker instance label) plus a probe in the gunicorn worker (``probe_gunicorn.py``) that
writes the worker's memory, file descriptors, greenlets and database connections to a file.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from tests.support.serve import ADMIN_PASSWORD, Server, login, remove_instance  # noqa: E402

__all__ = ["ADMIN_PASSWORD", "login"]

SCALES = ("quick", "full")


def scale() -> str:
    """``BENCH_SCALE``: ``full`` (the issue's figures, default) or ``quick`` (a short check)."""
    value = os.environ.get("BENCH_SCALE", "full").lower()
    if value not in SCALES:
        raise SystemExit(f"BENCH_SCALE must be one of {', '.join(SCALES)}, not {value!r}")
    return value


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def machine() -> dict:
    """Cores, memory, CPU model, load and date: printed with every figure."""
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 1024 / 1024, 1),
        "cpu": model,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def machine_line(info: dict) -> str:
    return (
        f"machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; "
        f"load average {info['load']}; {info['date']}"
    )


def cpu_reference(rounds: int = 5) -> float:
    """Milliseconds for a fixed pure-Python loop (best of ``rounds``): how fast this machine is
    for one core right now; figures from the same run can be read against it."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        total = 0
        for n in range(300_000):
            total += n * n % 7
        best = min(best, time.perf_counter() - began)
    return best * 1000


@dataclass
class Probe:
    """The manager worker's own figures, sampled by ``probe_gunicorn.py``."""

    path: Path
    samples: list[dict] = field(default_factory=list)

    def read(self) -> list[dict]:
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            self.samples = [json.loads(line) for line in lines if line.strip()]
        return self.samples

    def latest(self) -> dict:
        samples = self.read()
        return samples[-1] if samples else {}


class Manager:
    """A real ``scriptsmanager serve`` for a benchmark, with the probe, cleaned up on stop."""

    def __init__(self, root: Path, name: str, probe_interval: float = 5.0, **env: str):
        tag = uuid.uuid4().hex[:6]
        self.instance = f"smbench-{name}-{tag}"
        self.probe = Probe(root / "probe.jsonl")
        self.probe_interval = probe_interval
        settings = {
            "SM_MAX_CONCURRENT_SESSIONS": "1000",
            "SM_MAX_SESSIONS_PER_USER": "1000",
            "SM_MAX_PROJECTS_PER_USER": "1000",
            "GUNICORN_CMD_ARGS": f"--config {BENCH / 'probe_gunicorn.py'}",
            "SM_BENCH_PROBE": str(self.probe.path),
            "SM_BENCH_PROBE_INTERVAL": str(probe_interval),
            **env,
        }
        self._copy_groups(root)
        self.server = Server(root, self.instance, self.instance, **settings)
        self.root = root
        self.url = self.server.url

    @staticmethod
    def _copy_groups(root: Path) -> None:
        """The shipped groups, each allowing a user as many sessions as the benchmark opens
        (the groups' own ``max_sessions_per_user`` would cap one user at a few)."""
        import shutil

        groups = root / "script_groups"
        shutil.copytree(REPO / "script_groups", groups)
        for path in groups.glob("*/metadata.json"):
            metadata = json.loads(path.read_text())
            metadata.setdefault("limits", {})["max_sessions_per_user"] = 100  # the most allowed
            path.write_text(json.dumps(metadata, indent=2))

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        """Kill the manager and remove every container and network of this instance."""
        self.server.kill()
        import docker

        client = docker.from_env()
        remove_instance(client, self.instance, self.instance)
        client.close()

    def add_script(self, group: str, name: str, text: str) -> None:
        (self.root / "script_groups" / group / name).write_text(text)

    def script_ids(self, session: requests.Session) -> dict[str, int]:
        from tests.support.serve import script_ids

        return script_ids(self.server, session)

    def wait_status(
        self, session: requests.Session, run_id: str, wanted: set[str], timeout: float = 120
    ) -> dict:
        deadline = time.time() + timeout
        body: dict = {}
        while time.time() < deadline:
            body = session.get(f"{self.url}/api/executions/{run_id}", timeout=30).json()
            if body["status"] in wanted:
                return body
            time.sleep(0.3)
        raise TimeoutError(f"run {run_id} stayed {body.get('status')}")

    def create_user(self, admin: requests.Session, username: str, password: str) -> None:
        answer = admin.post(
            f"{self.url}/api/admin/users",
            json={"username": username, "password": password, "user_level": "operator",
                  "email": f"{username}@bench.invalid"},
            timeout=60,
        )  # fmt: skip
        if answer.status_code != 201:
            raise RuntimeError(f"creating {username}: {answer.status_code} {answer.text}")

    def login_as(self, username: str, password: str) -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.url}/api/auth/login",
            json={"username": username, "password": password},
            timeout=60,
        )
        answer.raise_for_status()
        token = session.get(f"{self.url}/api/auth/csrf", timeout=30).json()["csrf_token"]
        session.headers["X-CSRFToken"] = token
        return session


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_pid(master: int) -> int:
    """The gunicorn worker under ``master`` (the one process that serves everything)."""
    return int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def container_memory(client, instance: str, anon: bool = False) -> dict[str, float]:
    """MiB each running container of ``instance`` uses, by id: usage less inactive page cache,
    as ``docker stats`` shows it (``anon``: only the processes' own memory, no page cache or
    tmpfs). Read from the cgroup files when this host has them (fast), else from the engine's
    stats (a second or two a container)."""
    sizes = {}
    for container in client.containers.list(
        filters={"label": f"io.scriptsmanager.instance={instance}"}
    ):
        sizes[container.id] = _cgroup_memory(container.id, anon)
        if sizes[container.id] is None:
            memory = container.stats(stream=False).get("memory_stats", {})
            stats = memory.get("stats", {})
            cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
            sizes[container.id] = (memory.get("usage", 0) - cache) / 1024 / 1024
    return sizes


def _cgroup_memory(container_id: str, anon: bool) -> float | None:
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
            if anon:
                return int(stat.get(anon_key, 0)) / 1024 / 1024
            return (usage - int(stat.get(cache_key, 0))) / 1024 / 1024
    return None


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds == seconds else "-"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
