"""Admin panel pages in Chromium: an admin backs up from the backups page and sees the new
archive, opens the permission matrix, configuration and usage pages (English light, Spanish
dark); an operator is refused each of them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PAGES = ["backups", "permissions", "config", "usage"]


@pytest.fixture
def people(app, make_user, catalog):
    from manager.extensions import db
    from manager.models import User

    make_user("ada", "admin")
    make_user("otto", "operator")
    make_user("ana", "admin")
    with app.app_context():
        ana = db.session.query(User).filter_by(username="ana").one()
        ana.preferred_language, ana.preferred_theme = "es", "dark"
        db.session.commit()


def test_admin_backs_up_and_walks_the_panel(page, live_server, log_in, people, shot):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in("ada")
    page.goto(f"{live_server}/admin/backups")
    assert page.locator('[data-sm="backup-empty"]').is_visible()
    with page.expect_navigation():
        page.click('[data-sm="backup-create"]')
    assert page.locator('[data-sm="backup-row"]').count() == 1
    assert "Backup written." in page.locator("#sm-notices").inner_text()
    shot("admin-backups-en-light")
    page.click('[data-sm="backup-restore"]')
    page.wait_for_selector("#sm-restore-dialog.show")
    page.click('[data-sm="restore-submit"]')  # into a folder, none given
    page.wait_for_selector('[data-sm="restore-error"]:not(:empty)')
    assert "folder path" in page.locator('[data-sm="restore-error"]').inner_text()
    shot("admin-restore-dialog-en-light")
    page.keyboard.press("Escape")
    for name in PAGES[1:]:
        page.goto(f"{live_server}/admin/{name}")
        assert page.locator('[data-sm="admin-panel-nav"] .active').count() == 1
        shot(f"admin-{name}-en-light")
    page.goto(f"{live_server}/admin/config")
    page.fill('[data-sm="config-filter"]', "SM_BACKUP_DIR")
    assert page.locator('[data-sm="config-row"]:visible').count() == 1
    page.goto(f"{live_server}/")
    assert page.locator('[data-sm="health-database"]').get_attribute("data-state") == "ok"
    shot("admin-dashboard-health-en-light")
    assert errors == []


def test_spanish_dark_admin_sees_the_pages_in_spanish(page, live_server, log_in, people, shot):
    log_in("ana")
    for name in PAGES:
        page.goto(f"{live_server}/admin/{name}")
        assert page.locator("html").get_attribute("data-bs-theme") == "dark"
        shot(f"admin-{name}-es-dark")
    assert "Uso de datos" in page.locator("h1").inner_text()
    page.goto(f"{live_server}/")
    assert "Base de datos" in page.locator('[data-sm="health"]').inner_text()
    shot("admin-dashboard-health-es-dark")


def test_operator_is_refused_every_admin_page(page, live_server, log_in, people):
    log_in("otto")
    for name in PAGES:
        response = page.goto(f"{live_server}/admin/{name}")
        assert response is not None and response.status == 403
    page.goto(f"{live_server}/")
    assert page.locator('[data-sm="health"]').count() == 0
    assert page.locator('[data-sm="nav-backups"]').count() == 0
