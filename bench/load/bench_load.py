"""Load: N simulated users log in, browse, run batch scripts, use interactive ones and watch logs.

Runs the real ``scriptsmanager serve`` (gunicorn, gevent worker) with Docker sessions, on the
embedded SQLite or, with ``--database-url``, on a PostgreSQL database that the run empties first
(its name must contain "bench").
Each user is a thread with its own login: it opens the calculator (an interactive session of its
own), then loops until the time is up: a page (``/``), an API call (``/api/script-groups``), two
requests through the proxy to its calculator (the page and a ``calculate`` POST), and every
``--batch-every`` loops a batch run of a script printing ``--lines`` numbered lines, watched
live over Socket.IO (a raw WebSocket client, ``bench/logs/lean_client.py``) from its start.
Between loops a user thinks for ``--think`` seconds (0.5x-1.5x, random).

Prints requests/s, p50/p95/p99 per kind of request, errors, and log lines lost (lines the
script printed that the watcher or the stored log did not get). The reference, measured in the
same run on the same manager before the load starts: the same requests one at a time, and a
pure-Python loop (``benchlib.cpu_reference``); loaded/idle ratios are printed with them.

    python bench/load/bench_load.py [--users 50] [--duration 300] [--think 1.0]
                                    [--database-url postgresql://.../sm_bench_load]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "logs"))

import benchlib  # noqa: E402
from lean_client import Watcher  # noqa: E402

BATCH_SCRIPT = '''"""
ScriptsManager Metadata:
@description: Load benchmark: print "<n> <send time>" lines at a steady rate
@required_level: operator
@parameters: [
    {"name": "count", "type": "int", "default": 200, "min": 1, "max": 1000000},
    {"name": "rate", "type": "float", "default": 200, "min": 1, "max": 1000000}
]
@execution_timeout: 600
"""

import sys
import time

count = int(PARAMETERS["count"])
rate = float(PARAMETERS["rate"])
began = time.time()
for n in range(1, count + 1):
    delay = began + n / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    sys.stdout.write(f"{n} {time.time():.6f}\\n")
    sys.stdout.flush()
'''
KINDS = ("login", "page", "api", "proxy", "open interactive", "batch run")
PASSWORD = "bench-user-password"


class Recorder:
    """Latencies per kind, errors with a few samples, all requests counted; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []  # a few of each kind of error
        self.requests = 0
        self.lines_expected = 0
        self.lines_watched = 0
        self.lines_stored = 0
        self.out_of_order = 0

    def request(
        self,
        kind: str | None,
        session: requests.Session,
        method: str,
        url: str,
        quiet: bool = False,
        **kwargs,
    ) -> requests.Response | None:
        """The response, or None (counted as an error unless ``quiet``) when it is not 2xx."""
        began = time.perf_counter()
        try:
            response = session.request(method, url, timeout=60, **kwargs)
            failed = "" if response.ok else f"{response.status_code} {response.text[:120]}"
        except requests.RequestException as exc:
            response, failed = None, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - began
        with self.lock:
            self.requests += 1
            if kind:
                self.latencies[kind].append(elapsed)
            if failed and not quiet:
                self.error(kind or _route(method, url), f"{method} {url}: {failed}")
        return None if failed else response

    def error(self, kind: str, sample: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if self.errors[kind] <= 3:
                self.samples.append(f"{kind}: {sample}")


def _route(method: str, url: str) -> str:
    """``POST /api/scripts/<n>/execute``: an untimed request's name for the error count."""
    import re
    from urllib.parse import urlsplit

    return f"{method} " + re.sub(r"/[0-9a-f-]{1,36}(?=/|$)", "/<n>", urlsplit(url).path)


class User(threading.Thread):
    def __init__(self, bench: Load, name: str, until: float):
        super().__init__(daemon=True)
        self.bench, self.name, self.until = bench, name, until
        self.rec = bench.rec
        self.url = bench.manager.url

    def run(self) -> None:
        try:
            self.work()
        except Exception as exc:  # noqa: BLE001 - counted as an error, the other users go on
            self.rec.error("user", f"{self.name}: {type(exc).__name__}: {exc}")

    def work(self) -> None:
        session = requests.Session()
        began = time.perf_counter()
        self.session = session
        answer = self.rec.request(
            None, session, "POST", f"{self.url}/api/auth/login",
            json={"username": self.name, "password": PASSWORD},
        )  # fmt: skip
        csrf = self.rec.request(None, session, "GET", f"{self.url}/api/auth/csrf")
        if answer is None or csrf is None:
            return
        self.rec.latencies["login"].append(time.perf_counter() - began)
        session.headers["X-CSRFToken"] = csrf.json()["csrf_token"]
        self.cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        proxy_url = self.open_interactive()
        self.until = time.time() + self.bench.duration  # the steady part: after login and open
        loops = 0
        while time.time() < self.until:
            self.rec.request("page", session, "GET", f"{self.url}/")
            self.rec.request("api", session, "GET", f"{self.url}/api/script-groups")
            if proxy_url:
                self.rec.request("proxy", session, "GET", proxy_url)
                self.rec.request("proxy", session, "POST", proxy_url + "calculate",
                                 json={"expression": f"{loops}*7"})  # fmt: skip
            loops += 1
            if loops % self.bench.batch_every == 0 and time.time() < self.until:
                self.batch()
            time.sleep(self.bench.think * random.uniform(0.5, 1.5))
        if proxy_url:
            self.rec.request(None, session, "POST", f"{self.url}/api/sessions/{self.run_id}/stop")

    def open_interactive(self) -> str | None:
        began = time.perf_counter()
        answer = self.rec.request(
            None, self.session, "POST",
            f"{self.url}/api/scripts/{self.bench.calculator}/execute", json={},
        )  # fmt: skip
        if answer is None:
            return None
        body = answer.json()
        self.run_id = body["execution_id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            page = self.rec.request(None, self.session, "GET", body["proxy_url"], quiet=True)
            if page is not None:
                self.rec.latencies["open interactive"].append(time.perf_counter() - began)
                return str(body["proxy_url"])
            time.sleep(0.1)
        self.rec.error("open interactive", f"{self.name}: no 200 from {body['proxy_url']}")
        return None

    def batch(self) -> None:
        count = self.bench.lines
        began = time.perf_counter()
        answer = self.rec.request(
            None, self.session, "POST", f"{self.url}/api/scripts/{self.bench.batch_script}/execute",
            json={"parameters": {"count": count, "rate": self.bench.rate}},
        )  # fmt: skip
        if answer is None:
            return
        run_id = answer.json()["execution_id"]
        watcher = Watcher(self.url, self.cookie, run_id)
        # A quiet stretch longer than this is a lost watcher. Socket.IO pings every 25 s; a
        # run whose container takes 10 s to start under load is late, not lost.
        watcher.ws.settimeout(30)
        result = watcher.result
        deadline = time.time() + 120 + count / self.bench.rate
        try:
            while result.last_n < count and time.time() < deadline:
                watcher.read()
        except Exception as exc:  # noqa: BLE001 - a lost watcher is counted, not fatal
            self.rec.error("watch", f"{run_id}: {type(exc).__name__}: {exc}")
        finally:
            watcher.ws.close()
        status = "?"
        while time.time() < deadline:
            reply = self.rec.request(
                None, self.session, "GET", f"{self.url}/api/executions/{run_id}"
            )
            status = reply.json()["status"] if reply is not None else "?"
            if status in ("completed", "failed", "terminated"):
                break
            time.sleep(0.3)
        if status != "completed":
            self.rec.error("batch run", f"{run_id}: {status}")
        self.rec.latencies["batch run"].append(time.perf_counter() - began)
        stored = self.bench.stored_lines(run_id)
        with self.rec.lock:
            self.rec.lines_expected += count
            self.rec.lines_watched += min(result.timed, count)
            self.rec.lines_stored += stored
            self.rec.out_of_order += 0 if result.in_order else 1


def empty_database(url: str) -> None:
    """Drop everything in the PostgreSQL database at ``url``; refuses a name without "bench"."""
    from sqlalchemy import create_engine, text

    from manager.config import normalise_database_url

    url = normalise_database_url(url)
    name = url.rsplit("/", 1)[-1].split("?")[0]
    if not url.startswith("postgresql") or "bench" not in name:
        raise SystemExit(f"--database-url: a PostgreSQL database named *bench*, not {name!r}")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Load:
    def __init__(self, root: Path, users: int, duration: float, think: float, lines: int,
                 rate: float, batch_every: int, database_url: str | None = None):  # fmt: skip
        self.manager = benchlib.Manager(root, "load")
        self.database = "sqlite"
        if database_url:
            empty_database(database_url)
            self.manager.server.env["DATABASE_URL"] = database_url
            self.database = "postgresql"
        self.manager.add_script("data_processing", "bench_load_lines.py", BATCH_SCRIPT)
        self.users, self.duration, self.think = users, duration, think
        self.lines, self.rate, self.batch_every = lines, rate, batch_every
        self.rec = Recorder()

    def stored_lines(self, run_id: str) -> int:
        from manager.logs.store import read_lines

        # Only the stored logs' folder: the capture folders beside it come and go as runs end,
        # and a walk over them met one being removed (FileNotFoundError, counted as an error).
        folder = self.manager.root / "logs" / "executions"
        logs = list(folder.rglob(f"execution_{run_id}.log"))
        return sum(1 for _ in read_lines(logs[0], streams=["stdout"])) if logs else 0

    def idle_reference(self, admin: requests.Session, rounds: int = 30) -> dict[str, float]:
        """p50 of each kind of request one at a time on the idle manager (same run)."""
        url = self.manager.url
        answer = admin.post(f"{url}/api/scripts/{self.calculator}/execute", json={})
        if not answer.ok:
            raise RuntimeError(f"execute: {answer.status_code} {answer.text}")
        body = answer.json()
        proxy = body["proxy_url"]
        deadline = time.time() + 120
        while admin.get(proxy).status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        timings: dict[str, list[float]] = defaultdict(list)
        for n in range(rounds):
            for kind, method, target, extra in (
                ("page", "GET", f"{url}/", {}),
                ("api", "GET", f"{url}/api/script-groups", {}),
                ("proxy", "GET", proxy, {}),
                ("proxy", "POST", proxy + "calculate", {"json": {"expression": f"{n}*7"}}),
            ):
                began = time.perf_counter()
                admin.request(method, target, timeout=60, **extra).raise_for_status()
                timings[kind].append(time.perf_counter() - began)
        admin.post(f"{url}/api/sessions/{body['execution_id']}/stop")
        return {kind: benchlib.median(values) for kind, values in timings.items()}

    def run(self) -> dict:
        info = benchlib.machine()
        cpu_ref = benchlib.cpu_reference()
        self.manager.start()
        try:
            admin = benchlib.login(self.manager.server)
            ids = self.manager.script_ids(admin)
            self.calculator, self.batch_script = ids["calculator.py"], ids["bench_load_lines.py"]
            names = [f"bench{n:03d}" for n in range(self.users)]
            for name in names:
                self.manager.create_user(admin, name, PASSWORD)
            idle = self.idle_reference(admin)
            worker = benchlib.worker_pid(self.manager.server.process.pid)  # type: ignore[union-attr]
            cpu_before, began = benchlib.cpu_seconds(worker), time.time()
            until = began + self.duration
            crowd = [User(self, name, until) for name in names]
            for user in crowd:
                user.start()
            for user in crowd:
                user.join(timeout=max(1.0, until - time.time()) + 900)
            elapsed = time.time() - began
            cpu = (benchlib.cpu_seconds(worker) - cpu_before) / elapsed
            probe = self.manager.probe.read()
        finally:
            self.manager.stop()
        return {"machine": info, "cpu_ref_ms": cpu_ref, "idle": idle, "elapsed": elapsed,
                "manager_cpu": cpu, "probe": probe, "rec": self.rec, "users": self.users,
                "duration": self.duration, "database": self.database}  # fmt: skip


def rows(figures: dict) -> list[tuple[str, str, str]]:
    """(figure, value, reference/ratio) rows for ``run_all``'s table."""
    rec: Recorder = figures["rec"]
    idle = figures["idle"]
    out = [(f"load: {figures['users']} users, {figures['duration']:.0f} s: requests/s",
            f"{rec.requests / figures['elapsed']:.1f}",
            f"manager worker CPU {figures['manager_cpu'] * 100:.0f} % of a core; "
            f"{figures.get('database', 'sqlite')}")]  # fmt: skip
    for kind in KINDS:
        values = rec.latencies.get(kind, [])
        if not values:
            continue
        p50, p95, p99 = (benchlib.percentile(values, q) for q in (0.5, 0.95, 0.99))
        reference = ""
        if kind in idle:
            reference = (
                f"idle p50 {idle[kind] * 1000:.1f} ms; loaded/idle p50 {p50 / idle[kind]:.1f}x"
            )
        value = f"{p50 * 1000:.0f} / {p95 * 1000:.0f} / {p99 * 1000:.0f}"
        out.append((f"load: {kind} p50/p95/p99 ms ({len(values)})", value, reference))
    errors = sum(rec.errors.values())
    detail = ", ".join(f"{k} {v}" for k, v in rec.errors.items()) or "target 0"
    out.append(("load: errors", str(errors), detail))
    for sample in rec.samples[:6]:
        out.append(("load: error sample", "", sample[:160].replace("|", "/").replace("\n", " ")))
    lost_watch = rec.lines_expected - rec.lines_watched
    lost_store = rec.lines_expected - rec.lines_stored
    note = f"of {rec.lines_expected}; runs out of order {rec.out_of_order}; target 0"
    out.append(("load: log lines lost (watcher / stored)", f"{lost_watch} / {lost_store}", note))
    rss = [s["rss_mib"] for s in figures["probe"] if "rss_mib" in s]
    if rss:
        out.append(("load: manager RSS MiB start / max", f"{rss[0]:.0f} / {max(rss):.0f}", ""))
    return out


def print_rows(table: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in table)
    for figure, value, note in table:
        print(f"{figure:<{width}}  {value:>16}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--lines", type=int, default=200, help="lines a batch run prints")
    parser.add_argument("--rate", type=float, default=200, help="lines/s a batch run prints")
    parser.add_argument("--batch-every", type=int, default=5)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database the run empties first (its name must contain 'bench'); "
        "default: the embedded SQLite",
    )
    args = parser.parse_args()
    figures = run(args.users, args.duration, args.think, args.lines, args.rate, args.batch_every,
                  args.database_url)  # fmt: skip
    print(benchlib.machine_line(figures["machine"]))
    print(f"CPU reference (pure-Python loop, best of 5): {figures['cpu_ref_ms']:.1f} ms")
    print_rows(rows(figures))
    for sample in figures["rec"].samples:
        print("  error:", sample)


def run(users: int = 50, duration: float = 300, think: float = 1.0, lines: int = 200,
        rate: float = 200, batch_every: int = 5,
        database_url: str | None = None) -> dict:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sm-bench-load-") as tmp:
        return Load(Path(tmp), users, duration, think, lines, rate, batch_every,
                    database_url).run()  # fmt: skip


if __name__ == "__main__":
    main()
