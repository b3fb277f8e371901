"""The scheduler's decisions with an injected clock: when a schedule fires, how often, as whom."""

from __future__ import annotations

from datetime import timedelta

from manager.logs import locks


def _schedule(api, world, cron="*/5 * * * *", **extra):
    client = api("operator")
    project = client.get("/api/projects/active").get_json()["project"]["id"]
    body = {"script_id": world["scripts"]["progress_demo.py"], "project_id": project, "cron": cron,
            "parameters": {"steps": 1, "delay": 0}, **extra}  # fmt: skip
    created = client.post("/api/schedules", json=body)
    assert created.status_code == 201, created.get_json()
    return client, created.get_json()["id"]


def _tick(app, now, holder="process-a"):
    from manager.extensions import db
    from manager.schedules.runner import tick

    with app.app_context():
        try:
            return tick(db.session, app.extensions["sm_sessions"].service, now=now, holder=holder)
        finally:
            db.session.remove()


def _slot(app, schedule_id):
    from manager.extensions import db
    from manager.models import Schedule

    with app.app_context():
        return db.session.get(Schedule, schedule_id).next_run_at


def test_fires_at_its_time_once_and_is_in_the_history(world, api, app):
    client, sid = _schedule(api, world)
    slot = _slot(app, sid)
    assert _tick(app, slot - timedelta(seconds=1)) == []
    fired = _tick(app, slot)
    assert [(f.schedule_id, f.status) for f in fired] == [(sid, "started")]
    assert _tick(app, slot) == []  # the same slot never fires twice
    assert _slot(app, sid) == slot + timedelta(minutes=5)
    view = client.get(f"/api/schedules/{sid}").get_json()
    assert view["last_status"] == "started" and view["run_count"] == 1
    assert view["last_execution_id"] == fired[0].execution_id
    runs = client.get("/api/logs/execution").get_json()
    listed = runs.get("items") or runs.get("executions") or []
    assert [r["scheduled"] for r in listed if r["execution_id"] == fired[0].execution_id] == [True]
    recent = client.get("/api/user/recent-scripts").get_json()["recent"]
    assert recent[0]["scheduled"] is True
    page = client.get(f"/logs/{fired[0].execution_id}").get_data(as_text=True)
    assert 'data-sm="run-scheduled"' in page


def test_after_downtime_a_missed_schedule_fires_once(world, api, app):
    _, sid = _schedule(api, world)
    slot = _slot(app, sid)
    later = slot + timedelta(hours=3, minutes=2)  # 36 slots missed
    fired = _tick(app, later)
    assert [f.status for f in fired] == ["started"]
    assert _slot(app, sid) == slot + timedelta(hours=3, minutes=5)
    assert _tick(app, later + timedelta(seconds=30)) == []


def test_one_process_at_a_time(world, api, app):
    from manager.extensions import db
    from manager.models import Schedule
    from manager.schedules.runner import claim

    _, sid = _schedule(api, world)
    slot = _slot(app, sid)
    with app.app_context():
        assert locks.acquire(
            db.engine, "scheduler", "process-b", ttl=timedelta(minutes=10), now=slot
        )
    assert _tick(app, slot, holder="process-a") is None  # b holds the lock: a does nothing
    with app.app_context():
        locks.release(db.engine, "scheduler", "process-b")
    # two processes that both loaded the schedule as due: only the first claim of the slot wins
    from sqlalchemy.orm import Session

    with app.app_context(), Session(db.engine) as one, Session(db.engine) as two:
        mine, theirs = one.get(Schedule, sid), two.get(Schedule, sid)
        assert claim(one, mine, slot) is True
        assert claim(two, theirs, slot) is False


def test_checks_of_a_manual_run_apply_when_it_fires(world, api, app):
    from manager.extensions import db
    from manager.models import User

    client, sid = _schedule(api, world)
    slot = _slot(app, sid)
    with app.app_context():
        db.session.get(User, world["users"]["operator"]).user_level = "viewer"
        db.session.commit()
    fired = _tick(app, slot)
    assert fired[0].status == "refused" and "not available" in fired[0].message
    with app.app_context():
        user = db.session.get(User, world["users"]["operator"])
        user.user_level = "operator"
        user.is_active = False
        db.session.commit()
    fired = _tick(app, slot + timedelta(minutes=5))
    assert fired[0].status == "paused"
    with app.app_context():
        from manager.models import Schedule

        schedule = db.session.get(Schedule, sid)
        assert schedule.enabled is False and "deactivated" in schedule.paused_reason
    assert _tick(app, slot + timedelta(hours=1)) == []  # paused: nothing fires


def test_time_zone_and_daylight_saving():
    from datetime import datetime

    from manager.schedules.service import next_times

    # 02:30 every day in Madrid, across the spring change (2027-03-28 has no 02:30)
    times = next_times("30 2 * * *", "Europe/Madrid", datetime(2027, 3, 26, 12, 0), 3)
    assert times[0] == datetime(2027, 3, 27, 1, 30)  # CET: UTC+1
    assert times[-1] == datetime(2027, 3, 29, 0, 30)  # CEST: UTC+2
    assert next_times("0 9 * * *", "UTC", datetime(2027, 1, 1, 9, 0), 1) == [
        datetime(2027, 1, 2, 9, 0)
    ]


def test_the_background_loop_ticks_with_its_clock(world, api, app):
    from manager.schedules.runner import Scheduler, start_scheduler

    _, sid = _schedule(api, world)
    slot = _slot(app, sid)
    scheduler = Scheduler(app, interval=3600, clock=lambda: slot)
    assert [f.status for f in scheduler.run_once()] == ["started"]
    assert scheduler.run_once() == []
    app.config["SM_SCHEDULER_INTERVAL"] = 0
    assert start_scheduler(app) is None  # 0 turns scheduled runs off
