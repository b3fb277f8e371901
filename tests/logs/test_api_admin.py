"""Admin log endpoints: system log tails, the audit table, exports, deleting a user's logs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.logs.test_api_support import World, audit_actions, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


@pytest.mark.parametrize(
    "url",
    [
        "/api/admin/logs/execution",
        "/api/admin/logs/system",
        "/api/admin/logs/user/1",
        "/api/admin/logs/audit",
        "/api/admin/logs/retention",
    ],
)
def test_admin_only(world, api, url):
    assert api("dora").get(url).status_code == 403
    assert api().get(url).status_code == 401


def test_system_log_tail(world, api):
    root = api("root")
    log_dir = Path(world.app.config["SM_LOG_DIR"])
    error_log = log_dir / "system" / "error.log"
    error_log.parent.mkdir(parents=True, exist_ok=True)
    error_log.write_text(
        "".join(
            f"2026-11-25 10:00:{n:02d},000 ERROR scriptsmanager: failure {n}\n" for n in range(30)
        )
        + "not a record <b>\n"
    )
    body = root.get("/api/admin/logs/system?file=error&lines=3").get_json()
    assert body["file"] == "error" and body["exists"]
    assert body["lines"] == [
        "2026-11-25 10:00:28,000 ERROR scriptsmanager: failure 28",
        "2026-11-25 10:00:29,000 ERROR scriptsmanager: failure 29",
        "not a record <b>",
    ]
    assert body["records"][0] == {
        "time": "2026-11-25 10:00:28,000",
        "level": "ERROR",
        "logger": "scriptsmanager",
        "message": "failure 28",
    }
    assert body["records"][-1]["message"] == "not a record <b>"
    access = root.get("/api/admin/logs/system?file=access").get_json()
    assert any("/api/admin/logs/system" in line for line in access["lines"])
    assert root.get("/api/admin/logs/system?file=../../etc/passwd").status_code == 400
    assert root.get("/api/admin/logs/system?lines=999999").status_code == 400


def test_audit_table_is_paginated_and_filtered(world, api):
    run = world.run("olga")
    olga = api("olga")
    olga.delete(f"/api/logs/execution/{run}")
    root = api("root")
    root.get(f"/api/admin/logs/user/{world.users['olga']}")
    everything = root.get("/api/admin/logs/audit").get_json()
    actions = [e["action"] for e in everything["events"]]
    assert actions[0] == "logs_listed" and "log_deleted" in actions and "login" in actions
    deleted = root.get("/api/admin/logs/audit?action=log_deleted").get_json()
    assert deleted["total"] == 1 and deleted["events"][0]["target"] == f"execution:{run}"
    mine = root.get(f"/api/admin/logs/audit?user_id={world.users['olga']}").get_json()
    assert {e["username"] for e in mine["events"]} == {"olga"}
    admin = root.get("/api/admin/logs/audit?admin_only=true").get_json()
    assert {e["action"] for e in admin["events"]} == {"logs_listed"}
    paged = root.get("/api/admin/logs/audit?per_page=1&page=2").get_json()
    assert len(paged["events"]) == 1 and paged["pages"] == paged["total"]
    for bad in ("per_page=0", "admin_only=maybe", "date_from=soon", "user_id=x"):
        assert root.get(f"/api/admin/logs/audit?{bad}").status_code == 400


def test_export_audit_and_system_logs(world, api):
    api("olga")  # a login event
    root = api("root")
    response = root.post("/api/admin/logs/export", json={"source": "audit", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit_')
    rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert [r["action"] for r in rows][:2] == ["login", "login"]
    assert rows[0]["username"] == "olga"
    as_json = root.post(
        "/api/admin/logs/export", json={"source": "audit", "format": "json", "username": "root"}
    )
    events = json.loads(as_json.data)
    assert events and {e["username"] for e in events} == {"root"}
    system = root.post(
        "/api/admin/logs/export", json={"source": "access", "format": "txt", "lines": 5}
    )
    assert system.status_code == 200 and len(system.data.decode().splitlines()) <= 5
    exported = audit_actions(world.app, "logs_exported")
    assert [e["target"] for e in exported] == ["logs:audit", "logs:audit", "logs:access"]
    for payload in (
        {"source": "passwords"},
        {"source": "audit", "format": "pdf"},
        {"source": "audit", "lines": 0},
        {"source": "error", "date_from": "later"},
    ):
        assert root.post("/api/admin/logs/export", json=payload).status_code == 400, payload


def test_delete_all_logs_of_a_user(world, api):
    done = [world.run("olga"), world.run("olga")]
    live = world.run("olga", status="running")
    other = world.run("ivan")
    root = api("root")
    response = root.delete(f"/api/admin/logs/user/{world.users['olga']}")
    assert response.status_code == 200
    assert response.get_json() == {
        "deleted": 2,
        "files_removed": 2,
        "bytes_freed": response.get_json()["bytes_freed"],
        "by_level": {},
        "kept_running": 1,
    }
    assert not any(world.exists(r) for r in done)
    assert world.exists(live) and world.exists(other)
    event = audit_actions(world.app, "user_logs_deleted")[0]
    assert event["admin"] and event["target"] == "user:olga"
    assert root.delete("/api/admin/logs/user/99999").status_code == 404
    assert api("olga").delete(f"/api/admin/logs/user/{world.users['ivan']}").status_code == 403
