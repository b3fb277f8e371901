"""Admin panel pages: who may open them, the permission matrix, the effective configuration
(secrets masked, sources named), data usage, the discovery button and the dashboard's health
indicators and environment states."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager.admintools.effective_config import MASK, effective_configuration, mask_url
from manager.admintools.permissions import rights

PAGES = ["/admin/backups", "/admin/permissions", "/admin/config", "/admin/usage"]


@pytest.fixture
def people(make_user):
    return {level: make_user(f"{level}1", level) for level in ("operator", "developer", "admin")}


@pytest.mark.parametrize("url", PAGES)
def test_pages_serve_admins_and_refuse_the_others(app, people, api, url):
    assert api().get(url).status_code == 302  # to the login page
    for level in ("operator", "developer"):
        refused = api(f"{level}1").get(url)
        assert refused.status_code == 403 and b"admin level" in refused.data
    page = api("admin1").get(url)
    assert page.status_code == 200 and b'data-sm="admin-panel-nav"' in page.data


def test_rights_follow_levels_and_validity():
    assert rights("viewer", "viewer", "viewer", False) == ["see"]
    assert rights("operator", "viewer", "operator", False) == ["see", "run"]
    assert rights("operator", "viewer", "developer", False) == []
    assert rights("developer", "operator", None, True) == ["see", "edit"]  # invalid: no run
    assert rights("operator", "operator", "operator", True) == []
    assert rights("admin", "admin", "admin", False) == ["see", "run", "edit"]


def test_permission_matrix_page_lists_groups_and_scripts(ready_app, people, api):
    html = api("admin1").get("/admin/permissions").get_data(as_text=True)
    assert 'data-kind="group"' in html and 'data-kind="script"' in html
    assert 'data-level="viewer"' in html and 'data-rights="see,run,edit"' in html


def test_effective_configuration_masks_secrets_and_names_sources(app, tmp_path):
    config_file = tmp_path / "sm.json"
    config_file.write_text('{"logs": {"quota_mb": 7}}')
    environ = {
        "SM_CONFIG_FILE": str(config_file),
        "SM_PORT": "6000",
        "SECRET_KEY": "super-secret-value",
    }
    values = {
        **app.config,
        "SM_PORT": 6000,
        "SM_LOG_QUOTA_MB": 7,
        "SECRET_KEY": "super-secret-value",
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://sm:hunter2@db/sm",
        "SM_REDIS_URL": "redis://:tok3n@cache:6379/0",
    }
    rows = {row.env: row for row in effective_configuration(values, environ)}
    assert rows["SM_PORT"].source == "env:SM_PORT" and rows["SM_PORT"].value == "6000"
    assert rows["SM_LOG_QUOTA_MB"].source == "file:logs.quota_mb"
    assert rows["SM_HOST"].source == "default"
    assert rows["SECRET_KEY"].value == MASK and rows["SECRET_KEY"].masked
    assert "hunter2" not in rows["DATABASE_URL"].value and MASK in rows["DATABASE_URL"].value
    if "SM_REDIS_URL" in rows:
        assert "tok3n" not in rows["SM_REDIS_URL"].value
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_config_page_never_shows_the_secret_key(app, people, api):
    html = api("admin1").get("/admin/config").get_data(as_text=True)
    assert app.config["SECRET_KEY"] not in html
    assert 'data-env="SECRET_KEY"' in html and MASK in html


def test_usage_counts_workspace_files_per_user_and_project(app, people, api):
    from manager.extensions import db
    from manager.models import UserProject

    with app.app_context():
        project = UserProject(user_id=people["operator"], project_name="bridge")
        db.session.add(project)
        db.session.commit()
        project_id = project.id
    folder = (
        Path(app.config["SM_DATA_DIR"]) / "script_groups" / "g"
        / str(people["operator"]) / str(project_id)
    )  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"x" * 3000)
    html = api("admin1").get("/admin/usage").get_data(as_text=True)
    assert 'data-user="operator1"' in html and 'data-project="bridge"' in html
    assert "2.9 KiB" in html


def test_dashboard_health_and_discovery_are_for_admins(ready_app, people, api):
    admin = api("admin1")
    html = admin.get("/").get_data(as_text=True)
    for name in ("database", "engine", "disk", "backup", "catalog"):
        assert f'data-sm="health-{name}"' in html
    assert 'data-sm="health-database" data-state="ok"' in html
    assert 'data-sm="env-state"' in html
    operator = api("operator1").get("/").get_data(as_text=True)
    assert 'data-sm="health"' not in operator and 'data-sm="discover-now"' not in operator
    assert 'data-sm="env-state"' in operator

    done = admin.post("/admin/discover", data={"csrf_token": admin.token, "next": "/"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/")
    assert api("operator1").post("/admin/discover").status_code in (400, 403)
    api_done = admin.post("/api/system/discover")
    assert api_done.status_code == 200 and "summary" in api_done.get_json()
