"""Parameter presets: save, list, share (developer+), run, edit, delete; secrets never stored."""

from __future__ import annotations

from sqlalchemy import select


def _save(client, sid, name="nightly", **extra):
    body = {"name": name, "parameters": {"value": 12.5, "precision": 2}, **extra}
    return client.post(f"/api/scripts/{sid}/presets", json=body)


def test_save_list_edit_delete(world, api):
    client = api("operator")
    sid = world["scripts"]["unit_converter.py"]
    created = _save(client, sid)
    assert created.status_code == 201, created.get_json()
    preset = created.get_json()
    assert preset["parameters"] == {"value": 12.5, "precision": 2} and preset["mine"]
    listed = client.get(f"/api/scripts/{sid}/presets").get_json()["presets"]
    assert [p["name"] for p in listed] == ["nightly"]
    changed = client.put(
        f"/api/presets/{preset['id']}", json={"name": "weekly", "parameters": {"precision": 4}}
    )
    assert changed.status_code == 200 and changed.get_json()["parameters"] == {"precision": 4}
    assert _save(client, sid, name="WEEKLY").status_code == 409  # same name, any case
    assert client.delete(f"/api/presets/{preset['id']}").status_code == 200
    assert client.get(f"/api/scripts/{sid}/presets").get_json()["presets"] == []


def test_secrets_are_never_stored(world, api, app):
    from manager.extensions import db
    from manager.models import ParameterPreset

    client = api("operator")
    sid = world["scripts"]["secret_upload.py"]
    body = {"name": "upload", "parameters": {"target": "srv", "token": "hunter2"}}
    created = client.post(f"/api/scripts/{sid}/presets", json=body)
    assert created.status_code == 201
    assert created.get_json()["secrets_not_stored"] == ["token"]
    changed = client.put(f"/api/presets/{created.get_json()['id']}", json=body)
    assert changed.get_json()["secrets_not_stored"] == ["token"]
    with app.app_context():
        stored = db.session.execute(select(ParameterPreset)).scalars().all()
        assert [p.parameters for p in stored] == [{"target": "srv"}]
        assert "hunter2" not in str([p.parameters for p in stored])


def test_bad_input_gets_a_readable_400(world, api):
    client = api("operator")
    sid = world["scripts"]["unit_converter.py"]
    cases = [
        ({"parameters": {}}, 400, "name of 1 to 100"),
        ({"name": "x" * 101}, 400, "name of 1 to 100"),
        ({"name": "a", "parameters": {"nope": 1}}, 400, "nope"),
        ({"name": "a", "parameters": {"precision": 99}}, 400, "precision"),
        ({"name": "a", "parameters": []}, 400, "JSON object"),
        ({"name": "a", "shared": "yes"}, 400, "true or false"),
        ({"name": "a", "project_id": 999999}, 404, "no project"),
    ]
    for body, status, message in cases:
        response = client.post(f"/api/scripts/{sid}/presets", json=body)
        assert response.status_code == status, body
        assert message in response.get_json()["message"], body
    assert client.put("/api/presets/1", json={}).status_code in (400, 404)


def test_preset_limit_per_script(world, api, monkeypatch):
    from manager import presets

    monkeypatch.setattr(presets, "MAX_PRESETS_PER_SCRIPT", 2)
    client = api("operator")
    sid = world["scripts"]["unit_converter.py"]
    assert _save(client, sid, name="a").status_code == 201
    assert _save(client, sid, name="b").status_code == 201
    third = _save(client, sid, name="c")
    assert third.status_code == 409 and "delete one first" in third.get_json()["message"]


def test_sharing_is_for_developers_and_shared_presets_are_offered(world, api):
    sid = world["scripts"]["unit_converter.py"]
    operator = api("operator")
    refused = _save(operator, sid, shared=True)
    assert refused.status_code == 403 and "developers and admins" in refused.get_json()["message"]
    developer = api("developer")
    shared = _save(developer, sid, name="team", shared=True).get_json()
    offered = operator.get(f"/api/scripts/{sid}/presets").get_json()["presets"]
    assert [(p["name"], p["mine"], p["owner"]) for p in offered] == [("team", False, "developer")]
    # the operator may use it, not change or delete it
    assert operator.put(f"/api/presets/{shared['id']}", json={"name": "x"}).status_code == 403
    assert operator.delete(f"/api/presets/{shared['id']}").status_code == 403
    private = _save(developer, sid, name="mine-only").get_json()
    assert operator.delete(f"/api/presets/{private['id']}").status_code == 404
    assert operator.post(f"/api/presets/{private['id']}/run").status_code == 404


def test_run_from_a_preset_goes_through_the_execute_checks(world, api, app):
    client = api("operator")
    sid = world["scripts"]["unit_converter.py"]
    preset = _save(client, sid).get_json()
    started = client.post(f"/api/presets/{preset['id']}/run")
    assert started.status_code == 201, started.get_json()
    assert started.get_json()["parameters"]["value"] == 12.5
    # a secret is given at run time, never taken from the preset
    secret_sid = world["scripts"]["secret_upload.py"]
    body = {"name": "up", "parameters": {"target": "srv"}}
    upload = client.post(f"/api/scripts/{secret_sid}/presets", json=body).get_json()
    run = client.post(f"/api/presets/{upload['id']}/run", json={"parameters": {"token": "t0k"}})
    assert run.status_code == 201 and run.get_json()["parameters"]["token"] != "t0k"
    bad = client.post(f"/api/presets/{upload['id']}/run", json={"parameters": {"retries": 9}})
    assert bad.status_code == 400 and "retries" in bad.get_json()["message"]


def test_viewers_and_strangers_are_refused(world, api):
    sid = world["scripts"]["unit_converter.py"]
    assert api("viewer").get(f"/api/scripts/{sid}/presets").status_code == 404
    assert api().get(f"/api/scripts/{sid}/presets").status_code == 401
    admin_only = world["scripts"]["system_report.py"]
    assert _save(api("operator"), admin_only).status_code == 404
