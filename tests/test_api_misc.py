"""Health, i18n and projects endpoints."""

from __future__ import annotations


def test_health_reports_the_seed_fields(api, make_user):
    make_user("root", "admin")
    response = api("root").get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "healthy"
    assert body["database"]["status"] == "ok"
    assert {"timestamp", "container_engine", "active_scripts", "proxy_sessions"} <= set(body)
    assert body["container_engine"]["status"] in {"available", "unavailable"}


def test_languages_and_strings_with_english_fallback(client):
    languages = client.get("/api/i18n/languages").get_json()
    assert [lang["code"] for lang in languages["languages"]] == ["en", "es", "it", "fr"]
    spanish = client.get("/api/i18n/es").get_json()["translations"]
    english = client.get("/api/i18n/en").get_json()["translations"]
    assert set(english) <= set(spanish)
    assert spanish["login.wrong_credentials"] != english["login.wrong_credentials"]
    assert client.get("/api/i18n/de").status_code == 404


def test_translate_falls_back_to_english_then_the_key():
    from manager.i18n import localized, translate

    assert translate("no.such.key", "es") == "no.such.key"
    assert translate("login.wrong_credentials", "xx") == translate("login.wrong_credentials", "en")
    assert localized({"en": "Hello", "fr": "Bonjour"}, "fr") == "Bonjour"
    assert localized({"en": "Hello", "fr": "Bonjour"}, "it") == "Hello"
    assert localized("plain", "it") == "plain"


def test_projects_default_create_limit_and_activate(app, api, make_user):
    make_user("olga", "operator")
    session = api("olga")
    listed = session.get("/api/projects").get_json()
    assert [p["project_name"] for p in listed["projects"]] == ["project_default"]
    created = session.post("/api/projects", json={"project_name": "alpha"})
    assert created.status_code == 201
    assert session.post("/api/projects", json={"project_name": "alpha"}).status_code == 409
    assert session.post("/api/projects", json={"project_name": "../etc"}).status_code == 400
    project_id = created.get_json()["project"]["id"]
    assert session.post(f"/api/projects/{project_id}/set-active").status_code == 200
    assert session.get("/api/projects/active").get_json()["project"]["project_name"] == "alpha"
    app.config["SM_MAX_PROJECTS_PER_USER"] = 2
    over = session.post("/api/projects", json={"project_name": "beta"})
    assert over.status_code == 429 and "SM_MAX_PROJECTS_PER_USER" in over.get_json()["message"]


def test_foreign_project_is_not_found(api, make_user):
    make_user("olga", "operator")
    make_user("ivan", "operator")
    olga = api("olga")
    project_id = olga.post("/api/projects", json={"project_name": "mine"}).get_json()["project"][
        "id"
    ]
    assert api("ivan").post(f"/api/projects/{project_id}/set-active").status_code == 404


def test_unknown_api_route_and_bad_json_are_clear(api, make_user):
    make_user("olga", "operator")
    session = api("olga")
    missing = session.get("/api/nope")
    assert missing.status_code == 404 and missing.is_json
    bad = session.post("/api/projects", data="not json", content_type="application/json")
    assert bad.status_code == 400 and "JSON" in bad.get_json()["message"]


def test_system_logs_are_written(app, client, app_config):
    from pathlib import Path

    client.get("/health")
    access = Path(app_config["SM_LOG_DIR"]) / "system" / "access.log"
    assert "/health" in access.read_text()
