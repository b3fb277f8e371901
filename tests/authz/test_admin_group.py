"""Scripts and groups above the caller's level do not exist for the caller: every route that
names a script or a group answers 403/404 to a developer or operator asking about the
admin-only group (``system_admin``) or one of its scripts, however the route is spelled."""

from __future__ import annotations

import pytest

from tests.authz.conftest import ADMIN_GROUP, World
from tests.authz.matrix import accept_for, build_url, params_of, routes

ADMIN_SCRIPT = "system_report.py"
# Rows about the caller's own things, filtered by a script id: they name nothing of the script.
OWN_ONLY = {"GET /api/logs/script/<int:script_id>": "my runs of it (none): 200 with an empty list"}


def rows_naming_a_script_or_group(world: World) -> list[str]:
    return [
        key
        for key in routes(world.app)
        if {"script_id", "group_id"} & set(params_of(key)) and "/admin/" not in key
        and not key.startswith("PUT /api/script-groups/")  # admin-only rows, in the matrix
    ]  # fmt: skip


@pytest.mark.parametrize("caller", ["operator", "developer"])
def test_the_admin_group_is_not_found_below_admin(world: World, caller: str) -> None:
    overrides = {
        "script_id": str(world.scripts[ADMIN_SCRIPT]),
        "group_id": str(world.groups[ADMIN_GROUP]),
    }
    client = world.client(caller)
    wrong = []
    for key in rows_naming_a_script_or_group(world):
        method, rule = key.split(" ", 1)
        url = build_url(world, key, caller, overrides)
        response = client.client.open(
            url, method=method, json={} if method in ("POST", "PUT") else None,
            headers=client._headers(accept_for(rule)),
        )  # fmt: skip
        response.close()
        if key in OWN_ONLY:
            assert response.status_code == 200, (key, response.status_code)
        elif response.status_code not in (403, 404):
            wrong.append(f"{method} {url}: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_admins_see_the_admin_group(world: World) -> None:
    """The control: the same ids are real, and open to an admin."""
    admin = world.client("admin")
    sid, gid = world.scripts[ADMIN_SCRIPT], world.groups[ADMIN_GROUP]
    for url in (
        f"/api/scripts/{sid}/metadata",
        f"/groups/{gid}",
        f"/api/script-groups/{gid}/limits",
        f"/groups/{gid}/doc-images/authz.png",
        f"/scripts/{sid}/docs",
    ):
        assert admin.get(url).status_code == 200, url
