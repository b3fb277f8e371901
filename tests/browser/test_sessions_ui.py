"""Runs and sessions in the browser, on the in-memory FakeBackend and the shipped example groups.

The live server answers from a thread of this process, so the test drives the session monitor
(``tick``) itself while the page polls, the way the background monitor would.
"""

from __future__ import annotations

import re

import pytest

from manager.sessions.fake import FakeScript
from tests.support.catalog import group_id, script_id, tick

pytestmark = pytest.mark.browser

PROXY_URL = re.compile(r"/project/\d+/script/\d+/user/\d+/")


def tick_until(app, page, done, timeout_ms: int = 10_000) -> None:
    """Tick the monitor while the page polls, until ``done()`` holds."""
    waited = 0
    while not done():
        assert waited < timeout_ms, "the page never showed the expected state"
        tick(app)
        page.wait_for_timeout(250)
        waited += 250


def script_card(page, sid: int):
    return page.locator(f'[data-sm="script-card"][data-script-id="{sid}"]')


def run_with_parameters(page, card):
    """Run a script that requires parameters: the first press shows them, the second runs."""
    card.locator('[data-sm="run"]').click()
    card.locator("[id^=params-].collapse.show").wait_for()
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        card.locator('[data-sm="run"]').click()
    return answer.value


def dark(page) -> None:
    page.locator('[data-sm="theme-toggle"]').first.click()
    page.wait_for_function("document.documentElement.dataset.bsTheme === 'dark'")


def test_batch_run_shows_live_status_until_completed(
    ready_app, live_server, make_user, log_in, page, shot
):
    make_user("olga", "operator")
    log_in("olga")
    page.goto(f"{live_server}/groups/{group_id(ready_app, 'data_processing')}")
    card = script_card(page, script_id(ready_app, "unit_converter.py"))
    assert card.locator('[data-sm="recent-empty"]').is_visible()

    card.locator('[data-sm="run"]').click()
    assert "Check the parameters" in card.locator('[data-sm="run-alert"]').inner_text()
    card.locator("[id^=params-].collapse.show").wait_for()  # the first press shows the parameters
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        card.locator('[data-sm="run"]').click()
    assert answer.value.status == 201

    panel = card.locator('[data-sm="run-status"]')
    badge = panel.locator('[data-sm="status"]')
    badge.wait_for()
    assert badge.get_attribute("data-status") == "running"
    assert panel.locator('[data-sm="run-output"]').count() == 1, "the place for live output"
    shot("run-batch-running")

    tick_until(ready_app, page, lambda: badge.get_attribute("data-status") == "completed")
    assert badge.inner_text() == "Completed"
    assert panel.locator('[data-sm="run-exit-code"]').inner_text() == "0"
    assert panel.locator('[data-sm="run-stop"]').count() == 0, "no Stop once it has ended"
    row = card.locator('[data-sm="recent-list"] [data-sm="run-row"]')
    assert row.count() == 1
    assert row.locator('[data-sm="status"]').get_attribute("data-status") == "completed"
    assert not card.locator('[data-sm="recent-empty"]').is_visible()
    shot("run-batch-completed")

    page.reload()  # the run is now listed by the server too
    card = script_card(page, script_id(ready_app, "unit_converter.py"))
    assert "My recent runs in" in card.locator('[data-sm="recent-runs"]').inner_text()
    recent = card.locator('[data-sm="recent-list"] [data-sm="run-row"]')
    assert recent.count() == 1
    assert recent.locator('[data-sm="status"]').get_attribute("data-status") == "completed"
    dark(page)
    shot("run-batch-completed-dark")


