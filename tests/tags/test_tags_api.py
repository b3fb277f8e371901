"""Personal tags: set and read them, the seed's limits, search with AND/OR, my tags, refusals."""

from __future__ import annotations


def test_put_and_get_merges_system_and_personal_tags(world, api):
    alice = api("operator")
    sid = world["scripts"]["csv_summary.py"]
    response = alice.put(f"/api/scripts/{sid}/tags", json={"tags": ["Daily", "report", "daily "]})
    assert response.status_code == 200, response.get_json()
    body = alice.get(f"/api/scripts/{sid}/tags").get_json()
    assert body["user_tags"] == ["daily", "report"]
    assert body["system_tags"][:3] == ["csv", "statistics", "report"]
    sources = {t["name"]: t["source"] for t in body["tags"]}
    assert sources["csv"] == "system" and sources["report"] == "both"
    assert sources["daily"] == "user"
    # a comma-separated text works too; an empty list removes them
    alice.put(f"/api/scripts/{sid}/tags", json={"tags": "weekly, ops"})
    assert alice.get(f"/api/scripts/{sid}/tags").get_json()["user_tags"] == ["weekly", "ops"]
    alice.put(f"/api/scripts/{sid}/tags", json={"tags": []})
    assert alice.get(f"/api/scripts/{sid}/tags").get_json()["user_tags"] == []


def test_tags_are_personal(world, api):
    sid = world["scripts"]["csv_summary.py"]
    api("operator").put(f"/api/scripts/{sid}/tags", json={"tags": ["mine"]})
    other = api("developer").get(f"/api/scripts/{sid}/tags").get_json()
    assert other["user_tags"] == []


BAD_TAGS = [
    ([f"t{i}" for i in range(21)], "at most 20"),
    (["x" * 31], "at most 30"),
    (["bad tag"], "letters, digits, underscores (_) and dashes (-)"),
    (["semi;colon"], "';'"),
    ([3], "must be text"),
    ({"a": 1}, "list of text"),
]


def test_limits_give_a_clear_400(world, api):
    sid = world["scripts"]["csv_summary.py"]
    client = api("operator")
    assert client.put(f"/api/scripts/{sid}/tags", json={"tags": [f"t{i}" for i in range(20)]})
    for tags, message in BAD_TAGS:
        response = client.put(f"/api/scripts/{sid}/tags", json={"tags": tags})
        assert response.status_code == 400, tags
        assert message in response.get_json()["message"]
    assert client.put(f"/api/scripts/{sid}/tags", json={}).status_code == 400


def test_limits_follow_the_settings(world, app, api):
    app.config.update(
        SM_MAX_TAGS_PER_SCRIPT=2, SM_MAX_TAG_LENGTH=4, SM_ALLOWED_TAG_CHARS="alphanumeric"
    )
    sid = world["scripts"]["csv_summary.py"]
    client = api("operator")
    assert client.put(f"/api/scripts/{sid}/tags", json={"tags": ["a", "b"]}).status_code == 200
    assert client.put(f"/api/scripts/{sid}/tags", json={"tags": ["a", "b", "c"]}).status_code == 400
    assert client.put(f"/api/scripts/{sid}/tags", json={"tags": ["abcde"]}).status_code == 400
    dashed = client.put(f"/api/scripts/{sid}/tags", json={"tags": ["a-b"]})
    assert dashed.status_code == 400 and "letters and digits" in dashed.get_json()["message"]
    # letters of any alphabet count as letters
    assert client.put(f"/api/scripts/{sid}/tags", json={"tags": ["año"]}).status_code == 200


def test_search_and_or_and_my_tags(world, api):
    client = api("operator")
    csv, units = world["scripts"]["csv_summary.py"], world["scripts"]["unit_converter.py"]
    client.put(f"/api/scripts/{csv}/tags", json={"tags": ["daily", "ops"]})
    client.put(f"/api/scripts/{units}/tags", json={"tags": ["daily"]})
    both = client.get("/api/scripts/search-tags?tags=daily,ops&match=all").get_json()
    assert [s["id"] for s in both["scripts"]] == [csv]
    either = client.get("/api/scripts/search-tags?tags=ops,conversion&match=any").get_json()
    assert {s["id"] for s in either["scripts"]} == {csv, units}
    only_mine = client.get("/api/scripts/search-tags?tags=conversion&source=user").get_json()
    assert only_mine["scripts"] == []
    mine = client.get("/api/user/tags").get_json()["tags"]
    assert mine == [{"tag": "daily", "count": 2}, {"tag": "ops", "count": 1}]
    suggested = client.get("/api/user/tags?q=o").get_json()["tags"]
    assert suggested == [{"tag": "ops", "count": 1}]


BAD_SEARCHES = [
    ("", "at least one tag"),
    ("?tags=a&match=both", "'match' must be"),
    ("?tags=a&source=others", "'source' must be"),
    ("?tags=" + ",".join(f"t{i}" for i in range(21)), "at most 20"),
]


def test_bad_searches_and_level(world, api):
    client = api("operator")
    for query, message in BAD_SEARCHES:
        response = client.get(f"/api/scripts/search-tags{query}")
        assert response.status_code == 400
        assert message in response.get_json()["message"]
    found = client.get("/api/scripts/search-tags?tags=report").get_json()["scripts"]
    assert world["scripts"]["system_report.py"] not in {s["id"] for s in found}
    found = api("admin").get("/api/scripts/search-tags?tags=report").get_json()["scripts"]
    assert world["scripts"]["system_report.py"] in {s["id"] for s in found}


def test_refusals(world, api, app):
    admin_only = world["scripts"]["system_report.py"]
    operator = api("operator")
    assert operator.get(f"/api/scripts/{admin_only}/tags").status_code == 404
    assert operator.put(f"/api/scripts/{admin_only}/tags", json={"tags": ["x"]}).status_code == 404
    anonymous = api()
    assert anonymous.get("/api/user/tags").status_code == 401
    assert anonymous.put(f"/api/scripts/{admin_only}/tags", json={"tags": ["x"]}).status_code in (
        400,
        401,
    )
    app.config["SM_ENABLE_TAG_SUGGESTIONS"] = False
    assert operator.get("/api/user/tags?q=a").status_code == 404
    # a viewer does not see operator scripts at all
    sid = world["scripts"]["csv_summary.py"]
    assert api("viewer").put(f"/api/scripts/{sid}/tags", json={"tags": ["x"]}).status_code == 404
