"""The log list: ownership, pagination, sorting, filters, previews, by script and project."""

from __future__ import annotations

from datetime import timedelta

import pytest

from manager.models import utcnow
from tests.logs.test_api_support import World, audit_actions, build_world


@pytest.fixture
def world(app, make_user) -> World:
    return build_world(app, make_user)


def ids(body: dict) -> list[str]:
    return [item["execution_id"] for item in body["executions"]]


def test_lists_only_my_runs_newest_first_with_preview(world, api):
    old = world.run("olga", start=utcnow() - timedelta(hours=2), output="first\nline two")
    new = world.run("olga", output="x" * 500 + "END", errors="boom")
    world.run("ivan", output="not olga's")
    body = api("olga").get("/api/logs/execution").get_json()
    assert ids(body) == [new, old]
    assert body["total"] == 2 and body["page"] == 1 and body["per_page"] == 50
    item = body["executions"][0]
    assert item["script_name"] == "Monthly report"
    assert item["project_name"] == "project_default"
    assert item["preview"]["output"].endswith("END") and len(item["preview"]["output"]) == 240
    assert item["preview"]["errors"] == "boom"


def test_anonymous_gets_401(world, api):
    assert api().get("/api/logs/execution").status_code == 401


def test_pagination_defaults_to_50(world, api):
    base = utcnow() - timedelta(days=1)
    made = [
        world.run("olga", start=base + timedelta(minutes=i), with_file=False) for i in range(55)
    ]
    olga = api("olga")
    first = olga.get("/api/logs/execution").get_json()
    second = olga.get("/api/logs/execution?page=2").get_json()
    assert len(first["executions"]) == 50 and first["pages"] == 2 and first["total"] == 55
    assert ids(first) + ids(second) == list(reversed(made))
    small = olga.get("/api/logs/execution?per_page=10&page=3").get_json()
    assert ids(small) == list(reversed(made))[20:30]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("duration", ["long", "mid", "short"]),
        ("-duration", ["long", "mid", "short"]),
        ("duration&order=asc", ["short", "mid", "long"]),
        ("start&order=asc", ["mid", "short", "long"]),
        ("status&order=asc", ["short", "long", "mid"]),
        ("script&order=asc", ["mid", "short", "long"]),
        ("project&order=asc", ["long", "mid", "short"]),
    ],
)
def test_sorting(world, api, sort, expected):
    now = utcnow()
    made = {
        "mid": world.run(
            "olga",
            script="cleanup",
            project="olga_default",
            duration=50,
            status="failed",
            start=now - timedelta(hours=3),
            with_file=False,
        ),
        "short": world.run(
            "olga",
            script="report",
            project="olga_default",
            duration=5,
            status="completed",
            start=now - timedelta(hours=2),
            with_file=False,
        ),
        "long": world.run(
            "olga",
            script="report",
            project="olga_alpha",
            duration=500,
            status="completed",
            start=now - timedelta(hours=1),
            with_file=False,
        ),
    }
    names = {v: k for k, v in made.items()}
    body = api("olga").get(f"/api/logs/execution?sort={sort}").get_json()
    assert [names[i] for i in ids(body)] == expected


def test_filters(world, api):
    now = utcnow()
    a = world.run("olga", script="cleanup", duration=3, status="failed", with_file=False)
    b = world.run(
        "olga", project="olga_alpha", duration=100, start=now - timedelta(days=3), with_file=False
    )
    c = world.run("olga", status="running", with_file=False)
    olga = api("olga")

    def found(query: str) -> set[str]:
        response = olga.get(f"/api/logs/execution?{query}")
        assert response.status_code == 200, response.get_json()
        return set(ids(response.get_json()))

    assert found(f"script_id={world.scripts['cleanup']}") == {a}
    assert found(f"project_id={world.projects['olga_alpha']}") == {b}
    assert found("status=failed,running") == {a, c}
    assert found("min_duration=10") == {b}
    assert found("max_duration=10") == {a}
    day = (now - timedelta(days=3)).date().isoformat()
    assert found(f"date_from={day}&date_to={day}") == {b}
    assert found(f"date_from={(now - timedelta(days=1)).date().isoformat()}") == {a, c}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
        ("script_id=abc", "script_id"),
        ("date_from=yesterday", "date_from"),
        ("date_from=2026-02-02&date_to=2026-01-01", "date_from"),
        ("date_to=9999-12-31", "date_to"),
        ("date_from=2026-01-01T10:00:00%2B25:00", "date_from"),
        ("status=exploded", "status"),
        ("sort=size", "sort"),
        ("sort=user", "sort"),
        ("order=up", "order"),
        ("min_duration=9&max_duration=1", "min_duration"),
        ("q=---", "word"),
        ("q=" + "a" * 600, "longer"),
    ],
)
def test_bad_filters_are_400_with_a_message(world, api, query, words):
    response = api("olga").get(f"/api/logs/execution?{query}")
    assert response.status_code == 400
    assert words in response.get_json()["message"]


def test_by_script_and_by_project(world, api):
    a = world.run("olga", script="cleanup", with_file=False)
    b = world.run("olga", project="olga_alpha", with_file=False)
    world.run("ivan", script="cleanup", with_file=False)
    olga = api("olga")
    assert ids(olga.get(f"/api/logs/script/{world.scripts['cleanup']}").get_json()) == [a]
    assert ids(olga.get(f"/api/logs/project/{world.projects['olga_alpha']}").get_json()) == [b]
    assert olga.get("/api/logs/script/99999").status_code == 404
    assert olga.get(f"/api/logs/project/{world.projects['ivan_alpha']}").status_code == 404


def test_admin_sees_a_users_project_and_it_is_audited(world, api):
    b = world.run("olga", project="olga_alpha", with_file=False)
    response = api("root").get(f"/api/logs/project/{world.projects['olga_alpha']}")
    assert ids(response.get_json()) == [b]
    events = audit_actions(world.app, "logs_listed")
    assert events and events[-1]["admin"] and events[-1]["username"] == "root"


def test_admin_list_of_everyone_with_user_filter_is_audited(world, api):
    a = world.run("olga", with_file=False)
    b = world.run("ivan", with_file=False)
    root = api("root")
    everyone = root.get("/api/admin/logs/execution?sort=user&order=asc").get_json()
    assert ids(everyone) == [b, a]
    only = root.get(f"/api/admin/logs/execution?user_id={world.users['olga']}").get_json()
    assert ids(only) == [a]
    assert ids(root.get(f"/api/admin/logs/user/{world.users['ivan']}").get_json()) == [b]
    assert root.get("/api/admin/logs/user/99999").status_code == 404
    assert len(audit_actions(world.app, "logs_listed")) == 3
    assert api("olga").get("/api/admin/logs/execution").status_code == 403
