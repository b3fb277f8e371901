"""Projects: create, rename, switch, delete with an archive, the limit; admin views and reset."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.support.catalog import group_id

GROUP = "data_processing"


def test_projects_lifecycle_keeps_an_archive_of_deleted_files(ready_app, make_user, api):
    uid = make_user("olga", "operator")
    olga = api("olga")
    listing = olga.get("/api/projects").get_json()
    assert [p["project_name"] for p in listing["projects"]] == ["project_default"]
    created = olga.post("/api/projects", json={"project_name": "alpha", "description": "A"})
    assert created.status_code == 201
    alpha = created.get_json()["project"]["id"]
    clash = olga.post("/api/projects", json={"project_name": "ALPHA"})
    assert clash.status_code == 409 and "already have" in clash.get_json()["message"]
    bad = olga.post("/api/projects", json={"project_name": "../x"})
    assert bad.status_code == 400 and "letters, digits" in bad.get_json()["message"]
    renamed = olga.put(f"/api/projects/{alpha}", json={"project_name": "beta"})
    assert renamed.get_json()["project"]["project_name"] == "beta"
    assert olga.post(f"/api/projects/{alpha}/set-active").status_code == 200
    assert olga.get("/api/projects/active").get_json()["project"]["id"] == alpha
    gid = group_id(ready_app, GROUP)
    olga.post(f"/api/data/{gid}/{alpha}/keep.txt", data=b"kept", content_type="text/plain")
    folder = Path(ready_app.config["SM_DATA_DIR"]) / "script_groups" / GROUP / str(uid) / str(alpha)
    assert folder.is_dir()
    deleted = olga.delete(f"/api/projects/{alpha}")
    assert deleted.status_code == 200, deleted.get_json()
    body = deleted.get_json()
    assert not folder.exists()
    archive = next((Path(ready_app.config["SM_BACKUP_DIR"]) / "projects" / str(uid)).glob("*.zip"))
    assert archive.name == body["archive"]
    assert zipfile.ZipFile(archive).read(f"{GROUP}/{uid}/{alpha}/keep.txt") == b"kept"
    default = olga.get("/api/projects/active").get_json()["project"]
    assert default["is_default"] and body["active_project_id"] == default["id"]
    refused = olga.delete(f"/api/projects/{default['id']}")
    assert refused.status_code == 409 and "default project" in refused.get_json()["message"]


def test_project_limit_and_other_users(ready_app, make_user, api):
    ready_app.config["SM_MAX_PROJECTS_PER_USER"] = 2
    make_user("olga", "operator")
    make_user("bob", "operator")
    olga = api("olga")
    assert olga.post("/api/projects", json={"project_name": "one"}).status_code == 201
    full = olga.post("/api/projects", json={"project_name": "two"})
    assert full.status_code == 429 and "SM_MAX_PROJECTS_PER_USER=2" in full.get_json()["message"]
    mine = olga.get("/api/projects").get_json()["projects"][-1]["id"]
    bob = api("bob")
    for response in (
        bob.put(f"/api/projects/{mine}", json={"project_name": "x"}),
        bob.delete(f"/api/projects/{mine}"),
        bob.post(f"/api/projects/{mine}/set-active"),
    ):
        assert response.status_code == 404 and "no project" in response.get_json()["message"]
    assert bob.get("/api/admin/users/1/projects").status_code == 403


def test_admin_sees_projects_and_resets_data_after_confirmation(ready_app, make_user, api):
    uid = make_user("olga", "operator")
    make_user("ada", "admin")
    olga = api("olga")
    extra = olga.post("/api/projects", json={"project_name": "extra"}).get_json()["project"]["id"]
    gid = group_id(ready_app, GROUP)
    olga.post(f"/api/data/{gid}/{extra}/a.txt", data=b"a", content_type="text/plain")
    ada = api("ada")
    projects = ada.get(f"/api/admin/users/{uid}/projects").get_json()["projects"]
    assert {p["project_name"] for p in projects} == {"project_default", "extra"}
    unconfirmed = ada.post(f"/api/admin/users/{uid}/reset-data", json={})
    assert (
        unconfirmed.status_code == 400 and '"confirm": "olga"' in unconfirmed.get_json()["message"]
    )
    reset = ada.post(f"/api/admin/users/{uid}/reset-data", json={"confirm": "olga"})
    assert reset.status_code == 200 and reset.get_json()["projects_deleted"] == 1
    archive = Path(ready_app.config["SM_BACKUP_DIR"]) / "projects" / str(uid)
    assert zipfile.ZipFile(next(archive.glob("*reset.zip"))).read(f"{GROUP}/{uid}/{extra}/a.txt")
    assert not (Path(ready_app.config["SM_DATA_DIR"]) / "script_groups" / GROUP / str(uid)).exists()
    names = [p["project_name"] for p in olga.get("/api/projects").get_json()["projects"]]
    assert names == ["project_default"]
    audit = ada.get("/api/admin/audit?action=user_data_reset")
    assert audit.status_code in (200, 404)  # the audit API belongs to another area
