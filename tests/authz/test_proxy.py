"""The proxy and the session hosts × callers, in the app itself (real resolver, sessions of the
FakeBackend; nothing listens behind them, so a caller let through gets 502, never 401/403).

On the manager's origin ``/project/<p>/script/<s>/user/<u>/`` hands the owner (or an admin)
a single-use ticket into the session's own host; the session host turns it into a cookie for
that session only. ``tests/proxy/`` covers the same with real servers and upstreams.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.authz.conftest import World

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
LET_THROUGH = (502, 503)  # the session answers nothing: what a caller let in sees here


def session_of(world: World, owner: str) -> tuple[int, int, int]:
    """(project, script, user) of ``owner``'s interactive session."""
    run = world.get("session", owner)
    body = world.client(owner).get(f"/api/executions/{run}").get_json()
    return int(body["project_id"]), int(body["script_id"]), world.users[owner]


def prefix(ids: tuple[int, int, int]) -> str:
    return "/project/{}/script/{}/user/{}".format(*ids)


def host(ids: tuple[int, int, int]) -> str:
    return "p{}-s{}-u{}.localhost".format(*ids)


def enter(world: World, caller: str, ids: tuple[int, int, int]) -> Any:
    client = world.client(caller)
    return client.get(prefix(ids) + "/", headers=HTML)


def ticket_of(response: Any) -> str:
    location = response.headers["Location"]
    return parse_qs(urlsplit(location).query)["ticket"][0]


def host_cookie(world: World, owner: str, ids: tuple[int, int, int]) -> str:
    """The ``sm_host`` cookie ``owner`` gets on the session host by spending a ticket."""
    entry = enter(world, owner, ids)
    assert entry.status_code == 302, entry.get_data()
    client = world.app.test_client()
    spent = client.get(
        f"http://{host(ids)}/__sm/enter?ticket={ticket_of(entry)}&next={prefix(ids)}/"
    )
    assert spent.status_code == 302, spent.get_data()
    cookie = spent.headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("sm_host=")
    return cookie


@pytest.mark.parametrize(
    ("caller", "html", "json"),
    [
        (None, 302, 401),
        ("viewer", 403, 403),
        ("operator", 302, 302),  # the owner: a ticket into the session's host
        ("operator2", 403, 403),
        ("developer", 403, 403),
        ("admin", 302, 302),  # admins may inspect
    ],
)
def test_entry_on_the_managers_origin(world: World, caller: str | None, html: int, json: int):
    ids = session_of(world, "operator")
    client = world.client(caller)
    page = client.get(prefix(ids) + "/", headers=HTML)
    assert page.status_code == html, page.get_data()[:300]
    data = client.get(prefix(ids) + "/x", headers=JSON)
    assert data.status_code == json, data.get_data()[:300]
    if html == 302:
        location = page.headers["Location"]
        if caller is None:
            assert location.startswith("/login?next=")
        else:
            assert location.startswith(f"http://{host(ids)}/__sm/enter?ticket=")


def test_spelling_the_url_differently_reaches_no_one_elses_session(world: World) -> None:
    project, script, owner = session_of(world, "operator")
    me = world.users["operator2"]
    caller = world.client("operator2")
    refused = (403, 404, 400)
    for url in (
        f"/project/{project}/script/{script}/user/{me}/",  # my id on their session: none
        f"/project/{project:06d}/script/{script:04d}/user/{owner:05d}/",
        f"/project/{project}/script/{script}/user/{owner}/../../../../../api/auth/user",
        f"/project/{project}/script/{script}/user/{owner}%2F",
        f"/project/{project}%2Fscript%2F{script}%2Fuser%2F{owner}/",
        f"/project/{project}/script/{script}/user/{owner}/%2e%2e/%2e%2e/",
        f"/project/{project}/script/{script}/user/{owner}//",
        f"/project/{project}/script/{script}/user/+{owner}/",
    ):
        for accept in (HTML, JSON):
            response = caller.get(url, headers=accept)
            assert response.status_code in refused, (url, response.status_code)
            assert "ticket=" not in response.headers.get("Location", ""), url


def test_session_host_lets_in_only_its_own_cookie(world: World) -> None:
    mine = session_of(world, "operator")
    theirs = session_of(world, "operator2")
    cookie = host_cookie(world, "operator", mine)
    anonymous = world.app.test_client(use_cookies=False)  # sends the Cookie header given
    on = f"http://{host(mine)}{prefix(mine)}/echo"
    assert anonymous.get(on, headers=JSON).status_code == 401
    assert anonymous.get(on, headers={**JSON, "Cookie": cookie}).status_code in LET_THROUGH
    # The same cookie on another user's session host (or its path on mine) is nobody's.
    elsewhere = f"http://{host(theirs)}{prefix(theirs)}/echo"
    assert anonymous.get(elsewhere, headers={**JSON, "Cookie": cookie}).status_code == 401
    crossed = f"http://{host(mine)}{prefix(theirs)}/echo"
    assert anonymous.get(crossed, headers={**JSON, "Cookie": cookie}).status_code in (401, 404)
    # The manager's own cookie does not open a session host, nor the manager's API there.
    manager_cookie = "; ".join(
        f"{c.key}={c.value}" for c in world.client("operator").client._cookies.values()
    )
    assert anonymous.get(on, headers={**JSON, "Cookie": manager_cookie}).status_code == 401
    api = anonymous.get(f"http://{host(mine)}/api/auth/user", headers={**JSON, "Cookie": cookie})
    assert api.status_code in (401, 404)


def test_tickets_are_for_one_session_and_one_use(world: World) -> None:
    mine = session_of(world, "operator")
    theirs = session_of(world, "operator2")
    ticket = ticket_of(enter(world, "operator", mine))
    anonymous = world.app.test_client(use_cookies=False)  # sends the Cookie header given
    on_theirs = f"http://{host(theirs)}/__sm/enter?ticket={ticket}&next={prefix(theirs)}/"
    assert anonymous.get(on_theirs).status_code == 403
    made_up = f"http://{host(mine)}/__sm/enter?ticket=not-a-ticket&next={prefix(mine)}/"
    assert anonymous.get(made_up).status_code == 403
    good = f"http://{host(mine)}/__sm/enter?ticket={ticket}&next={prefix(mine)}/"
    assert anonymous.get(good).status_code == 302
    assert anonymous.get(good).status_code == 403  # spent
