"""Findings of a first look "as a new user would", checked in Chromium: notices, log titles."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])  # fmt: skip


@pytest.mark.parametrize("width", [1280, 420])
def test_a_success_notice_never_covers_the_navbar(page, live_server, make_user, log_in, width):
    make_user("ada", "admin")
    page.set_viewport_size({"width": width, "height": 800})
    log_in("ada")
    # The path every "saved" message takes: shown once the page is back (sm.reloadWith).
    with page.expect_navigation():
        page.evaluate("window.sm.reloadWith('User updated', 'success')")
    notice = page.locator("#sm-notices .alert-success")
    notice.wait_for(state="visible")
    navbar = page.locator("nav.sm-navbar").bounding_box()
    assert not _overlap(notice.bounding_box(), navbar)
    if width < 992:  # the collapsed menu, opened: Log out is inside it
        page.locator(".navbar-toggler").click()
        page.locator('[data-sm="logout"]').wait_for(state="visible")
    logout = page.locator('[data-sm="logout"]')
    box = logout.bounding_box()
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('[data-sm=\"logout\"]') !== null",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "Log out is covered"


def test_an_admin_looking_at_everyones_runs_sees_all_runs(page, live_server, make_user, log_in):
    from playwright.sync_api import expect

    make_user("ada", "admin")
    make_user("bob", "operator")
    log_in("ada")
    page.goto(f"{live_server}/logs?user=all")
    heading = page.locator('[data-sm="log-heading"]')
    assert heading.inner_text() == "All runs"
    assert page.title().startswith("All runs")
    assert "active" not in (page.locator('[data-sm="logs-nav-list"]').get_attribute("class") or "")
    page.select_option('[data-sm="log-user"]', "")
    expect(heading).to_have_text("Logs")
    assert page.locator('[data-sm="logs-nav-list"]').get_attribute("aria-current") == "page"
    assert "Every run you started" in page.locator('[data-sm="log-subtitle"]').inner_text()
    page.select_option('[data-sm="log-user"]', label="bob")
    expect(heading).to_have_text("Runs of bob")
    page.reload()
    assert heading.inner_text() == "Runs of bob"


def test_the_manager_serves_its_favicon(page, live_server):
    response = page.goto(f"{live_server}/favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
