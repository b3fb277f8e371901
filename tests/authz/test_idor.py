"""IDOR variants refused in review stay refused: another user's ids swapped in (in the path and
in the body), ``%2F``, ``..``, double encoding, trailing slashes, zero-padded ids.

The caller is ``operator2``; the objects are ``operator``'s (an operator of the same level).
Whatever the spelling, the answer is a refusal (4xx) and none of the owner's data comes back.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.authz.conftest import (
    ADMIN_GROUP,
    BATCH_SCRIPT,
    DATA_GROUP,
    SCHEDULE_SCRIPT,
    SESSION_SCRIPT,
    World,
)

OWNER, CALLER = "operator", "operator2"
REFUSED = (400, 403, 404, 405)


def variants_of(value: str) -> list[str]:
    """Spellings of one path segment that a lax router or a normalising proxy might accept."""
    found = [value, f"{value}/", f"{value}%2F", f"{value}/.", f"./{value}", f"%2e/{value}"]
    if value.isdigit():
        found += [value.zfill(6), f"+{value}", f"{value}.0", f"%3{value[0]}{value[1:]}"]
    return found


def secret_of(world: World) -> bytes:
    return b"secret of " + OWNER.encode()


def assert_refused(world: World, response: Any, what: str) -> None:
    body = response.get_data()
    assert response.status_code in REFUSED, (what, response.status_code, body[:300])
    assert secret_of(world) not in body, what


def object_urls(world: World) -> list[tuple[str, str]]:
    """(url template with {id}, the owner's id) for every kind of owned object."""
    run = world.get("run", OWNER)
    return [
        ("/api/executions/{id}", run),
        ("/api/executions/{id}/artifacts", run),
        ("/api/logs/execution/{id}", run),
        ("/api/logs/execution/{id}/download", run),
        ("/logs/{id}", run),
        ("/api/schedules/{id}", str(world.get("schedule", OWNER))),
        ("/api/logs/project/{id}", str(world.project_of(OWNER))),
        (
            f"/api/data/{world.groups[DATA_GROUP]}/{{id}}/files",
            str(world.project_of(OWNER)),
        ),
    ]


def test_swapped_ids_in_every_spelling_are_refused(world: World) -> None:
    caller = world.client(CALLER)
    owner = world.client(OWNER)
    for template, value in object_urls(world):
        assert owner.get(template.format(id=value)).status_code == 200, template  # it exists
        for spelling in variants_of(value):
            url = template.format(id=spelling)
            response = caller.get(url, follow_redirects=True)
            assert_refused(world, response, url)


def test_foreign_files_by_traversal_and_encoding_are_refused(world: World) -> None:
    """operator2's own project as the base, operator's file as the goal."""
    gid = world.groups[DATA_GROUP]
    mine, theirs = world.project_of(CALLER), world.project_of(OWNER)
    path = str(world.get("file", OWNER))
    assert world.client(OWNER).get(f"/api/data/{gid}/{theirs}/{path}").status_code == 200
    caller = world.client(CALLER)
    climbs = [
        f"../{theirs}/{path}",
        f"..%2F{theirs}%2F{path}",
        f"%2e%2e/{theirs}/{path}",
        f"%2e%2e%2f{theirs}%2f{path}",
        f"%252e%252e%252f{theirs}%252f{path}",
        f"..%252F{theirs}%252F{path}",
        f"....//{theirs}/{path}",
        f"..\\{theirs}\\{path}",
        f"%2F{path}",
        f"/{path}",
        f"./../{theirs}/{path}",
        f"../../{world.users[OWNER]}/{theirs}/{path}",
    ]
    for climb in climbs:
        for method in ("GET", "DELETE"):
            url = f"/api/data/{gid}/{mine}/{climb}"
            response = caller.client.open(
                url, method=method, headers=caller._headers(None), follow_redirects=True
            )
            assert_refused_or_absent(world, response, f"{method} {url}")
    # The owner's file is still there, unchanged.
    kept = world.client(OWNER).get(f"/api/data/{gid}/{theirs}/{path}")
    assert kept.status_code == 200 and kept.get_data() == secret_of(world)


def assert_refused_or_absent(world: World, response: Any, what: str) -> None:
    """A path that climbs out is refused; one that stays inside finds nothing (404)."""
    assert_refused(world, response, what)


def test_a_path_into_another_group_is_refused(world: World) -> None:
    """Doc images and examples of a group the caller may not see, reached from one it may."""
    gid = world.groups[DATA_GROUP]
    caller = world.client(CALLER)
    assert caller.get(f"/groups/{gid}/doc-images/authz.png").status_code == 200
    for leaf in ("doc-images", "examples"):
        for climb in (
            f"../../{ADMIN_GROUP}/docs/authz.png",
            f"..%2F..%2F{ADMIN_GROUP}%2Fdocs%2Fauthz.png",
            f"%252e%252e%252f%252e%252e%252f{ADMIN_GROUP}%252fdocs%252fauthz.png",
            f"/{ADMIN_GROUP}/docs/authz.png",
            "../metadata.json",
            "..%2Fmetadata.json",
        ):
            url = f"/groups/{gid}/{leaf}/{climb}"
            response = caller.get(url, follow_redirects=True)
            assert response.status_code in REFUSED, (url, response.status_code)
    admin_gid = world.groups[ADMIN_GROUP]
    for spelling in variants_of(str(admin_gid)):
        url = f"/groups/{spelling}/doc-images/authz.png"
        assert caller.get(url, follow_redirects=True).status_code in REFUSED, url


def test_static_files_stay_inside_their_folder(world: World) -> None:
    client = world.client(None)
    for climb in ("../web.py", "..%2Fweb.py", "%2e%2e/web.py", "%252e%252e%252fweb.py"):
        for prefix in ("/static/", "/static/css/", "/bootstrap/static/", "/api/openapi-static/"):
            response = client.get(prefix + climb, follow_redirects=True)
            assert response.status_code in REFUSED, (prefix + climb, response.status_code)
            assert b"create_app" not in response.get_data()


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (f"/api/scripts/{{{BATCH_SCRIPT}}}/execute", {"project_id": "{project}"}),
        (f"/api/scripts/{{{SESSION_SCRIPT}}}/proxy-access", {"project_id": "{project}"}),
        (f"/api/scripts/{{{BATCH_SCRIPT}}}/presets", {"name": "x", "project_id": "{project}"}),
        ("/api/schedules", {"script_id": f"{{{SCHEDULE_SCRIPT}}}", "project_id": "{project}"}),
        ("/api/projects/{project}/set-active", {}),
        ("/api/logs/bulk", {"action": "delete", "execution_ids": ["{run}"]}),
        ("/api/logs/bulk", {"action": "export", "execution_ids": ["{run}"]}),
    ],
    ids=["execute", "proxy-access", "preset", "schedule", "set-active", "bulk-delete", "export"],
)
def test_another_users_ids_in_the_body_are_refused(world: World, url: str, body: dict) -> None:
    """Create or act in someone else's project, or on their runs, by naming their ids."""
    values: dict[str, Any] = {name: sid for name, sid in world.scripts.items()}
    values["project"] = world.project_of(OWNER)
    run = world.get("run", OWNER)
    values["run"] = run

    def fill(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return values[value[1:-1]]
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    sent = {key: fill(value) for key, value in body.items()}
    if url == "/api/schedules":
        sent.update({"cron": "0 6 * * *", "timezone": "UTC", "parameters": {"steps": 1}})
    target = url
    for name, value in values.items():
        target = target.replace("{" + name + "}", str(value))
    response = world.client(CALLER).post(target, json=sent)
    if target == "/api/logs/bulk":
        # Bulk answers for what it found: someone else's run is "not found", and nothing else.
        assert response.status_code in (200, *REFUSED), response.get_data()
        if response.status_code == 200 and response.mimetype == "application/json":
            report = response.get_json()
            assert report.get("not_found") == [run], report
            assert run not in str(report.get("execution_ids", [])), report
        else:
            assert response.status_code in REFUSED or run.encode() not in response.get_data()
    else:
        assert_refused(world, response, target)
    if body.get("project_id") == "{project}":  # the control: the caller's own project works
        own = {**sent, "project_id": world.fresh("project", CALLER)}
        if "name" in own:
            own["name"] = f"own-{next(world.counter)}"
        control = world.client(CALLER).post(target, json=own)
        assert control.status_code in (200, 201), control.get_data()
    # The run is still there for its owner.
    assert world.client(OWNER).get(f"/api/logs/execution/{run}").status_code == 200


def test_a_shared_preset_runs_in_my_project_and_stays_its_owners(world: World) -> None:
    """A preset a developer shares may be used by others, in their own project only."""
    sharer = "developer"
    sid = world.scripts[BATCH_SCRIPT]
    theirs = world.fresh("project", sharer)
    made = world.client(sharer).post(
        f"/api/scripts/{sid}/presets",
        json={"name": f"shared-{next(world.counter)}", "parameters": {}, "shared": True,
              "project_id": theirs},
    )  # fmt: skip
    assert made.status_code == 201, made.get_json()
    preset = made.get_json().get("id") or made.get_json()["preset"]["id"]
    caller = world.client(CALLER)
    started = caller.post(f"/api/presets/{preset}/run", json={})
    assert started.status_code == 201, started.get_json()
    run = started.get_json()["execution_id"]
    detail = caller.get(f"/api/executions/{run}").get_json()
    assert detail["project_id"] == world.project_of(CALLER) != theirs
    # Naming the owner's project outright is refused like any other foreign project.
    forced = caller.post(f"/api/presets/{preset}/run", json={"project_id": theirs})
    assert_refused(world, forced, "run a shared preset in its owner's project")
    # Using is not owning: no edit, no delete.
    assert caller.put(f"/api/presets/{preset}", json={"name": "mine now"}).status_code in REFUSED
    assert caller.delete(f"/api/presets/{preset}").status_code in REFUSED
    kept = world.client(sharer).put(f"/api/presets/{preset}", json={"name": "still mine"})
    assert kept.status_code == 200, kept.get_json()


def test_an_admin_editing_a_schedule_cannot_point_it_at_another_project(world: World) -> None:
    """A schedule runs as its owner: an admin's edit names the owner's projects only."""
    schedule = world.fresh("schedule", OWNER)
    admin = world.client("admin")
    moved = admin.put(f"/api/schedules/{schedule}", json={"project_id": world.project_of("admin")})
    assert moved.status_code in REFUSED, moved.get_json()
    crossed = admin.put(f"/api/schedules/{schedule}", json={"project_id": world.project_of(CALLER)})
    assert crossed.status_code in REFUSED, crossed.get_json()
    # The owner's own other project is fine, by the admin too (the control).
    fine = admin.put(
        f"/api/schedules/{schedule}", json={"project_id": world.fresh("project", OWNER)}
    )
    assert fine.status_code == 200, fine.get_json()
