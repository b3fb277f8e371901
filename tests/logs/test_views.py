"""The log viewer pages: who may open which, what they render, the statistics chart's geometry."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from manager.models import utcnow
from manager.views.logs import trend_chart
from tests.logs.test_api_support import World, audit_actions, build_world

MY_PAGES = ["/logs", "/logs/live", "/logs/stats"]
ADMIN_PAGES = ["/admin/logs/system", "/admin/logs/audit"]


def register_views(app) -> None:
    """Register the log pages if manager.blueprints does not (yet) do it."""
    from manager.views import logs

    if logs.bp.name not in app.blueprints:
        app.register_blueprint(logs.bp)


@pytest.fixture
def world(app, make_user) -> World:
    register_views(app)
    return build_world(app, make_user)


def embedded_run(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="sm-run">(.*?)</script>', html, re.S)
    assert found, "the detail page embeds the run for its script"
    return json.loads(found.group(1))


@pytest.mark.parametrize("url", MY_PAGES)
def test_my_pages_render_for_any_user(world, api, url):
    answer = api("vera").get(url)
    assert answer.status_code == 200
    assert 'data-sm="nav-logs"' in answer.text
    assert 'data-sm="nav-audit"' not in answer.text, "admin menu entries are for admins"


@pytest.mark.parametrize("url", [*MY_PAGES, "/logs/1", *ADMIN_PAGES])
def test_anonymous_goes_to_the_login_page(world, api, url):
    answer = api().get(url)
    assert answer.status_code == 302
    assert "/login" in answer.headers["Location"]


@pytest.mark.parametrize("url", ADMIN_PAGES)
@pytest.mark.parametrize("username", ["olga", "dora", "vera"])
def test_admin_pages_are_admin_only(world, api, url, username):
    assert api(username).get(url).status_code == 403


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_render_for_an_admin(world, api, url):
    answer = api("root").get(url)
    assert answer.status_code == 200
    assert 'data-sm="nav-system-logs"' in answer.text and 'data-sm="nav-audit"' in answer.text


def test_detail_page_for_the_owner(world, api):
    run_id = world.run(
        "olga",
        output="hello\n",
        errors="boom\n",
        parameters={"title": "<script>alert(1)</script>", "token": "********"},
    )
    answer = api("olga").get(f"/logs/{run_id}")
    assert answer.status_code == 200
    html = answer.text
    assert "Monthly report" in html and "project_default" in html
    assert 'data-sm="run-rerun"' in html and 'data-sm="run-delete"' in html
    assert f"/api/logs/execution/{run_id}/download?format=csv" in html
    assert 'data-sm="errors-dot"' in html, "the Errors tab says there are errors"
    # Parameters are shown escaped, and the embedded JSON cannot close its <script> element.
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    run = embedded_run(html)
    assert run["execution_id"] == run_id and run["live"] is False
    assert run["rerun"]["secret_parameters"] == ["token"]
    assert "token" not in run["rerun"]["parameters"]
    assert 'id="sm-rerun-modal"' in html, "secret parameters are asked again"


def test_detail_page_of_a_running_run(world, api):
    run_id = world.run("olga", status="running")
    html = api("olga").get(f"/logs/{run_id}").text
    assert re.search(r'data-sm="run-delete"\s+disabled', html), "a running run cannot be deleted"
    assert embedded_run(html)["live"] is True
    assert "socket.io.min.js" in html


def test_someone_elses_run_is_not_found(world, api):
    run_id = world.run("olga")
    assert api("ivan").get(f"/logs/{run_id}").status_code == 404
    assert api("ivan").get("/logs/no-such-run").status_code == 404


def test_an_admin_opens_any_run_and_it_is_audited(world, api):
    run_id = world.run("olga", output="secret sauce\n")
    html = api("root").get(f"/logs/{run_id}").text
    assert 'data-sm="run-owner"' in html and "olga" in html
    assert 'data-sm="run-rerun"' not in html and 'data-sm="run-delete"' not in html
    events = audit_actions(world.app, "log_accessed")
    assert events and events[-1]["admin"] and events[-1]["target"] == f"execution:{run_id}"


def test_list_page_offers_the_scripts_i_ran_and_my_projects(world, api):
    world.run("olga", script="cleanup")
    html = api("olga").get("/logs").text
    script_options = re.search(r'data-sm="log-script">(.*?)</select>', html, re.S).group(1)
    assert "Disk cleanup" in script_options and "Monthly report" not in script_options
    project_select = re.search(r'data-sm="log-project">(.*?)</select>', html, re.S).group(1)
    assert project_select.count("data-user-id=") == 2, "olga's two projects only"
    assert 'data-sm="log-user"' not in html, "the user filter is for admins"
    assert 'data-sm="storage"' in html


def test_admin_list_page_has_the_user_filter(world, api):
    html = api("root").get("/logs").text
    users = re.search(r'data-sm="log-user">(.*?)</select>', html, re.S).group(1)
    assert 'value="all"' in users and ">olga<" in users


def test_storage_warning_near_the_quota(world, api):
    world.app.config["SM_LOG_QUOTA_MB"] = 1
    world.run("olga", output="x" * 900_000)
    html = api("olga").get("/logs").text
    assert 'data-sm="storage-warning"' in html


def test_stats_page_draws_the_trend(world, api):
    world.run("olga", start=utcnow() - timedelta(days=1))
    world.run("olga", status="failed", exit_code=1, start=utcnow() - timedelta(days=1))
    html = api("olga").get("/logs/stats?days=7").text
    assert html.count('data-sm="trend-bar"') == 7
    assert 'class="sm-bar-completed"' in html and 'class="sm-bar-failed"' in html
    assert "Monthly report" in html, "most used scripts"
    assert api("olga").get("/logs/stats?days=12345").status_code == 200, "a bad period falls back"


def test_trend_chart_geometry():
    series = [
        {"date": "2026-11-01", "runs": 4, "completed": 2, "failed": 1},
        {"date": "2026-11-02", "runs": 0, "completed": 0, "failed": 0},
        {"date": "2026-11-03", "runs": 2, "completed": 2, "failed": 0},
    ]
    chart = trend_chart(series)
    assert chart["peak"] == 4 and chart["total"] == 6
    first, empty, third = chart["bars"]
    assert [p["kind"] for p in first["parts"]] == ["completed", "failed", "other"]
    plot = chart["baseline"] - chart["peak_y"]
    assert sum(p["height"] for p in first["parts"]) == pytest.approx(plot, abs=0.5)
    assert empty["parts"] == []
    assert third["parts"][0]["height"] == pytest.approx(plot / 2, abs=0.5)
    assert first["x"] < empty["x"] < third["x"]


def test_system_page_shows_the_tail(world, api):
    log_file = Path(world.app.config["SM_LOG_DIR"]) / "system" / "error.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(
        "2026-11-25 10:00:00,000 ERROR scriptsmanager: first <b>bold</b>\n"
        "2026-11-25 10:00:01,000 WARNING scriptsmanager: second\n"
    )
    html = api("root").get("/admin/logs/system?file=error&lines=1").text
    assert html.count('data-sm="system-row"') == 1
    assert "second" in html and "first &lt;b&gt;" not in html
    html = api("root").get("/admin/logs/system?file=error").text
    assert "first &lt;b&gt;bold&lt;/b&gt;" in html
    assert ">ERROR</span>" in html and ">WARNING</span>" in html
    bogus = api("root").get("/admin/logs/system?file=../../etc/passwd")
    assert bogus.status_code == 200 and "file must be one of" in bogus.text


def test_audit_page_filters_and_pages(world, api):
    run_id = world.run("olga")
    root = api("root")
    root.get(f"/logs/{run_id}")  # an audited look at olga's run
    html = root.get("/admin/logs/audit?action=log_accessed").text
    assert html.count('data-sm="audit-row"') >= 1
    assert f"execution:{run_id}" in html
    assert (
        root.get("/admin/logs/audit?action=nothing_like_this").text.count('data-sm="audit-row"')
        == 0
    )
    bad = root.get("/admin/logs/audit?date_from=yesterday")
    assert bad.status_code == 200 and 'data-sm="audit-error"' in bad.text
