"""A schedule fires a real session on the Docker engine, as its owner, marked 'scheduled'."""

from __future__ import annotations

import time

import pytest

from tests.sessions.conftest import backend, docker_client, env_image  # noqa: F401
from tests.support.catalog import script_id, tick

pytestmark = pytest.mark.docker


def test_a_schedule_fires_a_real_session(app_config, backend, env_image, request):  # noqa: F811
    from manager.catalog_app import run_discovery
    from manager.extensions import db
    from manager.models import Execution, Schedule
    from manager.schedules.runner import tick as fire_due
    from tests.sessions.session_support import TEST_INSTANCE

    app_config.update(SM_TEST_BACKEND=backend, SM_INSTANCE=TEST_INSTANCE)
    app = request.getfixturevalue("app")  # after the backend is set: it builds the app
    make_user, api = request.getfixturevalue("make_user"), request.getfixturevalue("api")
    run_discovery(app)
    make_user("sam", "operator")
    sam = api("sam")
    project = sam.get("/api/projects/active").get_json()["project"]["id"]
    body = {"script_id": script_id(app, "progress_demo.py"), "project_id": project,
            "cron": "* * * * *", "parameters": {"steps": 3, "delay": 0}}  # fmt: skip
    created = sam.post("/api/schedules", json=body)
    assert created.status_code == 201, created.get_json()
    with app.app_context():
        slot = db.session.get(Schedule, created.get_json()["id"]).next_run_at
        fired = fire_due(db.session, app.extensions["sm_sessions"].service, now=slot)
        db.session.remove()
    assert [f.status for f in fired] == ["started"], fired
    run_id = fired[0].execution_id
    deadline = time.monotonic() + 90
    while sam.get(f"/api/executions/{run_id}").get_json()["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, "the scheduled run never ended"
        tick(app)
        time.sleep(0.2)
    run = sam.get(f"/api/executions/{run_id}").get_json()
    assert run["status"] == "completed" and run["exit_code"] == 0, run
    with app.app_context():
        execution = db.session.query(Execution).filter_by(execution_uuid=run_id).one()
        assert execution.tags == "scheduled" and execution.user_id == run["user_id"]
        assert "Step 3/3" in (execution.output or "") or "3/3" in (execution.output or "")
        assert "started by schedule" in (execution.debug_output or "")
    listed = sam.get("/api/logs/execution").get_json()
    rows = listed.get("items") or listed.get("executions") or []
    assert [r["scheduled"] for r in rows if r["execution_id"] == run_id] == [True]
