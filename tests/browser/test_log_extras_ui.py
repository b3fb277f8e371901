"""A run's page in the browser: bookmark, note, share link (made, opened, refused, revoked), PDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.logs.test_api_support import World, build_world

pytestmark = pytest.mark.browser


@pytest.fixture
def world(app, make_user) -> World:
    from manager.views import logs

    if logs.bp.name not in app.blueprints:
        app.register_blueprint(logs.bp)
    return build_world(app, make_user)


@pytest.fixture
def errors(page) -> list[str]:
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found
    assert found == []


def test_bookmark_note_share_and_pdf(world, live_server, log_in, page, browser, errors):
    run_id = world.run("olga", output="café 中文 😀\nsecond line\n")
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    bookmark = page.locator('[data-sm="run-bookmark"]')
    page.wait_for_selector('[data-sm="run-personal"][data-loaded="true"]', state="attached")
    assert bookmark.get_attribute("aria-pressed") == "false"
    bookmark.click()
    page.wait_for_selector('[data-sm="run-bookmark"][aria-pressed="true"]')
    page.fill('[data-sm="run-note"]', "check the totals")
    page.locator('[data-sm="run-note-save"]').click()
    page.locator("#sm-notices", has_text="Note saved").wait_for()

    # a reload shows both again: they are stored
    page.reload()
    page.wait_for_function(
        "document.querySelector('[data-sm=\"run-note\"]').value === 'check the totals'"
    )
    assert bookmark.get_attribute("aria-pressed") == "true"

    # the PDF download
    page.locator('[data-sm="run-download"]').click()
    with page.expect_download() as download:
        page.locator('[data-sm="download-pdf"]').click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")

    # a share link: it opens for olga, not for ivan
    page.locator('[data-sm="run-share"]').click()
    page.wait_for_function("document.querySelector('[data-sm=\"share-url\"]').value !== ''")
    url = page.locator('[data-sm="share-url"]').input_value()
    assert url.startswith(live_server + "/logs/shared/")
    page.goto(url)
    page.wait_for_url(f"{live_server}/logs/{run_id}")

    other = browser.new_context().new_page()
    other.goto(f"{live_server}/login")
    other.fill("#username", "ivan")
    other.fill("#password", TEST_PASSWORD)
    with other.expect_navigation():
        other.click('[data-sm="login-submit"]')
    answer = other.goto(url)
    assert answer.status == 404
    assert "check the totals" not in other.content()
    other.context.close()

    # revoke: the link stops working for olga too
    page.locator('[data-sm="run-share"]').click()
    page.wait_for_function("document.querySelector('[data-sm=\"share-url\"]').value !== ''")
    second = page.locator('[data-sm="share-url"]').input_value()
    page.locator('[data-sm="share-revoke"]').click()
    page.wait_for_function("document.querySelector('[data-sm=\"share-box\"]').hidden")
    assert page.goto(second).status == 410
