"""An operator logs in, sees the dashboard, changes theme and language, and logs out."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def html_theme(page) -> str:
    return page.locator("html").get_attribute("data-bs-theme")


def test_operator_login_theme_language_logout(page, live_server, make_user, catalog, log_in, shot):
    make_user("olivia", "operator")

    page.goto(f"{live_server}/")
    assert "/login" in page.url, "an anonymous visitor is sent to the login page"
    shot("login-light")

    log_in("olivia")
    assert page.url.rstrip("/") == live_server
    cards = page.locator('[data-sm="group-card"]')
    assert cards.count() >= 1
    assert page.locator('[data-sm="group-card"]', has_text="Browser Tools").is_visible()
    assert page.locator('[data-sm="group-card"]', has_text="Broken Group").count() == 0, (
        "operators do not see invalid groups"
    )
    assert "olivia" in page.locator('[data-sm="current-user"]').inner_text()
    assert page.locator('[data-sm="nav-dashboard"]').inner_text().strip() == "Dashboard"
    shot("dashboard-light")

    start = html_theme(page)
    flipped = "dark" if start == "light" else "light"
    with page.expect_response(lambda r: r.url.endswith("/api/user/preferences")) as answer:
        page.click('[data-sm="theme-toggle"]')
    assert answer.value.status == 200
    assert html_theme(page) == flipped, "the theme changes at once"
    page.reload()
    assert html_theme(page) == flipped, "the theme is kept after a reload"
    shot(f"dashboard-{flipped}")

    page.click('[data-sm="language-menu"]')
    with page.expect_navigation():
        page.click('[data-sm-language="es"]')
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator('[data-sm="nav-dashboard"]').inner_text().strip() == "Panel"
    assert page.locator('[data-sm="logout"]').inner_text().strip() == "Cerrar sesión"
    assert page.locator('[data-sm="group-card"]', has_text="Herramientas").is_visible(), (
        "group names follow the language"
    )

    with page.expect_navigation():
        page.click('[data-sm="logout"]')
    assert re.search(r"/login(\?|$)", page.url)
    assert page.locator("#username").is_visible()
    page.goto(f"{live_server}/")
    assert "/login" in page.url, "after logout the dashboard needs a login again"


def test_wrong_password_shows_the_error_on_the_login_page(
    page, live_server, make_user, log_in, shot
):
    make_user("olivia", "operator")
    log_in("olivia", "not-the-password")
    assert "/login" in page.url
    error = page.locator('[data-sm="login-error"]')
    assert error.is_visible()
    assert "Wrong username or password" in error.inner_text()
    shot("login-error")


def test_language_and_theme_can_be_chosen_before_login(page, live_server, shot):
    page.goto(f"{live_server}/login")
    page.click('[data-sm="language-menu"]')
    with page.expect_navigation():
        page.click('[data-sm-language="fr"]')
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator('label[for="password"]').inner_text().strip() == "Mot de passe"

    with page.expect_response(lambda r: r.url.endswith("/api/user/preferences")):
        page.click('[data-sm="theme-toggle"]')
    page.reload()
    assert html_theme(page) == "dark"
    shot("login-fr-dark")
