"""/api/docs: Swagger UI from local files renders the API description under the manager's CSP."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SHOTS_DIR

pytestmark = pytest.mark.browser


def test_api_docs_render_every_tag_under_the_csp(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # the CSP enforced
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server) else None
        ),
    )
    response = page.goto(f"{live_server}/api/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock-tag-section")
    tags = page.locator(".opblock-tag").all_inner_texts()
    assert any("projects" in tag for tag in tags) and any("sessions" in tag for tag in tags)
    # Swagger UI lists every operation under its tag (docExpansion "list")
    page.locator(".opblock-summary-path", has_text="/api/projects/active").first.wait_for()
    if SHOTS_DIR:
        page.screenshot(path=f"{SHOTS_DIR}/api-docs.png")
    assert problems == []
    assert outside == [], "every asset is served by the manager"
    context.close()