def test_interactive_script_opens_in_a_new_tab(
    ready_app, fake, live_server, make_user, log_in, page, shot
):
    fake.program = FakeScript(exit_code=None, start_polls=1)
    make_user("olga", "operator")
    log_in("olga")
    page.goto(f"{live_server}/groups/{group_id(ready_app, 'engineering_tools')}")
    card = script_card(page, script_id(ready_app, "calculator.py"))
    # No parameter is required: one press opens it, with the defaults.
    with (
        page.context.expect_page() as opened,
        page.expect_response(lambda r: r.url.endswith("/execute")) as answer,
    ):
        card.locator('[data-sm="run"]').click()
    assert answer.value.status == 201
    tab = opened.value
    tab.wait_for_url(PROXY_URL)  # the proxy answers "starting": no container is behind it
    assert ".localhost:" in tab.url, "served on the session's own host"
    link = card.locator('[data-sm="run-open-link"]')
    link.wait_for()
    assert PROXY_URL.search(link.get_attribute("href"))
    assert "opens in a new tab" in card.locator('[data-sm="run-alert"]').inner_text()
    assert card.locator("[id^=params-].collapse.show").count() == 0
    assert card.locator('[data-sm="run-row"] [data-sm="run-open"]').count() == 1
    tab.close()
    shot("run-interactive")

    # Opening it again reuses the session, in a new tab again.
    with page.context.expect_page() as again:
        card.locator('[data-sm="run"]').click()
    again.value.wait_for_url(PROXY_URL)
    assert again.value.url == tab.url
    card.locator('[data-sm="run-alert"]', has_text="reused").wait_for()
    assert "reused" in card.locator('[data-sm="run-alert"]').inner_text()
    assert card.locator('[data-sm="run-row"]').count() == 1


def test_dashboard_lists_my_session_and_stop_ends_it(
    ready_app, fake, live_server, make_user, api, log_in, page, shot
):
    fake.program = FakeScript(exit_code=0, run_polls=1000)
    make_user("olga", "operator")
    started = api("olga").post(
        f"/api/scripts/{script_id(ready_app, 'unit_converter.py')}/execute", json={}
    )
    assert started.status_code == 201
    run_id = started.get_json()["execution_id"]
    log_in("olga")

    card = page.locator('[data-sm="my-sessions"]')
    row = card.locator(f'[data-sm="session"][data-execution-id="{run_id}"]')
    row.wait_for()
    assert row.locator('[data-sm="status"]').get_attribute("data-status") == "running"
    assert card.locator('[data-sm="session-count"]').inner_text() == "1"
    assert not row.locator('[data-sm="session-open"]').is_visible(), "a batch run has no page"
    shot("dashboard-sessions")
    dark(page)
    shot("dashboard-sessions-dark")

    with page.expect_response(lambda r: r.url.endswith(f"/api/sessions/{run_id}/stop")) as answer:
        row.locator('[data-sm="session-stop"]').click()
    assert answer.value.status == 200
    tick_until(ready_app, page, lambda: row.count() == 0)
    assert card.locator('[data-sm="sessions-none"]').is_visible()
    status = api("olga").get(f"/api/executions/{run_id}").get_json()["status"]
    assert status == "terminated"
    shot("dashboard-sessions-empty-dark")


def test_quota_refusal_is_shown(ready_app, fake, live_server, make_user, api, log_in, page, shot):
    ready_app.extensions["sm_sessions"].service.config.__dict__["max_per_user"] = 1
    fake.program = FakeScript(exit_code=0, run_polls=1000)
    make_user("olga", "operator")
    sid = script_id(ready_app, "unit_converter.py")
    assert api("olga").post(f"/api/scripts/{sid}/execute", json={}).status_code == 201
    log_in("olga")
    page.goto(f"{live_server}/groups/{group_id(ready_app, 'data_processing')}")
    card = script_card(page, sid)
    answer = run_with_parameters(page, card)
    assert answer.status == 429
    message = answer.json()["message"]
    quota = card.locator('[data-sm="run-quota"]')
    quota.wait_for()
    assert "Session limit reached" in quota.inner_text()
    assert message in quota.inner_text()
    shot("run-quota")


