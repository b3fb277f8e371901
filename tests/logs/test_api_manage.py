"""Deleting my logs (one, bulk, cleanup), statistics with storage quota, filter presets."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from manager.models import utcnow
from tests.logs.test_api_support import World, audit_actions, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


def test_delete_my_run_removes_row_and_file(world, api):
    run = world.run("olga", output="hello\nworld")
    path = world.file_of(run)
    assert path.is_file()
    olga = api("olga")
    response = olga.delete(f"/api/logs/execution/{run}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["deleted"] == 1 and body["files_removed"] == 1 and body["bytes_freed"] > 0
    assert not path.exists() and not path.parent.exists()  # the empty day folder goes too
    assert not world.exists(run)
    assert olga.get(f"/api/logs/execution/{run}").status_code == 404
    assert audit_actions(world.app, "log_deleted")[0]["target"] == f"execution:{run}"


def test_a_running_run_cannot_be_deleted(world, api):
    run = world.run("olga", status="running")
    response = api("olga").delete(f"/api/logs/execution/{run}")
    assert response.status_code == 409 and "running" in response.get_json()["message"]
    assert world.exists(run)


def test_delete_keeps_the_session_row_without_its_link(world, api):
    from manager.extensions import db
    from manager.models import Execution, ScriptProcess

    run = world.run("olga")
    with world.app.app_context():
        execution = db.session.query(Execution).filter_by(execution_uuid=run).one()
        db.session.add(
            ScriptProcess(
                script_id=execution.script_id,
                user_id=execution.user_id,
                execution_id=execution.id,
                status="completed",
            )
        )
        db.session.commit()
    assert api("olga").delete(f"/api/logs/execution/{run}").status_code == 200
    with world.app.app_context():
        assert db.session.query(ScriptProcess).one().execution_id is None


def test_bulk_delete_skips_running_and_foreign(world, api):
    done = [world.run("olga"), world.run("olga", with_file=False)]
    live = world.run("olga", status="running")
    foreign = world.run("ivan")
    response = api("olga").post(
        "/api/logs/bulk",
        json={"action": "delete", "execution_ids": [*done, live, foreign, "nope"]},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert sorted(body["execution_ids"]) == sorted(done) and body["deleted"] == 2
    assert body["skipped"] == [{"execution_id": live, "reason": "running"}]
    assert body["not_found"] == [foreign, "nope"]
    assert world.exists(live) and world.exists(foreign)
    assert not any(world.exists(r) for r in done)


def test_bulk_input_is_checked(world, api):
    olga = api("olga")
    for payload in (
        {"action": "explode", "execution_ids": ["a"]},
        {"action": "delete", "execution_ids": []},
        {"action": "delete", "execution_ids": "abc"},
        {"action": "delete", "execution_ids": [1, 2]},
        {"action": "delete", "execution_ids": ["a"] * 501},
        {"action": "export", "execution_ids": ["a"], "format": "pdf"},
    ):
        response = olga.post("/api/logs/bulk", json=payload)
        assert response.status_code in (400, 404), payload
        assert response.get_json()["message"]
    assert olga.post("/api/logs/bulk", data="x", content_type="text/plain").status_code == 400


def test_cleanup_applies_my_retention_and_optional_age(world, api):
    now = utcnow()
    old = world.run("olga", start=now - timedelta(days=40))  # operator keeps 30 days
    recent = world.run("olga", start=now - timedelta(days=10))
    fresh = world.run("olga", start=now - timedelta(hours=1))
    running_old = world.run("olga", status="running", start=now - timedelta(days=50))
    others_old = world.run("ivan", start=now - timedelta(days=40))
    olga = api("olga")
    body = olga.post("/api/logs/cleanup").get_json()
    assert body["execution_ids"] == [old] and body["retention_days"] == 30
    assert world.exists(others_old) and world.exists(running_old)
    body = olga.post("/api/logs/cleanup", json={"older_than_days": 7}).get_json()
    assert body["execution_ids"] == [recent]
    assert world.exists(fresh)
    assert olga.post("/api/logs/cleanup", json={"older_than_days": -1}).status_code == 400
    assert olga.post("/api/logs/cleanup", json={"older_than_days": "x"}).status_code == 400
    assert len(audit_actions(world.app, "logs_cleanup")) == 2


def test_stats(world, api):
    now = utcnow()
    # Today's runs start today even just after midnight (the default, ten minutes ago, is
    # yesterday then, and the trend counts runs by the day they started).
    today = max(now - timedelta(minutes=10), datetime.combine(now.date(), time.min))
    world.run("olga", script="report", duration=10, output="done", start=today)
    world.run("olga", script="report", duration=20, start=now - timedelta(days=2))
    world.run("olga", script="cleanup", duration=30, status="failed", project="olga_alpha",
              start=today)  # fmt: skip
    world.run("olga", script="report", status="running", start=today)
    world.run("ivan", script="cleanup", duration=99, start=today)
    body = api("olga").get("/api/logs/stats?days=7").get_json()
    assert body["total_runs"] == 4 and body["live_runs"] == 1
    assert body["by_status"] == {"completed": 2, "failed": 1, "running": 1}
    assert body["success_rate"] == round(2 / 3, 4)
    assert body["average_duration_seconds"] == 20.0
    assert body["most_used_scripts"][0] == {
        "script_id": world.scripts["report"],
        "script_name": "Monthly report",
        "runs": 3,
    }
    assert [p["project_name"] for p in body["most_used_projects"]] == [
        "project_default",
        "project_alpha",
    ]
    trend = body["trend"]
    assert len(trend) == 7 and trend[-1]["date"] == now.date().isoformat()
    assert sum(day["runs"] for day in trend) == 4
    assert trend[-3]["runs"] == 1 and trend[-1]["failed"] == 1
    assert body["retention_days"] == 30
    assert body["storage"]["used_bytes"] > 0 and body["storage"]["warning"] is False
    assert api("olga").get("/api/logs/stats?days=0").status_code == 400


def test_storage_quota_warns_near_the_limit(world, api):
    world.app.config["SM_LOG_QUOTA_MB"] = 1
    olga = api("olga")
    world.run("olga", output="x" * 200_000, with_file=False)
    storage = olga.get("/api/logs/stats").get_json()["storage"]
    assert storage["quota_bytes"] == 1024 * 1024 and not storage["warning"]
    big = world.run("olga", output="y" * 350_000)  # the row and the file: 700 KB more
    storage = olga.get("/api/logs/stats").get_json()["storage"]
    assert storage["warning"] and not storage["exceeded"]
    assert storage["file_bytes"] > 350_000 and "%" in storage["message"]
    world.run("olga", output="z" * 200_000, with_file=False)
    body = olga.get("/api/logs/stats").get_json()
    assert body["storage"]["exceeded"] and "delete old runs" in body["storage"]["message"]
    assert body["largest_runs"][0]["execution_id"] == big


def test_presets_save_list_replace_delete(world, api):
    olga = api("olga")
    filters = {"status": "failed", "script_id": world.scripts["cleanup"], "q": "disk full"}
    created = olga.post("/api/logs/presets", json={"name": "Failed cleanups", "filters": filters})
    assert created.status_code == 201
    preset = created.get_json()["preset"]
    assert preset["filters"] == filters
    replaced = olga.post(
        "/api/logs/presets", json={"name": "Failed cleanups", "filters": {"status": "failed"}}
    )
    assert replaced.status_code == 200 and replaced.get_json()["preset"]["id"] == preset["id"]
    olga.post("/api/logs/presets", json={"name": "A first", "filters": {}})
    listed = olga.get("/api/logs/presets").get_json()["presets"]
    assert [p["name"] for p in listed] == ["A first", "Failed cleanups"]
    assert api("ivan").get("/api/logs/presets").get_json()["presets"] == []
    assert api("ivan").delete(f"/api/logs/presets/{preset['id']}").status_code == 404
    assert olga.delete(f"/api/logs/presets/{preset['id']}").status_code == 200
    assert len(olga.get("/api/logs/presets").get_json()["presets"]) == 1


def test_presets_refuse_bad_filters(world, api):
    olga = api("olga")
    for payload in (
        {"name": "", "filters": {}},
        {"name": "x" * 101, "filters": {}},
        {"name": "bad", "filters": {"colour": "red"}},
        {"name": "bad", "filters": {"status": "exploded"}},
        {"name": "bad", "filters": {"user_id": 3}},
        {"name": "bad", "filters": "status=failed"},
        {"name": "bad", "filters": {"q": {"nested": 1}}},
    ):
        response = olga.post("/api/logs/presets", json=payload)
        assert response.status_code == 400, payload
        assert response.get_json()["message"]
