"""Retention by role, the daily job that runs once across processes, and its database lock."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import pytest

from manager.logs import locks, retention
from manager.models import utcnow
from tests.logs.test_api_support import World, audit_actions, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


def aged(world, username: str, days: float, **extra) -> str:
    return world.run(username, start=utcnow() - timedelta(days=days), **extra)


def test_retention_days_follow_the_role(world):
    keep = {
        "vera": aged(world, "vera", 6),
        "olga": aged(world, "olga", 29),
        "dora": aged(world, "dora", 89),
        "root": aged(world, "root", 364),
        "olga_live": aged(world, "olga", 60, status="running"),
    }
    drop = {
        "vera": aged(world, "vera", 8),
        "olga": aged(world, "olga", 31),
        "dora": aged(world, "dora", 91),
        "root": aged(world, "root", 366),
    }
    files = {name: world.file_of(run) for name, run in drop.items()}
    report = retention.run_retention(world.app)
    assert report is not None
    assert sorted(report.execution_ids) == sorted(drop.values())
    assert report.by_level == {"viewer": 1, "operator": 1, "developer": 1, "admin": 1}
    assert report.files_removed == 4
    assert all(world.exists(run) for run in keep.values())
    assert not any(world.exists(run) for run in drop.values())
    assert not any(path.exists() for path in files.values())


def test_retention_counts_from_the_end_and_is_configurable(world):
    # Started 40 days ago, ended 20 days ago (a long interactive session): kept 30 days.
    long_session = aged(world, "olga", 40, duration=20 * 86400)
    viewer_run = aged(world, "vera", 3)
    world.app.config["SM_RETENTION_DAYS_VIEWER"] = 2
    world.app.config["SM_RETENTION_DAYS_OPERATOR"] = 0  # 0: kept forever
    ancient = aged(world, "olga", 4000)
    report = retention.run_retention(world.app)
    assert report is not None and report.execution_ids == [viewer_run]
    assert world.exists(long_session) and world.exists(ancient)


def test_the_daily_job_runs_once_a_day_unless_forced(world):
    aged(world, "vera", 30)
    first = retention.run_retention(world.app, period="2026-11-25")
    assert first is not None and first.deleted == 1
    late = aged(world, "vera", 30)
    assert retention.run_retention(world.app, period="2026-11-25") is None
    assert world.exists(late)
    forced = retention.run_retention(world.app, period="2026-11-25", force=True)
    assert forced is not None and forced.execution_ids == [late]
    assert retention.run_retention(world.app, period="2026-11-26") is not None
    with world.app.app_context():
        from manager.extensions import db

        state = locks.state(db.engine, retention.JOB_NAME)
    assert state["last_period"] == "2026-11-26" and state["holder"] is None
    assert state["last_result"]["deleted"] == 0


def test_two_processes_waking_together_run_the_job_once(world):
    for _ in range(3):
        aged(world, "vera", 30)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def worker(name: str) -> None:
        barrier.wait()
        results[name] = retention.run_retention(world.app, period="2026-12-01", holder=name)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("p1", "p2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    reports = [r for r in results.values() if r is not None]
    assert len(results) == 2 and len(reports) == 1
    assert reports[0].deleted == 3


def test_a_held_lock_stops_a_forced_run_until_released(world, monkeypatch):
    holding = threading.Event()
    finish = threading.Event()
    real = retention.apply_retention

    def slow(*args, **kwargs):
        holding.set()
        assert finish.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(retention, "apply_retention", slow)
    outcome: list[object] = []
    first = threading.Thread(
        target=lambda: outcome.append(retention.run_retention(world.app, holder="first"))
    )
    first.start()
    assert holding.wait(30)
    assert retention.run_retention(world.app, holder="second", force=True) is None
    finish.set()
    first.join(30)
    assert outcome and outcome[0] is not None
    monkeypatch.setattr(retention, "apply_retention", real)
    assert retention.run_retention(world.app, holder="second", force=True) is not None


def test_lock_race_between_threads_has_one_winner(app):
    from manager.extensions import db

    with app.app_context():
        engine = db.engine
    for name in ("race_fresh", "race_existing"):
        if name == "race_existing":
            assert locks.acquire(engine, name, "setup", ttl=timedelta(minutes=1))
            assert locks.release(engine, name, "setup")
        barrier = threading.Barrier(6)
        wins: list[str] = []

        def contend(
            holder: str, lock: str = name, gate: threading.Barrier = barrier, won: list = wins
        ) -> None:
            gate.wait()
            if locks.acquire(engine, lock, holder, ttl=timedelta(minutes=5)):
                won.append(holder)

        threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(wins) == 1, (name, wins)
        assert locks.state(engine, name)["holder"] == wins[0]


def test_expired_lock_is_taken_over_and_only_the_holder_releases(app):
    from manager.extensions import db

    with app.app_context():
        engine = db.engine
    now = datetime(2026, 1, 1, 3, 0)
    assert locks.acquire(engine, "job", "a", ttl=timedelta(minutes=10), now=now)
    assert not locks.acquire(engine, "job", "b", ttl=timedelta(minutes=10), now=now)
    assert not locks.release(engine, "job", "b")
    later = now + timedelta(minutes=11)  # "a" crashed without releasing
    assert locks.acquire(engine, "job", "b", ttl=timedelta(minutes=10), now=later)
    assert not locks.release(engine, "job", "a")
    assert locks.release(engine, "job", "b", period="p1")
    assert not locks.acquire(engine, "job", "c", ttl=timedelta(minutes=1), period="p1")
    assert locks.acquire(engine, "job", "c", ttl=timedelta(minutes=1), period="p2")


def test_schedule_helpers():
    at = retention.parse_time_of_day("03:00")
    assert retention.next_run(datetime(2026, 1, 1, 2, 59), at) == datetime(2026, 1, 1, 3, 0)
    assert retention.next_run(datetime(2026, 1, 1, 3, 0), at) == datetime(2026, 1, 2, 3, 0)
    for bad in ("3", "25:00", "aa:bb", ""):
        with pytest.raises(ValueError):
            retention.parse_time_of_day(bad)


def test_daily_thread_catches_up_at_start(world):
    from manager.extensions import db

    stale = aged(world, "vera", 30)
    world.app.config["SM_RETENTION_TIME"] = "00:00"  # already past: runs at start
    jobs = retention.start_daily_jobs(world.app)
    assert jobs is not None
    try:
        deadline = time.monotonic() + 20
        while world.exists(stale) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert not world.exists(stale)
    with world.app.app_context():
        assert locks.state(db.engine, retention.JOB_NAME)["last_period"] == date.today().isoformat()
    world.app.config["SM_RETENTION_TIME"] = ""
    assert retention.start_daily_jobs(world.app) is None


def test_admin_can_see_and_run_the_job(world, api):
    stale = aged(world, "vera", 30)
    root = api("root")
    state = root.get("/api/admin/logs/retention").get_json()
    assert state["retention_days"] == {"viewer": 7, "operator": 30, "developer": 90, "admin": 365}
    ran = root.post("/api/admin/logs/retention/run")
    assert ran.status_code == 200 and ran.get_json()["deleted"] == 1
    assert not world.exists(stale)
    assert audit_actions(world.app, "logs_retention_run")[0]["admin"]
    assert api("olga").post("/api/admin/logs/retention/run").status_code == 403
