"""Chromium: favourites, my tags and their filter, presets on the group page; the dashboard's
sections; the schedules page for operators and its refusal for viewers."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def card(page, script_id: int):
    return page.locator(f'[data-sm="script-card"][data-script-id="{script_id}"]')


def test_star_tags_and_dashboard(page, live_server, make_user, catalog, log_in, shot):
    make_user("olivia", "operator")
    log_in("olivia")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    report = card(page, catalog["report"])
    report.locator('[data-sm="favorite"]').click()
    page.wait_for_selector(
        f'[data-sm="favorite"][data-script-id="{catalog["report"]}"][aria-pressed="true"]'
    )

    report.locator('[data-sm="edit-tags"]').click()
    editor = report.locator('[data-sm="tag-editor"]')
    editor.locator("input").fill("weekly, bad tag")
    editor.locator('[data-sm="save-tags"]').click()
    error = editor.locator('[data-sm="tag-error"]')
    error.wait_for(state="visible")
    assert "letters, digits, underscores" in error.inner_text()
    editor.locator("input").fill("Weekly, ops")
    with page.expect_navigation():
        editor.locator('[data-sm="save-tags"]').click()
    mine = card(page, catalog["report"]).locator('[data-sm="user-tag"]')
    assert [t.strip() for t in mine.all_inner_texts()] == ["weekly", "ops"]
    page.select_option('[data-sm="filter-tag"]', "weekly")
    assert page.locator('[data-sm="script-card"]:visible').count() == 1
    shot("group-my-tags")

    page.goto(f"{live_server}/")
    favourites = page.locator('[data-sm="favorite-item"]')
    assert favourites.count() == 1 and "Make report" in favourites.inner_text()
    assert page.locator('[data-sm="status-database"]').get_attribute("data-status") == "ok"
    assert page.locator('[data-sm="recent-empty"]').is_visible()
    shot("dashboard-personal")


def test_presets_save_and_fill_without_secrets(page, live_server, make_user, catalog, log_in):
    make_user("olivia", "operator")
    log_in("olivia")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    report = card(page, catalog["report"])
    report.locator('[data-bs-toggle="collapse"]').click()
    report.locator('[data-param-name="count"] input').fill("7")
    report.locator('[data-param-name="token"] input').fill("s3cret")
    page.once("dialog", lambda dialog: dialog.accept("seven"))
    report.locator('[data-sm="preset-save"]').click()
    notice = page.locator("#sm-notices .alert")
    notice.first.wait_for()
    assert "token" in notice.first.inner_text()
    select = report.locator('[data-sm="preset-select"]')
    page.wait_for_function(
        "id => document.querySelector(`#preset-${id}`).options.length === 2", arg=catalog["report"]
    )
    report.locator('[data-param-name="count"] input').fill("2")
    select.select_option(label="seven")
    assert report.locator('[data-param-name="count"] input').input_value() == "7"
    # saved again under its name: the preset is updated, not doubled
    report.locator('[data-param-name="count"] input').fill("5")
    page.once("dialog", lambda dialog: dialog.accept(dialog.default_value))
    is_update = lambda r: r.request.method == "PUT" and "/api/presets/" in r.url  # noqa: E731
    with page.expect_response(is_update) as update:
        report.locator('[data-sm="preset-save"]').click()
    assert update.value.status == 200
    page.wait_for_function(
        "id => document.querySelector(`#preset-${id}`).value !== ''", arg=catalog["report"]
    )
    assert select.locator("option").count() == 2
    report.locator('[data-param-name="count"] input').fill("2")
    select.select_option("")
    select.select_option(label="seven")
    assert report.locator('[data-param-name="count"] input').input_value() == "5"


def test_schedules_page(page, live_server, make_user, catalog, log_in, shot):
    page.set_default_timeout(30_000)  # three saves, each a request and a reload, on a busy host
    make_user("olivia", "operator")
    log_in("olivia")
    with page.expect_navigation():  # until the page's script ran: "New" opens the form by it
        page.click('[data-sm="nav-schedules"]')
    page.click('[data-sm="schedule-new"]')
    form = page.locator('[data-sm="schedule-form"]')
    form.locator('[name="name"]').fill("Nightly cleanup")
    form.locator('[name="script_id"]').select_option(str(catalog["cleanup"]))
    form.locator('[name="cron"]').fill("0 3 * * *")
    form.locator('[name="timezone"]').fill("Europe/Rome")
    form.locator('[name="parameters"]').fill("{}")
    form.locator('[name="cron"]').fill("0 3 * *")
    form.locator('[data-sm="schedule-save"]').click()
    error = form.locator('[data-sm="schedule-error"]')
    error.wait_for(state="visible")
    assert "has 4 fields" in error.inner_text()
    form.locator('[name="cron"]').fill("0 3 * * *")
    with page.expect_navigation():
        form.locator('[data-sm="schedule-save"]').click()
    row = page.locator('[data-sm="schedule-row"]')
    assert row.count() == 1 and "Nightly cleanup" in row.inner_text()
    next_runs = row.locator('[data-sm="next-runs"] li').all_inner_texts()
    assert len(next_runs) == 3 and all(re.search(r"03:00 CES?T", t) for t in next_runs)
    shot("schedules")
    with page.expect_navigation():
        row.locator('[data-sm="schedule-toggle"]').click()
    page.locator('[data-sm="paused"]').wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator('[data-sm="schedule-delete"]').click()
    page.locator('[data-sm="schedules-empty"]').wait_for()


def test_viewers_get_no_schedules(page, live_server, make_user, catalog, log_in):
    make_user("vera", "viewer")
    log_in("vera")
    assert page.locator('[data-sm="nav-schedules"]').count() == 0
    response = page.goto(f"{live_server}/schedules")
    assert response.status == 403
    page.goto(f"{live_server}/groups/{catalog['group']}")
    assert page.locator('[data-sm="preset-save"]').count() == 0  # viewers do not run scripts
    assert page.locator('[data-sm="edit-tags"]').count() == 1  # but organise what they see


def test_a_developer_shares_a_preset_with_the_group(page, live_server, make_user, catalog, log_in):
    make_user("dora", "developer")
    make_user("olivia", "operator")
    log_in("dora")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    report = card(page, catalog["report"])
    answers = iter(["team default", True])  # the name, then "share with the group?"
    page.on(
        "dialog",
        lambda dialog: dialog.accept(*(() if dialog.type == "confirm" else (next(answers),))),
    )
    report.locator('[data-sm="preset-save"]').click()
    page.wait_for_function(
        "id => document.querySelector(`#preset-${id}`).options.length === 2", arg=catalog["report"]
    )
    page.context.clear_cookies()
    log_in("olivia")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    page.wait_for_function(
        "id => document.querySelector(`#preset-${id}`).options.length === 2", arg=catalog["report"]
    )
    option = card(page, catalog["report"]).locator('[data-sm="preset-select"] option').nth(1)
    assert option.inner_text() == "team default (shared by dora)"
    assert (
        card(page, catalog["report"])
        .locator('[data-sm="preset-save"]')
        .get_attribute("data-can-share")
        == "false"
    )
