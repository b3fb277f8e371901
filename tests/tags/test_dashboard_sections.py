"""Favourites, recently run scripts and system status: API and the dashboard page."""

from __future__ import annotations


def test_star_list_unstar(world, api):
    client = api("operator")
    sid = world["scripts"]["csv_summary.py"]
    assert client.put(f"/api/scripts/{sid}/favorite").get_json() == {
        "script_id": sid,
        "favorite": True,
    }
    assert client.put(f"/api/scripts/{sid}/favorite").status_code == 200  # twice is fine
    assert [f["script_id"] for f in client.get("/api/user/favorites").get_json()["favorites"]] == [
        sid
    ]
    page = client.get("/").get_data(as_text=True)
    assert f'data-sm="favorite-item" data-script-id="{sid}"' in page
    assert client.delete(f"/api/scripts/{sid}/favorite").get_json()["favorite"] is False
    assert client.get("/api/user/favorites").get_json()["favorites"] == []
    # scripts above my level cannot be starred; strangers are sent away
    assert (
        client.put(f"/api/scripts/{world['scripts']['system_report.py']}/favorite").status_code
        == 404
    )
    assert api().get("/api/user/favorites").status_code == 401


def test_recent_scripts_show_the_last_status(world, api):
    client = api("operator")
    sid = world["scripts"]["unit_converter.py"]
    run = client.post(f"/api/scripts/{sid}/execute", json={})
    assert run.status_code == 201, run.get_json()
    recent = client.get("/api/user/recent-scripts").get_json()["recent"]
    assert recent[0]["script_id"] == sid
    assert recent[0]["execution_id"] == run.get_json()["execution_id"]
    assert recent[0]["scheduled"] is False
    page = client.get("/").get_data(as_text=True)
    assert f'data-sm="recent-item" data-script-id="{sid}"' in page
    assert api("developer").get("/api/user/recent-scripts").get_json()["recent"] == []


def test_system_status(world, api):
    status = api("viewer").get("/api/system/status").get_json()
    assert status["database"]["status"] == "ok"
    assert status["container_engine"]["status"] == "ok"  # the fake engine answers
    assert set(status["images"]) == {"status", "built", "not_built"}
    page = api("viewer").get("/").get_data(as_text=True)
    assert 'data-sm="status-database" data-status="ok"' in page
    assert api().get("/api/system/status").status_code == 401
