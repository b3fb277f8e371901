"""Metadata history: every edit audited with before and after, restore, re-parsing keeps edits,
and the group's environment picked by developers."""

from __future__ import annotations

import pytest

from tests.docs.test_docs_api import REFUSED


def history(client, script_id: int) -> list[dict]:
    return client.get(f"/api/scripts/{script_id}/history").get_json()["history"]


def test_every_editable_field_is_audited_with_before_and_after(docs_app, api, ids):
    developer = api("developer")
    changes = {
        "display_name": {"en": "CSV stats", "es": "Estadísticas CSV"},
        "description": {"it": "Riassume un CSV"},
        "required_level": "developer",
        "category": "Reports",
        "tags": ["csv", "stats"],
        "parameters": [{"name": "path", "type": "string", "required": True}],
        "execution_timeout": 120,
        "flask_port": 5050,
        "proxy_enabled": False,
    }
    response = developer.put(f"/api/scripts/{ids['csv']}/metadata", json=changes)
    assert response.status_code == 200, response.get_json()
    entry = history(developer, ids["csv"])[0]
    recorded = {c["field"]: c for c in entry["changes"]}
    assert set(recorded) == set(changes)
    assert (
        recorded["category"]["before"] == "analysis" and recorded["category"]["after"] == "Reports"
    )
    assert recorded["category"]["before_edit"] is None  # the value came from the files
    assert recorded["display_name"]["after"]["es"] == "Estadísticas CSV"
    assert (
        recorded["proxy_enabled"]["before"] is True and recorded["proxy_enabled"]["after"] is False
    )
    assert recorded["flask_port"]["after"] == 5050
    assert entry["username"] == "developer"


def test_restore_puts_back_the_earlier_value_and_is_audited(docs_app, api, ids):
    developer = api("developer")
    url = f"/api/scripts/{ids['csv']}/metadata"
    assert developer.put(url, json={"execution_timeout": 120}).status_code == 200
    assert developer.put(url, json={"execution_timeout": 240}).status_code == 200
    second = history(developer, ids["csv"])[0]
    response = developer.post(
        f"/api/scripts/{ids['csv']}/history/{second['id']}/restore",
        json={"field": "execution_timeout", "side": "before"},
    )
    assert response.status_code == 200, response.get_json()
    assert developer.get(url).get_json()["execution_timeout"] == 120
    first = history(developer, ids["csv"])[-1]
    developer.post(
        f"/api/scripts/{ids['csv']}/history/{first['id']}/restore",
        json={"field": "execution_timeout"},
    )
    meta = developer.get(url).get_json()
    assert meta["execution_timeout"] == 300 and "execution_timeout" not in meta["overrides"]
    top = history(developer, ids["csv"])[0]
    assert top["action"] == "script_metadata_restored"
    assert top["changes"][0]["before"] == 120 and top["changes"][0]["after"] == 300


def test_restore_refusals(docs_app, api, ids):
    developer = api("developer")
    developer.put(f"/api/scripts/{ids['csv']}/metadata", json={"category": "Reports"})
    event = history(developer, ids["csv"])[0]["id"]
    base = f"/api/scripts/{ids['csv']}/history"
    assert developer.post(f"{base}/{event}/restore", json={"field": "tags"}).status_code == 400
    bad_side = developer.post(f"{base}/{event}/restore", json={"field": "category", "side": "x"})
    assert bad_side.status_code == 400
    # An entry of another script is not this script's history.
    assert (
        developer.post(
            f"/api/scripts/{ids['units']}/history/{event}/restore", json={"field": "category"}
        ).status_code
        == 404
    )
    assert developer.post(f"{base}/999999/restore", json={"field": "category"}).status_code == 404


@pytest.mark.parametrize("who, status", REFUSED)
def test_history_and_restore_refused_below_developer(docs_app, api, ids, who, status):
    client = api(who)
    assert client.get(f"/api/scripts/{ids['csv']}/history").status_code in (401, 403)
    response = client.post(f"/api/scripts/{ids['csv']}/history/1/restore", json={})
    assert response.status_code == status


def test_reparsing_the_header_keeps_edited_fields(docs_app, api, ids, groups_dir):
    developer = api("developer")
    developer.put(f"/api/scripts/{ids['csv']}/metadata", json={"category": "Reports"})
    script = groups_dir / "data_processing" / "csv_summary.py"
    script.write_text(
        script.read_text().replace("@required_level: operator", "@required_level: developer")
    )
    response = developer.post(f"/api/scripts/{ids['csv']}/refresh-metadata")
    meta = response.get_json()
    assert meta["required_level"] == "developer"  # the header's change applies
    assert meta["category"] == "Reports"  # the edit survives


def test_developers_pick_the_groups_environment_audited(docs_app, api, ids):
    developer = api("developer")
    url = f"/api/script-groups/{ids['data_group']}/conda"
    refused = developer.post(url, json={"environment": "no-such-env"})
    assert refused.status_code == 400 and "no-such-env" in refused.get_json()["message"]
    names = [e["name"] for e in developer.get("/api/conda/environments").get_json()["environments"]]
    target = next(n for n in names if n != "base") if len(names) > 1 else names[0]
    response = developer.post(url, json={"environment": target})
    assert response.status_code == 200, response.get_json()
    entry = history(developer, ids["csv"])[0]
    assert entry["kind"] == "environment"
    assert entry["changes"][0]["after"] == target and entry["changes"][0]["before"]
    assert api("operator").post(url, json={"environment": target}).status_code == 403


def test_restoring_an_environment_that_no_longer_exists_is_refused(docs_app, api, ids):
    from manager import audit
    from manager.extensions import db
    from manager.models import ScriptGroup

    with docs_app.app_context():
        group = db.session.get(ScriptGroup, ids["data_group"])
        audit.record(
            db.session, "group_environment_set", target=f"group:{group.directory_path}",
            details={"environment": "base", "before": "gone-env", "after": "base"},
        )  # fmt: skip
        db.session.commit()
    developer = api("developer")
    entry = history(developer, ids["csv"])[0]
    response = developer.post(
        f"/api/scripts/{ids['csv']}/history/{entry['id']}/restore", json={"side": "before"}
    )
    assert response.status_code == 400 and "gone-env" in response.get_json()["message"]