def test_admin_sees_every_session_and_kills_one(
    ready_app, fake, live_server, make_user, api, log_in, page, shot
):
    fake.program = FakeScript(exit_code=0, run_polls=1000)
    make_user("olga", "operator")
    make_user("ada", "admin")
    started = api("olga").post(
        f"/api/scripts/{script_id(ready_app, 'unit_converter.py')}/execute", json={}
    )
    run_id = started.get_json()["execution_id"]
    log_in("ada")
    page.click("text=Admin")
    page.click(".dropdown-menu >> text=Sessions")
    page.wait_for_url("**/admin/sessions")
    row = page.locator(f'[data-sm="session"][data-execution-id="{run_id}"]')
    row.wait_for()
    assert "olga" in row.inner_text()
    shot("admin-sessions")

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.url.endswith("/kill")) as answer:
        row.locator('[data-sm="session-kill"]').click()
    assert answer.value.status == 200
    tick_until(ready_app, page, lambda: row.count() == 0)
    assert page.locator('[data-sm="sessions-none"]').is_visible()
    container = next(c for c in fake.sessions.values() if c.spec.execution_uuid == run_id)
    assert container.stopped == "now", "killed at once, not asked to stop"
    status = api("olga").get(f"/api/executions/{run_id}").get_json()["status"]
    assert status in ("killed", "terminated")


def test_admin_environments_lists_base_with_its_state(
    ready_app, live_server, make_user, log_in, page, shot
):
    make_user("ada", "admin")
    log_in("ada")
    page.click("text=Admin")
    page.click(".dropdown-menu >> text=Environments")
    page.wait_for_url("**/admin/environments")
    row = page.locator('[data-sm="env"][data-name="base"]')
    row.wait_for(timeout=30_000)  # the list asks the Docker engine when there is one
    badge = row.locator('[data-sm="status"]')
    assert badge.get_attribute("data-status"), "the image state is shown"
    assert badge.inner_text().strip()
    assert row.locator('[data-sm="env-build"]').count() == 1
    shot("admin-environments")

    row.locator('[data-sm="env-details"]').click()
    spec = page.locator('[data-sm="env-details-spec"]')
    spec.wait_for(timeout=60_000)  # a built image is run once to list its packages
    assert "dependencies" in spec.inner_text()
    shot("admin-environment-details")
    page.keyboard.press("Escape")
    dark(page)
    shot("admin-environments-dark")


def test_admin_edits_group_limits(ready_app, live_server, make_user, log_in, api, page, shot):
    make_user("ada", "admin")
    gid = group_id(ready_app, "engineering_tools")
    log_in("ada")
    page.goto(f"{live_server}/groups/{gid}")
    assert page.locator('[data-sm="group-environment"]').inner_text().split()[-1] == "base"
    page.locator('[data-sm="group-limits"]').click()
    modal = page.locator("#sm-limits-modal")
    memory = modal.locator("#limit-memory")
    memory.wait_for()
    assert memory.input_value() == "256m", "the group's metadata.json says 256m"
    assert modal.locator("#limit-network").input_value() == "none"
    modal.locator('[data-sm="environment-fields"]').wait_for()
    shot("group-limits")

    memory.fill("12x")
    with page.expect_response(lambda r: r.url.endswith(f"/script-groups/{gid}/limits")) as answer:
        modal.locator('[data-sm="limits-save"]').click()
    assert answer.value.status == 400
    error = modal.locator('.sm-limit[data-limit="memory"] [data-sm-error]')
    error.wait_for()
    assert "memory" in error.inner_text()
    assert "is-invalid" in memory.get_attribute("class")
    shot("group-limits-error")

    memory.fill("1g")
    modal.locator("#limit-idle_timeout").fill("45m")
    with page.expect_navigation():
        modal.locator('[data-sm="limits-save"]').click()
    notice = page.locator("#sm-notices .alert", has_text="Limits saved.")
    notice.wait_for()
    notice.locator(".btn-close").click()
    effective = api("ada").get(f"/api/script-groups/{gid}/limits").get_json()["effective"]
    assert (effective["memory"], effective["idle_timeout"]) == ("1g", 2700)

    dark(page)
    page.locator('[data-sm="group-limits"]').click()
    memory.wait_for()
    assert memory.input_value() == "1g"
    edited = modal.locator('.sm-limit[data-limit="memory"] [data-sm="limit-edited"]')
    assert edited.is_visible(), "a value edited here is marked"
    assert modal.locator("#limit-idle_timeout").input_value() == "45m"
    assert modal.locator("#limit-run_timeout").input_value() == "4h", "14400 s, as people say it"
    shot("group-limits-dark")


