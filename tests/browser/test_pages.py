"""The group page, the metadata editor and the users page, driven like a person would."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

CONTROLS = {  # parameter name -> (element, type attribute)
    "title": ("input", "text"),
    "notes": ("textarea", None),
    "count": ("input", "number"),
    "ratio": ("input", "number"),
    "verbose": ("input", "checkbox"),
    "unit": ("select", None),
    "day": ("input", "date"),
    "folder": ("input", "text"),
    "token": ("input", "password"),
}


def script_card(page, script_id: int):
    return page.locator(f'[data-sm="script-card"][data-script-id="{script_id}"]')


def test_parameter_form_has_a_control_for_every_type(
    page, live_server, make_user, catalog, log_in, shot
):
    make_user("olivia", "operator")
    log_in("olivia")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    card = script_card(page, catalog["report"])
    card.get_by_role("button", name="Parameters (10)").click()
    params = card.locator(f"#params-{catalog['report']}")
    params.wait_for(state="visible")

    for name, (tag, kind) in CONTROLS.items():
        control = params.locator(f'[data-param-name="{name}"] [data-sm-param]')
        assert control.evaluate("e => e.tagName.toLowerCase()") == tag, name
        if kind:
            assert control.get_attribute("type") == kind, name
    count = params.locator('[data-param-name="count"] input')
    assert (
        count.get_attribute("step"),
        count.get_attribute("min"),
        count.get_attribute("max"),
    ) == ("1", "1", "10")
    assert params.locator('[data-param-name="ratio"] input').get_attribute("step") == "any"
    assert params.locator('[data-param-name="title"] input').input_value() == "Report"
    assert params.locator('[data-param-name="title"] input').get_attribute("required") is not None
    assert params.locator('[data-param-name="verbose"] input').is_checked()
    assert params.locator('[data-param-name="unit"] select').input_value() == "mm"
    assert params.locator('[data-param-name="day"] input').input_value() == "2024-05-01"
    checked = params.locator('[data-param-name="columns"] input:checked')
    assert [checked.nth(i).get_attribute("value") for i in range(checked.count())] == ["b"]
    assert params.locator('[data-param-name="folder"] .bi-folder2').count() == 1
    token = params.locator('[data-param-name="token"] input')
    assert token.get_attribute("autocomplete") == "off"
    assert token.input_value() == "", "a secret's default is never written into the page"
    assert "Shown on top" in params.locator('[data-param-name="title"]').inner_text()
    assert card.locator('[data-sm="run"]').is_visible()
    shot("group-parameters")


def test_search_category_and_tag_filters(page, live_server, make_user, catalog, log_in):
    make_user("olivia", "operator")
    log_in("olivia")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    visible = page.locator('[data-sm="script-card"]:visible')
    assert visible.count() == 2, "operators see the two valid scripts, not the invalid one"

    page.fill('[data-sm="filter-search"]', "clean")
    assert visible.count() == 1
    assert script_card(page, catalog["cleanup"]).is_visible()
    assert "1 of 2" in page.locator('[data-sm="filter-count"]').inner_text()

    page.fill('[data-sm="filter-search"]', "")
    page.select_option('[data-sm="filter-tag"]', "pdf")
    assert visible.count() == 1
    assert script_card(page, catalog["report"]).is_visible()

    page.select_option('[data-sm="filter-category"]', "maintenance")
    assert visible.count() == 0
    assert page.locator('[data-sm="filter-empty"]').is_visible()


def test_viewer_sees_scripts_but_no_run_button(page, live_server, make_user, catalog, log_in):
    make_user("vera", "viewer")
    log_in("vera")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    assert script_card(page, catalog["report"]).is_visible()
    assert script_card(page, catalog["cleanup"]).count() == 0, "cleanup needs operator"
    assert page.locator('[data-sm="run"]').count() == 0
    assert page.locator('[data-sm="edit-metadata"]').count() == 0


def test_developer_sees_invalid_items_and_edits_metadata(
    page, live_server, make_user, catalog, log_in, shot
):
    make_user("dora", "developer")
    log_in("dora")
    broken = page.locator('[data-sm="group-card"]', has_text="Broken Group")
    assert "'icon' must be a string" in broken.locator('[data-sm="group-invalid"]').inner_text()
    shot("dashboard-developer")

    page.goto(f"{live_server}/groups/{catalog['group']}")
    bad = script_card(page, catalog["bad"])
    assert bad.locator('[data-sm="script-invalid"]').is_visible()
    assert (
        "@parameters is not valid JSON"
        in bad.locator('[data-sm="script-invalid-reason"]').inner_text()
    )
    assert bad.locator('[data-sm="run"]').count() == 0, "an invalid script cannot be run"

    card = script_card(page, catalog["cleanup"])
    card.locator('[data-sm="edit-metadata"]').click()
    modal = page.locator("#sm-edit-modal")
    modal.wait_for(state="visible")
    assert modal.locator("#edit-display-name").input_value() == "Clean workspace"
    shot("edit-modal")

    modal.locator("#edit-timeout").fill("-5")
    with page.expect_response(lambda r: "/metadata" in r.url) as answer:
        modal.locator('[data-sm="edit-save"]').click()
    assert answer.value.status == 400
    error = modal.locator('[data-sm="edit-error"]')
    error.wait_for(state="visible")
    assert error.inner_text().strip(), "the server's message is shown"

    modal.locator("#edit-timeout").fill("120")
    modal.locator("#edit-display-name").fill("Tidy workspace")
    modal.locator("#edit-tags").fill("files, housekeeping")
    with page.expect_navigation():
        modal.locator('[data-sm="edit-save"]').click()
    card = script_card(page, catalog["cleanup"])
    assert "Tidy workspace" in card.inner_text()
    assert "housekeeping" in card.inner_text()


def test_admin_creates_and_deactivates_a_user(page, live_server, make_user, log_in, shot):
    make_user("ada", "admin")
    log_in("ada")
    page.click("text=Admin")
    page.click(".dropdown-menu >> text=Users")
    page.wait_for_url("**/admin/users")

    page.get_by_role("button", name="New user").click()
    form = page.locator('[data-sm="create-user"]')
    form.wait_for(state="visible")
    form.locator("#new-username").fill("newbie")
    form.locator("#new-email").fill("newbie@example.com")
    form.locator("#new-password").fill("x")
    with page.expect_response(lambda r: r.url.endswith("/api/admin/users")) as answer:
        form.get_by_role("button", name="Create user").click()
    assert answer.value.status == 400
    # The page script shows the server's message once it has read the answer.
    form.locator('[data-sm="create-error"]').wait_for(state="visible")

    form.locator("#new-password").fill("a-long-enough-password")
    with page.expect_navigation():
        form.get_by_role("button", name="Create user").click()
    row = page.locator('[data-sm="user-row"][data-username="newbie"]')
    assert row.is_visible()
    shot("admin-users")

    with page.expect_response(lambda r: "/api/admin/users/" in r.url) as answer:
        row.locator('[data-sm="user-level"]').select_option("developer")
    assert answer.value.status == 200

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        row.locator('[data-sm="user-deactivate"]').click()
    row = page.locator('[data-sm="user-row"][data-username="newbie"]')
    assert row.locator('[data-sm="user-status"]').inner_text().strip() == "Deactivated"
    assert row.locator('[data-sm="user-level"]').input_value() == "developer"
