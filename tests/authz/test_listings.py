"""Lists, searches, stats and exports show a caller's own things only: a detail page that says
"not found" is no use if a list next to it names the object.

Every GET route without a path parameter is asked by the other users of each level (and by
``?all=1`` and the usual filters, which only admins may widen); none of ``operator``'s object
markers (run and session ids, project, preset and file names, share tokens) may appear.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.authz.conftest import World
from tests.authz.matrix import routes

OWNER = "operator"
STRANGERS = ("viewer", "operator2", "developer")
QUERIES = (
    "",
    "?all=1&project_id={project}&project={project}&group_id={group}&group={group}",
    "?user_id={owner_id}&user=operator",
    "?q=authz&search=authz",
)


def markers(world: World) -> dict[str, str]:
    """Strings that name ``operator``'s objects and nothing else."""
    found: dict[str, Any] = {
        "run": world.get("run", OWNER),
        "session": world.get("session", OWNER),
        "file": world.get("file", OWNER),
        "share token": world.get("share_token", OWNER),
    }
    for kind in ("preset", "log_preset", "schedule"):
        found[kind] = world.names[(kind, world.get(kind, OWNER))]
    for (kind, _), name in world.names.items():
        if kind == "project" and name in owned_projects(world):
            found[f"project {name}"] = name
    return {name: str(value) for name, value in found.items()}


def names(value: str, body: str) -> bool:
    """Does ``body`` mention ``value`` as a whole ("schedule 1" is not in "schedule 12")?"""
    return re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", body) is not None


def owned_projects(world: World) -> set[str]:
    rows = world.client(OWNER).get("/api/projects").get_json()["projects"]
    return {str(row.get("name") or row.get("project_name")) for row in rows}


def list_urls(world: World) -> list[str]:
    """Every GET route without a path parameter that answers JSON or a page about my things."""
    urls = []
    for key in routes(world.app):
        method, rule = key.split(" ", 1)
        if method == "GET" and "<" not in rule and rule not in ("/metrics", "/health"):
            urls.append(rule)
    return urls


@pytest.mark.parametrize("stranger", STRANGERS)
def test_no_list_names_another_users_objects(world: World, stranger: str) -> None:
    named = markers(world)
    owner_id = world.users[OWNER]
    project, group = world.project_of(OWNER), world.groups["data_processing"]
    client = world.client(stranger)
    leaks = []
    for url in list_urls(world):
        for query in QUERIES if url.startswith("/api/") else QUERIES[:2]:
            full = url + query.format(owner_id=owner_id, project=project, group=group)
            response = client.get(full)
            body = response.get_data(as_text=True)
            response.close()
            assert response.status_code < 500, (full, response.status_code)
            leaks += [f"{full}: {name}" for name, value in named.items() if names(value, body)]
    assert not leaks, "another user's objects listed:\n" + "\n".join(sorted(set(leaks)))


def test_the_owner_sees_them_listed(world: World) -> None:
    """The control: the same markers do show in the owner's own lists."""
    named = markers(world)
    client = world.client(OWNER)
    seen = set()
    for url in list_urls(world):
        body = client.get(url).get_data(as_text=True)
        seen |= {name for name, value in named.items() if names(value, body)}
    assert {"run", "session", "log_preset", "schedule"} <= seen, seen


def test_tags_and_favourites_are_personal(world: World) -> None:
    sid = world.scripts["unit_converter.py"]
    owner = world.client(OWNER)
    assert owner.put(f"/api/scripts/{sid}/tags", json={"tags": ["authzmine"]}).status_code == 200
    assert owner.put(f"/api/scripts/{sid}/favorite").status_code == 200
    assert "authzmine" in owner.get(f"/api/scripts/{sid}/tags").get_data(as_text=True)
    for stranger in ("operator2", "developer", "admin"):
        client = world.client(stranger)
        for url in (
            f"/api/scripts/{sid}/tags",
            "/api/user/tags",
            "/",
        ):
            body = client.get(url).get_data(as_text=True)
            assert "authzmine" not in body, (stranger, url)
        found = client.get("/api/scripts/search-tags?tags=authzmine&source=all").get_json()
        assert found["scripts"] == [], (stranger, found)
        favourites = client.get("/api/user/favorites").get_json()["favorites"]
        assert all(row["script_id"] != sid for row in favourites), (stranger, favourites)
    mine = owner.get("/api/user/favorites").get_json()["favorites"]
    assert [row["script_id"] for row in mine] == [sid]
