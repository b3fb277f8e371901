"""Session lifecycle through the API on the in-memory FakeBackend.

The FakeBackend stands in for the container engine so that quotas, states, timeouts, reuse and
re-adoption can be driven step by step; tests/sessions/ runs the same contract on real Docker.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from manager.models import Execution, utcnow
from manager.sessions.fake import FakeBackend, FakeScript
from tests.support.catalog import script_id, tick


def execution(app, execution_id: str) -> Execution:
    from manager.extensions import db

    with app.app_context():
        row = db.session.execute(
            select(Execution).where(Execution.execution_uuid == execution_id)
        ).scalar_one()
        db.session.expunge(row)
        return row


def container(fake: FakeBackend, run_id: str):
    return next(s for s in fake.sessions.values() if s.spec.execution_uuid == run_id)


@pytest.fixture
def olga(ready_app, make_user, api):
    make_user("olga", "operator")
    return api("olga")


def test_batch_run_completes_with_output(ready_app, olga, fake):
    sid = script_id(ready_app, "unit_converter.py")
    started = olga.post(f"/api/scripts/{sid}/execute", json={"parameters": {}})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert body["status"] == "running" and body["proxy_url"] is None
    run_id = body["execution_id"]
    tick(ready_app)
    done = olga.get(f"/api/executions/{run_id}").get_json()
    assert done["status"] == "completed" and done["exit_code"] == 0
    row = execution(ready_app, run_id)
    assert row.output == "hello\n" and "warn" in row.error_output
    assert "ended: completed" in row.debug_output
    status = olga.get(f"/api/scripts/{sid}/status?execution_id={run_id}").get_json()
    assert status["execution_id"] == run_id
    assert container(fake, run_id).removed  # the reaper removed the container


def test_parameters_are_validated_with_per_field_messages(ready_app, olga, fake):
    sid = script_id(ready_app, "csv_summary.py")
    bad = olga.post(
        f"/api/scripts/{sid}/execute", json={"parameters": {"delimiter": "pipe", "nonsense": 1}}
    )
    assert bad.status_code == 400
    errors = bad.get_json()["errors"]
    assert "delimiter" in errors and "nonsense" in errors
    assert not fake.started


def test_parameters_arrive_typed_and_secrets_are_masked(ready_app, olga, fake, app_config):
    sid = script_id(ready_app, "csv_summary.py")
    started = olga.post(f"/api/scripts/{sid}/execute", json={"parameters": {}})
    assert started.status_code == 201, started.get_json()
    spec = fake.started[-1]
    context_mount = next(m for m in spec.mounts if m.target == "/run/sm/context.json")
    context = json.loads(Path(context_mount.source).read_text())
    assert context["environment"]["USER_LEVEL"] == "operator"
    assert context["environment"]["PROJECT_NAME"] == "project_default"
    assert any(isinstance(v, (int, float, bool, list)) for v in context["parameters"].values())
    workspace = next(m for m in spec.mounts if m.target == "/workspace")
    # Keyed by ids: a user re-created under the same name never sees the old one's files.
    ids = f"{context['environment']['USER_ID']}/{context['environment']['PROJECT_ID']}"
    assert workspace.source.endswith(f"script_groups/data_processing/{ids}")
    assert Path(workspace.source).is_dir()
    assert not any(m.source.startswith("/var/run/docker") for m in spec.mounts)


def test_viewer_cannot_run_and_hidden_scripts_are_not_found(ready_app, make_user, api):
    make_user("vera", "viewer")
    viewer = api("vera")
    sid = script_id(ready_app, "unit_converter.py")
    refused = viewer.post(f"/api/scripts/{sid}/execute", json={})
    assert refused.status_code in (403, 404)
    make_user("olga", "operator")
    admin_only = script_id(ready_app, "workspace_cleanup.py")
    assert api("olga").post(f"/api/scripts/{admin_only}/execute", json={}).status_code == 404


def test_interactive_session_starts_is_reused_and_resolves(ready_app, olga, make_user, api):
    fake = ready_app.config["SM_TEST_BACKEND"]
    fake.program = FakeScript(exit_code=None, start_polls=1)
    sid = script_id(ready_app, "calculator.py")
    first = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert first.status_code == 201
    body = first.get_json()
    assert body["status"] == "starting" and "/project/" in body["proxy_url"]
    resolver = ready_app.extensions["sm_proxy_resolver"]
    found = re.search(r"/project/(\d+)/script/(\d+)/user/(\d+)/", body["proxy_url"])
    project_id, script, user_id = found.groups()
    ids = {"project_id": int(project_id), "script_id": int(script), "url_user_id": int(user_id)}
    from manager.proxy.resolver import ProxyDenied, ProxyUnavailable

    with pytest.raises(ProxyUnavailable) as starting:
        resolver.resolve(user_id=int(user_id), is_admin=False, **ids)
    assert starting.value.status == 503
    tick(ready_app)  # address not ready yet
    tick(ready_app)  # ready
    assert olga.get(f"/api/executions/{body['execution_id']}").get_json()["status"] == "running"
    target = resolver.resolve(user_id=int(user_id), is_admin=False, **ids)
    assert target.session_key == body["execution_id"]
    with pytest.raises(ProxyDenied) as foreign:
        resolver.resolve(user_id=int(user_id) + 1, is_admin=False, **ids)
    assert foreign.value.status == 403
    assert resolver.resolve(user_id=999, is_admin=True, **ids).port == 8080
    again = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert again.status_code == 200 and again.get_json()["reused"] is True
    assert again.get_json()["execution_id"] == body["execution_id"]
    proxies = olga.get("/api/active-proxies").get_json()["sessions"]
    assert [p["execution_id"] for p in proxies] == [body["execution_id"]]
    assert olga.get(f"/api/scripts/{sid}/proxy-url").get_json()["proxy_url"] == body["proxy_url"]
    assert olga.post(f"/api/scripts/{sid}/proxy-cleanup", json={}).status_code == 200
    tick(ready_app)
    assert olga.get(f"/api/executions/{body['execution_id']}").get_json()["status"] == "terminated"
    with pytest.raises(ProxyUnavailable) as gone:
        resolver.resolve(user_id=int(user_id), is_admin=False, **ids)
    assert gone.value.status == 502


def test_per_user_quota_gives_429_naming_the_limit(ready_app, olga, fake):
    ready_app.extensions["sm_sessions"].service.config.__dict__["max_per_user"] = 1
    fake.program = FakeScript(exit_code=0, run_polls=100)
    sid = script_id(ready_app, "unit_converter.py")
    assert olga.post(f"/api/scripts/{sid}/execute", json={}).status_code == 201
    over = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert over.status_code == 429
    assert over.get_json()["limit"] == "max_sessions_per_user_global"
    assert "SM_MAX_SESSIONS_PER_USER" in over.get_json()["message"]


def test_global_cap_gives_429(ready_app, olga, make_user, api, fake):
    ready_app.extensions["sm_sessions"].service.config.__dict__["max_concurrent"] = 1
    fake.program = FakeScript(exit_code=0, run_polls=100)
    sid = script_id(ready_app, "unit_converter.py")
    assert olga.post(f"/api/scripts/{sid}/execute", json={}).status_code == 201
    make_user("ivan", "operator")
    over = api("ivan").post(f"/api/scripts/{sid}/execute", json={})
    assert over.status_code == 429 and "SM_MAX_CONCURRENT_SESSIONS" in over.get_json()["message"]


def test_stop_run_timeout_idle_timeout_oom_and_lost(ready_app, olga, fake):
    sid = script_id(ready_app, "unit_converter.py")
    fake.program = FakeScript(exit_code=0, run_polls=1000)

    def start() -> str:
        response = olga.post(f"/api/scripts/{sid}/execute", json={})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["execution_id"]

    stopped = start()
    assert olga.post(f"/api/scripts/{sid}/stop", json={"execution_id": stopped}).status_code == 200
    tick(ready_app)
    assert execution(ready_app, stopped).status == "terminated"

    slow = start()
    tick(ready_app, clock=lambda: utcnow() + timedelta(hours=5))
    tick(ready_app)
    row = execution(ready_app, slow)
    assert row.status == "timed_out" and row.timed_out and "run timeout" in row.debug_output

    balloon = start()
    fake.finish(balloon, oom=True)
    tick(ready_app, clock=utcnow)
    row = execution(ready_app, balloon)
    assert row.status == "killed" and row.oom_killed and "out of memory" in row.debug_output

    vanished = start()
    fake.lose(vanished)
    tick(ready_app)
    assert execution(ready_app, vanished).status == "lost"


def test_idle_interactive_session_times_out(ready_app, olga, fake):
    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    run_id = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)
    ready_app.extensions["sm_proxy_resolver"].touch(run_id)
    tick(ready_app, clock=lambda: utcnow() + timedelta(minutes=10))
    assert execution(ready_app, run_id).status == "running"  # recent activity
    tick(ready_app, clock=lambda: utcnow() + timedelta(hours=1))
    tick(ready_app)
    row = execution(ready_app, run_id)
    assert row.status == "timed_out" and "idle" in row.debug_output


def test_missing_image_fails_at_once_with_a_clear_message(ready_app, olga, fake):
    service = ready_app.extensions["sm_sessions"].service
    fake.missing_images.add(service.image_for("base"))
    sid = script_id(ready_app, "unit_converter.py")
    response = olga.post(f"/api/scripts/{sid}/execute", json={})
    assert response.status_code == 503
    body = response.get_json()
    assert "not built" in body["message"] and body["state"] == "failed"
    detail = olga.get(f"/api/executions/{body['execution_id']}").get_json()
    assert detail["status"] == "failed"


def test_restarted_manager_readopts_and_reaps_orphans(ready_app, olga, fake, app_config):
    from manager import create_app
    from manager.sessions.backend import SessionSpec

    fake.program = FakeScript(exit_code=None)
    sid = script_id(ready_app, "calculator.py")
    run_id = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)
    orphan = SessionSpec(
        name="sm-session-orphan",
        image="x",
        execution_uuid="orphan-uuid",
        labels={},
        mounts=(),
        environment={},
    )
    fake.start(orphan)
    restarted = create_app(app_config)  # same database, same engine: a new manager process
    restarted.extensions["sm_sessions"].monitor.health_check = lambda host, port: True
    tick(restarted)
    assert execution(restarted, run_id).status == "running"
    assert not container(fake, run_id).removed
    assert fake.sessions["sm-session-orphan"].removed
    snapshot = json.loads(
        (Path(app_config["SM_DATA_DIR"]) / "system" / "active_sessions.json").read_text()
    )
    assert [s["execution_id"] for s in snapshot["sessions"]] == [run_id]


def test_execute_without_project_uses_the_active_one(ready_app, olga):
    sid = script_id(ready_app, "unit_converter.py")
    project = olga.post("/api/projects", json={"project_name": "alpha"}).get_json()["project"]
    olga.post(f"/api/projects/{project['id']}/set-active")
    body = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()
    assert body["project_id"] == project["id"]
    other = olga.post(f"/api/scripts/{sid}/execute", json={"project_id": 424242})
    assert other.status_code == 404


def test_admin_edits_group_limits_and_they_apply(ready_app, make_user, api, fake):
    from manager.extensions import db
    from manager.models import AuditEvent, ScriptGroup

    make_user("root", "admin")
    admin = api("root")
    with ready_app.app_context():
        gid = db.session.execute(
            select(ScriptGroup.id).where(ScriptGroup.directory_path == "data_processing")
        ).scalar_one()
    bad = admin.put(f"/api/script-groups/{gid}/limits", json={"memory": "12x"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "memory"
    good = admin.put(f"/api/script-groups/{gid}/limits", json={"memory": "300m", "pids": 64})
    assert good.status_code == 200, good.get_json()
    assert good.get_json()["effective"]["memory"] == "300m"
    make_user("olga", "operator")
    assert api("olga").put(f"/api/script-groups/{gid}/limits", json={}).status_code == 403
    sid = script_id(ready_app, "unit_converter.py")
    assert api("olga").post(f"/api/scripts/{sid}/execute", json={}).status_code == 201
    assert fake.started[-1].memory == "300m" and fake.started[-1].pids == 64
    with ready_app.app_context():
        assert (
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "group_limits_updated")
            ).scalar()
            is not None
        )


def test_peak_memory_is_sampled_and_reported(ready_app, olga, fake):
    fake.program = FakeScript(exit_code=0, run_polls=2, memory_bytes=80 * 2**20)
    sid = script_id(ready_app, "unit_converter.py")
    run_id = olga.post(f"/api/scripts/{sid}/execute", json={}).get_json()["execution_id"]
    tick(ready_app)  # running: sampled
    tick(ready_app)
    tick(ready_app)  # ended
    row = execution(ready_app, run_id)
    assert row.status == "completed"
    assert row.peak_memory_bytes == 80 * 2**20
    assert "peak memory 80.0 MiB" in row.debug_output