def set_parameter(page, card, name: str, value: str) -> None:
    """Show the card's parameters and type ``value`` into parameter ``name``."""
    card.locator("[id^=params-].collapse").evaluate(
        "panel => bootstrap.Collapse.getOrCreateInstance(panel, {toggle: false}).show()"
    )
    card.locator("[id^=params-].collapse.show").wait_for()
    card.locator(f'.sm-param[data-param-name="{name}"] [data-sm-param]').fill(value)


def test_reopening_with_other_parameters_asks_restart_or_open(
    ready_app, fake, live_server, make_user, api, log_in, page, shot
):
    fake.program = FakeScript(exit_code=None)
    make_user("olga", "operator")
    log_in("olga")
    sid = script_id(ready_app, "calculator.py")
    page.goto(f"{live_server}/groups/{group_id(ready_app, 'engineering_tools')}")
    card = script_card(page, sid)
    with page.context.expect_page() as first_tab:
        card.locator('[data-sm="run"]').click()
    first_tab.value.close()
    first = api("olga").get("/api/active-proxies").get_json()["sessions"]
    assert len(first) == 1 and first[0]["parameters"]["precision"] == 6

    set_parameter(page, card, "precision", "9")
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        card.locator('[data-sm="run"]').click()
    assert answer.value.status == 409
    dialog = page.locator('[data-sm="conflict-modal"]')
    dialog.wait_for(state="visible")
    assert "precision" in dialog.locator('[data-sm="conflict-changed"]').inner_text()
    assert "other parameters" in dialog.inner_text()
    shot("run-conflict-dialog")
    page.evaluate(
        "document.documentElement.dataset.bsTheme = 'dark'"
    )  # the modal covers the toggle
    shot("run-conflict-dialog-dark")

    # Restart: the running one stops, a new one starts with precision 9, in a new tab.
    with (
        page.context.expect_page() as restarted_tab,
        page.expect_response(lambda r: r.url.endswith("/execute")) as restarted,
    ):
        dialog.locator('[data-sm="conflict-restart"]').click()
    assert restarted.value.status == 201
    assert restarted.value.request.post_data_json["on_conflict"] == "restart"
    restarted_tab.value.close()
    assert PROXY_URL.search(card.locator('[data-sm="run-open-link"]').get_attribute("href"))
    dialog.wait_for(state="hidden")
    tick(ready_app)
    live = api("olga").get("/api/active-proxies").get_json()["sessions"]
    assert len(live) == 1 and live[0]["execution_id"] != first[0]["execution_id"]
    assert live[0]["parameters"]["precision"] == 9
    assert (
        api("olga").get(f"/api/executions/{first[0]['execution_id']}").get_json()["status"]
        == "terminated"
    )

    # Open: nothing restarts; the running session opens as it is.
    set_parameter(page, card, "precision", "2")
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        card.locator('[data-sm="run"]').click()
    assert answer.value.status == 409
    dialog.wait_for(state="visible")
    with page.context.expect_page() as opened_tab:
        dialog.locator('[data-sm="conflict-open"]').click()
    opened_tab.value.close()
    dialog.wait_for(state="hidden")
    card.locator('[data-sm="run-alert"]', has_text="reused").wait_for()
    assert PROXY_URL.search(card.locator('[data-sm="run-open-link"]').get_attribute("href"))
    again = api("olga").get("/api/active-proxies").get_json()["sessions"]
    assert [s["execution_id"] for s in again] == [live[0]["execution_id"]]
    assert again[0]["parameters"]["precision"] == 9
