"""Passwords and logins in the browser: change one's own, an admin's reset, logout ends a copied
cookie, and the pages run under the Content-Security-Policy without a violation."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "brand-new-pass-7"


def new_tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    context.set_default_timeout(10_000)
    return context, context.new_page()


def log_in_tab(tab, live_server: str, username: str, password: str = PASSWORD) -> None:
    tab.goto(f"{live_server}/login")
    tab.fill("#username", username)
    tab.fill("#password", password)
    with tab.expect_navigation():
        tab.click('[data-sm="login-submit"]')


def session_cookie(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "sm_session")


def test_change_own_password_then_log_in_with_it(
    page, browser, live_server, make_user, log_in, shot
):
    make_user("olivia", "operator")
    other_context, other = new_tab(browser)
    log_in_tab(other, live_server, "olivia")  # another browser of hers
    log_in("olivia")

    page.click('[data-sm="current-user"]')
    page.wait_for_url(f"{live_server}/account")
    assert page.locator('[data-sm="login-row"]').count() == 2
    assert page.locator('[data-sm="login-row"][data-current="1"]').count() == 1
    shot("account")

    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD + "-typo")
    with page.expect_navigation():
        page.click('[data-sm="password-submit"]')
    assert "differ" in page.locator('[data-sm="password-error"]').inner_text()

    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    with page.expect_navigation():
        page.click('[data-sm="password-submit"]')
    assert "Password changed" in page.locator(".alert-success").inner_text()
    assert page.locator('[data-sm="login-row"]').count() == 1, "the other login ended"
    shot("account-changed")

    other.goto(f"{live_server}/")
    assert "/login" in other.url, "her other browser is logged out"
    other_context.close()

    with page.expect_navigation():
        page.click('[data-sm="logout"]')
    log_in("olivia", PASSWORD)
    assert "/login" in page.url, "the old password no longer works"
    log_in("olivia", NEW_PASSWORD)
    assert page.url.rstrip("/") == live_server


def test_admin_resets_a_users_password(page, browser, live_server, make_user, log_in, shot):
    make_user("root", "admin")
    make_user("olivia", "operator")
    her_context, hers = new_tab(browser)
    log_in_tab(hers, live_server, "olivia")
    assert hers.url.rstrip("/") == live_server

    log_in("root")
    page.goto(f"{live_server}/admin/users")
    row = page.locator('[data-sm="user-row"][data-username="olivia"]')
    row.locator('[data-sm="user-reset-password"]').click()
    dialog = page.locator("#sm-reset-password")
    dialog.wait_for(state="visible")
    assert "olivia" in dialog.locator(".modal-title").inner_text()
    dialog.locator("#reset-new-password").fill("short")
    dialog.locator('[data-sm="reset-submit"]').click()
    assert dialog.locator("#reset-new-password:invalid").count() == 1, "checked before sending"
    dialog.locator("#reset-new-password").fill(NEW_PASSWORD)
    shot("admin-reset-password")
    with page.expect_navigation():
        dialog.locator('[data-sm="reset-submit"]').click()
    assert "olivia" in page.locator("#sm-notices").inner_text()

    hers.goto(f"{live_server}/")
    assert "/login" in hers.url, "her open login ended with the reset"
    log_in_tab(hers, live_server, "olivia", NEW_PASSWORD)
    assert hers.url.rstrip("/") == live_server
    her_context.close()


def test_admin_clears_failed_logins(page, live_server, make_user, log_in):
    make_user("root", "admin")
    make_user("olivia", "operator")
    for _ in range(3):
        requests.post(
            f"{live_server}/api/auth/login",
            json={"username": "olivia", "password": "guess"},
            timeout=10,
        )
    log_in("root")
    page.goto(f"{live_server}/admin/users")
    row = page.locator('[data-sm="user-row"][data-username="olivia"]')
    assert "3 failed logins" in row.locator('[data-sm="user-failed-logins"]').inner_text()
    with page.expect_navigation():
        row.locator('[data-sm="user-unlock"]').click()
    row = page.locator('[data-sm="user-row"][data-username="olivia"]')
    assert row.locator('[data-sm="user-failed-logins"]').count() == 0


def test_logout_refuses_the_old_cookie_in_the_browser_and_outside(
    page, browser, live_server, make_user, log_in
):
    make_user("olivia", "operator")
    log_in("olivia")
    cookie = session_cookie(page.context)
    copied = requests.get(
        f"{live_server}/api/auth/user", cookies={"sm_session": cookie}, timeout=10
    )
    assert copied.status_code == 200, "the copied cookie works while the login lasts"

    thief_context = browser.new_context()
    thief_context.add_cookies([{"name": "sm_session", "value": cookie, "url": live_server}])
    thief = thief_context.new_page()
    thief.goto(f"{live_server}/")
    assert "/login" not in thief.url

    with page.expect_navigation():
        page.click('[data-sm="logout"]')

    again = requests.get(f"{live_server}/api/auth/user", cookies={"sm_session": cookie}, timeout=10)
    assert again.status_code == 401
    thief.goto(f"{live_server}/")
    assert "/login" in thief.url, "the copied cookie no longer works in another browser either"
    thief_context.close()


def test_pages_run_under_the_csp_without_violations(browser, live_server, make_user, catalog):
    make_user("root", "admin")
    context, page = new_tab(browser)  # the CSP enforced (the shared page fixture bypasses it)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    log_in_tab(page, live_server, "root")
    for path in (
        "/",
        f"/groups/{catalog['group']}",
        "/account",
        "/admin/users",
        "/admin/sessions",
        "/admin/environments",
        "/logs",
        "/logs/stats",
        "/logs/live",
        "/admin/logs/audit",
        "/admin/logs/system",
    ):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    assert violations == []
    # The scripts did run: the theme toggle (app.js) still answers.
    with page.expect_response(lambda r: r.url.endswith("/api/user/preferences")):
        page.click('[data-sm="theme-toggle"]')
    context.close()
