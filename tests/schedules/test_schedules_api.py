"""Schedules over the API: create, list with next fire times, edit, pause, delete, refusals."""

from __future__ import annotations

from datetime import datetime


def _project(client) -> int:
    return client.get("/api/projects/active").get_json()["project"]["id"]


def _create(client, world, **extra):
    body = {
        "script_id": world["scripts"]["progress_demo.py"],
        "project_id": extra.pop("project_id", None) or _project(client),
        "cron": "30 6 * * 1-5",
        "timezone": "Europe/Madrid",
        "parameters": {"steps": 2, "delay": 0},
        **extra,
    }
    return client.post("/api/schedules", json=body)


def test_create_list_and_next_fire_times(world, api):
    client = api("operator")
    created = _create(client, world, name="morning")
    assert created.status_code == 201, created.get_json()
    schedule = created.get_json()
    assert schedule["enabled"] and len(schedule["next_runs"]) == 3
    # 06:30 in Madrid is 04:30 or 05:30 UTC depending on the season, on a weekday
    first = datetime.fromisoformat(schedule["next_runs"][0].rstrip("Z"))
    assert (first.hour, first.minute) in ((4, 30), (5, 30)) and first.weekday() < 5
    assert schedule["next_runs_local"][0].endswith(("CET", "CEST"))
    listed = client.get("/api/schedules").get_json()["schedules"]
    assert [s["name"] for s in listed] == ["morning"]
    assert api("developer").get("/api/schedules").get_json()["schedules"] == []
    page = client.get("/schedules").get_data(as_text=True)
    assert 'data-sm="schedule-row"' in page and "30 6 * * 1-5" in page


def test_edit_pause_resume_delete(world, api):
    client = api("operator")
    sid = _create(client, world).get_json()["id"]
    paused = client.put(f"/api/schedules/{sid}", json={"enabled": False}).get_json()
    assert paused["enabled"] is False and paused["next_runs"] == []
    resumed = client.put(f"/api/schedules/{sid}", json={"enabled": True}).get_json()
    assert resumed["enabled"] and resumed["next_runs"]
    edited = client.put(f"/api/schedules/{sid}", json={"cron": "0 0 1 * *", "timezone": "UTC"})
    assert edited.get_json()["next_runs"][0].endswith("T00:00:00Z")
    assert client.delete(f"/api/schedules/{sid}").status_code == 200
    assert client.get(f"/api/schedules/{sid}").status_code == 404


def test_bad_input_gets_a_readable_4xx(world, api):
    client = api("operator")
    cases = [
        ({"cron": "61 * * * *"}, 400, "not a valid cron expression"),
        ({"cron": "* * * *"}, 400, "has 4 fields"),
        ({"cron": "0 0 * * * *"}, 400, "has 6 fields"),
        ({"cron": ""}, 400, "Give a cron expression"),
        ({"cron": "0 0 30 2 *"}, 400, "never fires"),
        ({"timezone": "Mars/Olympus"}, 400, "Unknown time zone"),
        ({"name": "x" * 101}, 400, "name of 1 to 100"),
        ({"parameters": {"steps": 0}}, 400, "steps"),
        ({"parameters": {"nope": 1}}, 400, "nope"),
        ({"project_id": 999999}, 404, "no project"),
        ({"preset_id": 999999}, 404, "No preset"),
        ({"preset_id": "abc"}, 400, "whole number"),
        ({"script_id": "x"}, 400, "script_id"),
    ]
    for extra, status, message in cases:
        response = _create(client, world, **extra)
        assert response.status_code == status, (extra, response.get_json())
        assert message in response.get_json()["message"], extra
    sid = _create(client, world).get_json()["id"]
    for body, message in [({}, "Send one or more"), ({"enabled": "no"}, "true or false")]:
        response = client.put(f"/api/schedules/{sid}", json=body)
        assert response.status_code == 400 and message in response.get_json()["message"]


def test_what_cannot_be_scheduled(world, api):
    client = api("operator")
    secret = _create(
        client, world, script_id=world["scripts"]["secret_upload.py"], parameters={"target": "a"}
    )
    assert secret.status_code == 201  # its secret is optional
    interactive = _create(client, world, script_id=world["scripts"]["calculator.py"], parameters={})
    assert (
        interactive.status_code == 400 and "only batch scripts" in interactive.get_json()["message"]
    )


def test_a_required_secret_cannot_be_scheduled(world, api, app, groups_dir):
    from manager.catalog_app import run_discovery
    from manager.extensions import db
    from manager.models import Script

    path = groups_dir / "data_processing" / "secret_upload.py"
    path.write_text(
        path.read_text().replace('"type": "secret"}', '"type": "secret", "required": true}')
    )
    run_discovery(app)
    with app.app_context():
        sid = db.session.query(Script).filter_by(filename="secret_upload.py").one().id
    response = _create(api("operator"), world, script_id=sid, parameters={"target": "a"})
    assert (
        response.status_code == 400 and "cannot run on a schedule" in response.get_json()["message"]
    )


def test_schedules_per_user_limit(world, api, app):
    app.config["SM_MAX_SCHEDULES_PER_USER"] = 2
    client = api("operator")
    assert _create(client, world).status_code == 201
    assert _create(client, world).status_code == 201
    third = _create(client, world)
    assert third.status_code == 409 and "SM_MAX_SCHEDULES_PER_USER=2" in third.get_json()["message"]


def test_with_a_preset(world, api):
    client = api("operator")
    sid = world["scripts"]["progress_demo.py"]
    preset = client.post(
        f"/api/scripts/{sid}/presets", json={"name": "p", "parameters": {"steps": 3}}
    )
    created = _create(client, world, preset_id=preset.get_json()["id"], parameters=None)
    assert created.status_code == 201 and created.get_json()["preset_id"] == preset.get_json()["id"]
    other = client.post(
        f"/api/scripts/{world['scripts']['unit_converter.py']}/presets", json={"name": "u"}
    )
    wrong = _create(client, world, preset_id=other.get_json()["id"])
    assert wrong.status_code == 400 and "another script" in wrong.get_json()["message"]


def test_roles_and_ownership(world, api):
    owner = api("operator")
    sid = _create(owner, world).get_json()["id"]
    viewer = api("viewer")
    assert viewer.post("/api/schedules", json={}).status_code == 403
    assert viewer.get("/schedules").status_code == 403
    other = api("developer")
    assert other.get(f"/api/schedules/{sid}").status_code == 404
    assert other.put(f"/api/schedules/{sid}", json={"enabled": False}).status_code == 404
    assert other.delete(f"/api/schedules/{sid}").status_code == 404
    admin = api("admin")
    assert [s["id"] for s in admin.get("/api/schedules?all=1").get_json()["schedules"]] == [sid]
    assert api().get("/api/schedules").status_code == 401
    too_high = _create(owner, world, script_id=world["scripts"]["system_report.py"], parameters={})
    assert too_high.status_code == 404
