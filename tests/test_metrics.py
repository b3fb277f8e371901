"""/metrics (Prometheus text format) and the admin detail of /health."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.catalog import script_id


def samples(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def test_metrics_are_for_admins_and_the_scraper(app, api, make_user) -> None:
    make_user("ada", "admin")
    make_user("olga", "operator")
    assert api().get("/metrics").status_code == 401
    assert api("olga").get("/metrics").status_code == 403
    answer = api("ada").get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    assert "sm_sessions{state=" in answer.get_data(as_text=True)
    app.config["SM_METRICS_TOKEN"] = "scrape-me-" + "x" * 20
    scraper = app.test_client()
    assert scraper.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = scraper.get(
        "/metrics", headers={"Authorization": f"Bearer {app.config['SM_METRICS_TOKEN']}"}
    )
    assert ok.status_code == 200


def test_a_run_moves_the_counters(ready_app, api, make_user) -> None:
    make_user("ada", "admin")
    admin = api("ada")
    before = samples(admin.get("/metrics").get_data(as_text=True))
    sid = script_id(ready_app, "csv_summary.py")
    assert admin.post(f"/api/scripts/{sid}/execute", json={"parameters": {}}).status_code == 201
    after = samples(admin.get("/metrics").get_data(as_text=True))
    key = "sm_session_starts_total{kind=batch}"
    assert after[key] == before.get(key, 0) + 1
    assert (
        after["sm_session_start_seconds_count{}"]
        >= before.get("sm_session_start_seconds_count{}", 0) + 1
    )
    assert after["sm_sessions{state=running}"] >= 1


def test_health_detail_names_redis_and_images(app, api, make_user) -> None:
    make_user("ada", "admin")
    anonymous = api().get("/health").get_json()
    assert set(anonymous) == {"status"}
    detail = api("ada").get("/health").get_json()
    assert detail["redis"] == {"status": "not configured"}
    assert "environments" in detail["images"]
    app.config["SM_REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    assert api("ada").get("/health").get_json()["redis"]["status"] == "unavailable"


def test_failed_logins_are_counted(app, api, make_user) -> None:
    make_user("ada", "admin")
    before = samples(api("ada").get("/metrics").get_data(as_text=True)).get(
        "sm_login_failures_total{}", 0
    )
    wrong = api().client.post("/api/auth/login", json={"username": "ada", "password": "nope-nope"})
    assert wrong.status_code == 401
    after = samples(api("ada").get("/metrics").get_data(as_text=True))["sm_login_failures_total{}"]
    assert after == before + 1
