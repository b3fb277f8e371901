"""Scale: a catalog of 1,000 scripts in 50 groups and a history of 100,000 runs.

Runs the manager's Flask app in this process (no gunicorn, no Docker: nothing here starts a
session), on SQLite and, with ``--postgres-url``, again on PostgreSQL, and prints:

* discovery of ``--groups`` x ``--per-group`` generated scripts: the first scan (every script
  new) and a second one (nothing changed), the time ``scriptsmanager`` spends at start-up;
* server time of the dashboard and of a group page (the Flask test client, so the figure is
  the manager's own time: routing, queries, templates), p50 and p95 of ``--requests``;
* full-text search (``/api/logs/search``) over ``--runs`` runs owned by the searching user,
  each with about 2 KB of output: a rare word (one run in 1,000), a common word (every run), a
  phrase, a prefix and an exclusion; p50 and p95 of ``--requests`` each.

A run's reference is a pure-Python loop timed before and after (``benchlib.cpu_reference``),
so figures from a loaded machine can be read against it.

    python bench/scale/bench_scale.py [--groups 50 --per-group 20 --runs 100000]
        [--postgres-url postgresql://user:pass@host/db]   # an empty database of its own
        [--discovery-only]   # the two scans, then stop (no runs, pages or searches)
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402

from manager import create_app  # noqa: E402
from manager.auth.service import create_user  # noqa: E402
from manager.catalog_app import run_discovery  # noqa: E402
from manager.db import upgrade  # noqa: E402
from manager.extensions import db  # noqa: E402
from manager.models import Execution, ScriptGroup, User  # noqa: E402
from manager.models.util import utcnow  # noqa: E402

PASSWORD = "scale-bench-password"
WORDS = [
    "pressure", "temperature", "flow", "valve", "pump", "sensor", "reading", "calibrated",
    "batch", "line", "motor", "current", "voltage", "alarm", "cleared", "setpoint", "reached",
    "cycle", "completed", "tank", "level", "nominal", "drift", "report", "summary", "export",
    "file", "rows", "columns", "mean", "median", "deviation", "threshold", "exceeded", "retry",
]  # fmt: skip
SEARCHES = {
    "rare word": "needle17",
    "common word": "pressure",
    "phrase": '"setpoint reached"',
    "prefix": "calib*",
    "exclusion": "alarm -cleared",
}

SCRIPT = '''"""
ScriptsManager Metadata:
@description: Generated script {n} of group {g} for the scale benchmark
@required_level: operator
@category: bench
@tags: bench,group{g},kind{kind}
@parameters: [
    {{"name": "count", "type": "int", "default": 10, "min": 1, "max": 1000}},
    {{"name": "label", "type": "str", "default": "run {n}"}},
    {{"name": "mode", "type": "select", "options": ["fast", "slow"], "default": "fast"}}
]
@execution_timeout: 60
"""

print(PARAMETERS)
'''


def write_catalog(root: Path, groups: int, per_group: int) -> None:
    for g in range(groups):
        folder = root / f"bench_group_{g:02d}"
        folder.mkdir(parents=True)
        meta = {
            "name": {"en": f"Bench group {g}"},
            "description": {"en": f"Generated group {g} of the scale benchmark"},
            "required_level": "operator",
            "conda_environment": "base",
            "auto_discovery": True,
        }
        (folder / "metadata.json").write_text(json.dumps(meta))
        for n in range(per_group):
            (folder / f"script_{n:03d}.py").write_text(SCRIPT.format(n=n, g=g, kind=n % 5))


def make_app(url: str, root: Path, groups_dir: Path) -> Any:
    upgrade(url)
    for name in ("data", "logs", "backup"):
        (root / name).mkdir(exist_ok=True)
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "scale-bench-secret-key-not-for-production",
            "SQLALCHEMY_DATABASE_URI": url,
            "SM_DATA_DIR": str(root / "data"),
            "SM_LOG_DIR": str(root / "logs"),
            "SM_BACKUP_DIR": str(root / "backup"),
            "SM_SCRIPT_GROUPS_DIR": str(groups_dir),
            "SM_CONDA_ENVS_DIR": str(benchlib.REPO / "conda-envs"),
            "SM_WATCH_SCRIPTS": False,
        }
    )


def timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def output_of(rng: random.Random, index: int) -> str:
    lines = []
    for line in range(24):
        words = rng.choices(WORDS, k=12)
        if line == 0:
            words[0] = "pressure"  # the common word: in every run
        lines.append(f"{line:03d} " + " ".join(words))
    if index % 1000 == 17:
        lines.append("needle17 found here")  # the rare word: one run in a thousand
    return "\n".join(lines) + "\n"


def insert_runs(app: Any, user_id: int, script_id: int, runs: int, batch: int = 2000) -> float:
    rng = random.Random(7)
    began = time.perf_counter()
    start = utcnow() - timedelta(days=400)
    table = Execution.__table__
    with app.app_context():
        for first in range(0, runs, batch):
            rows = []
            for index in range(first, min(runs, first + batch)):
                at = start + timedelta(minutes=5 * index)
                rows.append({
                    "script_id": script_id, "user_id": user_id, "execution_uuid": str(uuid.uuid4()),
                    "status": "completed" if index % 20 else "failed", "start_time": at,
                    "end_time": at + timedelta(seconds=30), "duration_seconds": 30,
                    "output": output_of(rng, index), "error_output": "", "debug_output": "",
                    "exit_code": 0 if index % 20 else 1,
                    "parameters": {"count": index % 100, "label": f"run {index}"},
                    "created_at": at, "last_updated": at, "environment": {}, "limits": {},
                    "interactive": False, "log_level": "INFO",
                })  # fmt: skip
            db.session.execute(insert(table), rows)
            db.session.commit()
    return time.perf_counter() - began


def request_times(client: Any, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.get_data(True)[:300]}")
    return times


def figures(label: str, times: list[float]) -> str:
    return f"{benchlib.fmt_ms(benchlib.percentile(times, 0.5))} / " + benchlib.fmt_ms(
        benchlib.percentile(times, 0.95)
    )


def run_engine(engine: str, url: str, args: argparse.Namespace, work: Path) -> list[tuple]:
    rows: list[tuple] = []
    groups_dir = work / f"groups-{engine}"
    write_catalog(groups_dir, args.groups, args.per_group)
    app = make_app(url, work / engine, groups_dir)
    scripts = args.groups * args.per_group
    first = timed(lambda: run_discovery(app))
    again = timed(lambda: run_discovery(app))
    rows.append((f"scale {engine}: discovery of {scripts} scripts in {args.groups} groups, "
                 "first / unchanged s", f"{first:.2f} / {again:.2f}", "target <= 2 s"))  # fmt: skip
    if args.discovery_only:
        return rows
    with app.app_context():
        user = create_user(
            db.session, {"username": "scale", "password": PASSWORD, "user_level": "operator"}
        )
        db.session.commit()
        user_id = user.id
        group = db.session.query(ScriptGroup).order_by(ScriptGroup.id).first()
        assert group is not None and group.scripts, "discovery found nothing"
        group_id, script_id = group.id, group.scripts[0].id
        assert db.session.get(User, user_id) is not None
    seconds = insert_runs(app, user_id, script_id, args.runs)
    rows.append((f"scale {engine}: {args.runs} runs inserted (bulk, index kept by the database)",
                 f"{seconds:.1f} s", f"{args.runs / seconds:.0f} runs/s"))  # fmt: skip
    if engine == "postgresql":
        with app.app_context():
            db.session.execute(text("ANALYZE"))
            db.session.commit()
    client = app.test_client()
    answer = client.post("/api/auth/login", json={"username": "scale", "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(True)
    for title, path in (("dashboard /", "/"), (f"group page /groups/{group_id}",
                                               f"/groups/{group_id}")):  # fmt: skip
        request_times(client, path, 3)  # warm the caches and the templates
        times = request_times(client, path, args.requests)
        rows.append((f"scale {engine}: {title} p50 / p95 ms ({args.requests})",
                     figures(title, times), "server time; target <= 100 ms"))  # fmt: skip
    for title, query in SEARCHES.items():
        path = "/api/logs/search?" + "q=" + query.replace(" ", "+").replace('"', "%22")
        found = client.get(path).get_json()
        times = request_times(client, path, args.requests)
        total = found.get("total", found.get("count", "?")) if isinstance(found, dict) else "?"
        rows.append((f"scale {engine}: search {title} `{query}` p50 / p95 ms",
                     figures(title, times),
                     f"{total} of {args.runs} runs match; target <= 200 ms"))  # fmt: skip
    return rows


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run(args: argparse.Namespace) -> list[tuple]:
    logging.getLogger("scriptsmanager").setLevel(logging.WARNING)
    info = benchlib.machine()
    rows: list[tuple] = [("machine", benchlib.machine_line(info), "")]
    cpu_before = benchlib.cpu_reference()
    with tempfile.TemporaryDirectory(prefix="sm-bench-scale-") as tmp:
        work = Path(tmp)
        if "sqlite" in args.engines:
            (work / "sqlite").mkdir()
            rows += run_engine("sqlite", f"sqlite:///{work}/sqlite/manager.db", args, work)
        if args.postgres_url and "postgresql" in args.engines:
            reset_postgres(args.postgres_url)
            (work / "postgresql").mkdir()
            try:
                rows += run_engine("postgresql", args.postgres_url, args, work)
            finally:
                reset_postgres(args.postgres_url)
    cpu_after = benchlib.cpu_reference()
    rows.append(("cpu reference ms before / after", f"{cpu_before:.1f} / {cpu_after:.1f}", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = benchlib.scale() == "quick"
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10_000 if quick else 100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres-url", default="", help="an empty database of its own")
    parser.add_argument("--engines", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--discovery-only", action="store_true", help="stop after discovery")
    args = parser.parse_args()
    print("| figure | value | reference / target |\n|---|---|---|")
    for row in run(args):
        print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)


if __name__ == "__main__":
    main()
