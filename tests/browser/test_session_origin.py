"""A script's page runs on a host of its own: opened by an admin in Chromium, it cannot act as
the admin. Real parts: ``scriptsmanager serve`` (gunicorn + gevent), Docker sessions with the
runner image, Debian's Chromium.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.serve import Server, docker_engine, login, script_ids, wait_status

pytestmark = [pytest.mark.browser, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-origin-{RUN}"
PREFIX = f"smtest-origin-{RUN}"
LAB = Path(__file__).resolve().parent / "lab_group"


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("origin")
    instance = Server(root, INSTANCE, PREFIX)
    shutil.copytree(LAB, root / "script_groups" / "lab")
    instance.start()
    yield instance
    instance.kill()


def open_session(server: Server, http: requests.Session, script_id: int) -> dict:
    opened = http.post(f"{server.url}/api/scripts/{script_id}/execute", json={})
    assert opened.status_code in (200, 201), opened.text  # 200: the open one, reused
    body = opened.json()
    wait_status(server, http, body["execution_id"], {"running"})
    return body


def accounts(server: Server, http: requests.Session) -> list[tuple]:
    users = http.get(f"{server.url}/api/admin/users").json()["users"]
    return sorted((u["username"], u["user_level"], u["is_active"], u["email"]) for u in users)


def browser_login(page, server: Server) -> None:
    from tests.support.serve import ADMIN_PASSWORD

    page.goto(f"{server.url}/login")
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.click('[data-sm="login-submit"]')


def test_hostile_page_opened_by_an_admin_achieves_nothing(server: Server, page) -> None:
    admin = login(server)
    ids = script_ids(server, admin)
    users_before = accounts(server, admin)
    tokens_before = admin.get(f"{server.url}/api/user/tokens").json()
    calculator = open_session(server, admin, ids["calculator.py"])
    hostile = open_session(server, admin, ids["hostile_page.py"])
    assert hostile["proxy_url"].startswith("http://p"), hostile["proxy_url"]
    assert ".localhost:" in hostile["proxy_url"]

    browser_login(page, server)
    page.goto(f"{hostile['proxy_url']}?other={calculator['proxy_url']}")
    page.wait_for_function(
        "document.getElementById('results').textContent !== 'running'", timeout=20_000
    )
    results = json.loads(page.locator("#results").inner_text())
    assert page.url.startswith(hostile["proxy_url"]), "served on the session's own host"
    # Same origin is the session host: the manager's API is not there.
    assert results["same_origin_csrf"] == 404
    assert results["same_origin_admin_users"] == 404
    # The manager's origin lets the page read nothing and do nothing.
    for name in ("manager_user", "manager_csrf", "manager_admin_logs", "other_session"):
        assert str(results[name]).startswith("blocked"), (name, results[name])
    assert results["cookies"] == "", "no cookie of the manager or the session host is readable"
    assert str(results["frame_manager"]).startswith("blocked"), results["frame_manager"]

    # The admin's account is unchanged: no user, no token was created.
    assert accounts(server, admin) == users_before
    assert admin.get(f"{server.url}/api/user/tokens").json() == tokens_before
    assert admin.get(f"{server.url}/api/auth/user").json()["user"]["username"] == "admin"

    # The calculator still works through its own host, in the same browser.
    page.goto(calculator["proxy_url"])
    assert page.url.startswith(calculator["proxy_url"])
    assert "<html" in page.content().lower()


def test_session_host_cookie_is_for_one_session_only(server: Server, engine) -> None:
    admin = login(server)
    ids = script_ids(server, admin)
    first = open_session(server, admin, ids["calculator.py"])
    second = open_session(server, admin, ids["hostile_page.py"])
    assert admin.get(first["proxy_url"]).status_code == 200
    host_a = first["proxy_url"].split("/")[2].split(":")[0]
    cookie_a = next(c.value for c in admin.cookies if c.name == "sm_host" and c.domain == host_a)

    def anonymous_get(url: str, cookie: str) -> requests.Response:
        return requests.get(
            url, headers={"Cookie": cookie, "Accept": "application/json"}, allow_redirects=False
        )

    assert anonymous_get(first["proxy_url"], f"sm_host={cookie_a}").status_code == 200
    assert anonymous_get(second["proxy_url"], f"sm_host={cookie_a}").status_code == 401
    on_manager = anonymous_get(f"{server.url}/api/auth/user", f"sm_host={cookie_a}")
    assert on_manager.status_code == 401
    renamed = anonymous_get(f"{server.url}/api/auth/user", f"sm_session={cookie_a}")
    assert renamed.status_code == 401

    # The session's end revokes the cookie: a new session of the same script needs a new ticket.
    admin.post(f"{server.url}/api/sessions/{first['execution_id']}/stop")
    wait_status(server, admin, first["execution_id"], {"terminated"})
    again = open_session(server, admin, ids["calculator.py"])
    assert again["proxy_url"] == first["proxy_url"], "same user, script and project: same host"
    stale = anonymous_get(again["proxy_url"], f"sm_host={cookie_a}")
    assert stale.status_code == 401
    page = admin.get(again["proxy_url"])  # through the manager for a fresh ticket
    assert page.status_code == 200


def open_from_group_page(page, server: Server, admin: requests.Session, group: str, filename: str):
    """Press Run on a script's card; returns the tab its interface opens in."""
    groups = admin.get(f"{server.url}/api/script-groups").json()["groups"]
    group_id = next(g["id"] for g in groups if Path(g["directory"]).name == group)
    ids = script_ids(server, admin)
    page.goto(f"{server.url}/groups/{group_id}")
    card = page.locator(f'[data-sm="script-card"][data-script-id="{ids[filename]}"]')
    with page.context.expect_page() as opened:
        card.locator('[data-sm="run"]').click()
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def test_examples_and_a_multi_page_app_work_on_their_session_hosts(server: Server, page) -> None:
    """Opened from the group page in Chromium: the calculator and an ordinary multi-page Flask
    app (forms, the app's own session, redirects, url_for, a stylesheet, JSON, a download, a
    streamed response) work unchanged on their own hosts."""
    admin = login(server)
    browser_login(page, server)
    calc = open_from_group_page(page, server, admin, "engineering_tools", "calculator.py")
    calc.wait_for_url("**/project/*/script/*/user/*/**", timeout=20_000)
    assert ".localhost:" in calc.url and not calc.url.startswith(server.url)
    calc.fill("#expression", "6*7")
    calc.press("#expression", "Enter")
    calc.locator("#result", has_text="42").wait_for(timeout=10_000)
    calc.close()

    app = open_from_group_page(page, server, admin, "lab", "multipage.py")
    app.locator("#title", has_text="Home").wait_for(timeout=20_000)
    origin = app.url.split("/project/")[0]
    assert ".localhost:" in origin
    app.wait_for_load_state("load")
    color = app.evaluate("getComputedStyle(document.getElementById('title')).color")
    assert color == "rgb(1, 2, 3)", "the stylesheet from url_for loads on the session host"
    app.click("#to-form")
    app.fill("#name", "Ada")
    app.click("#send")
    app.locator("#title", has_text="Thanks, Ada").wait_for()
    assert app.url.startswith(origin) and app.url.endswith("/thanks")
    app.click("#home")
    assert app.locator("#name").inner_text() == "Ada", "the app's own session cookie works"
    visits = int(app.locator("#visits").inner_text())
    app.reload()
    assert int(app.locator("#visits").inner_text()) == visits + 1
    total = app.evaluate(
        """async () => (await (await fetch('api/sum', {method: 'POST',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({numbers: [1, 2, 39]})})).json()).sum"""
    )
    assert total == 42
    streamed = app.evaluate("async () => (await fetch('stream')).text()")
    assert streamed == "part 0\npart 1\npart 2\n"
    with app.expect_download() as download:
        app.click("#download")
    assert download.value.suggested_filename == "report.csv"
    assert Path(download.value.path()).read_bytes() == b"a,b\n1,2\n"
