"""Documentation pages in Chromium: viewer, editor with live preview, history with restore, the
admin status page, who is refused, and hostile Markdown that must never run script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import PASSWORD, SHOTS_DIR
from tests.support.catalog import group_id, script_id

pytestmark = pytest.mark.browser

GUIDE = """# Unit converter

[TOC]

## Usage

Pick a quantity, then a unit. See also the [CSV summary](csv_summary.md#parameters).

!!! warning "Rounding"
    Results are rounded to 6 significant digits.

| From | To | Factor |
|:--|:--|--:|
| m | ft | 3.28084 |

```python
feet = metres * 3.28084
```

## Formula

Temperature: $F = \\frac{9}{5} C + 32$ and

$$
K = C + 273.15
$$
"""

# Every line tries to run window.__pwned(): the test fails if any of them gets through.
HOSTILE = """# Title <img src=x onerror="window.__pwned('img')">

<script>window.__pwned('script')</script>
<svg onload="window.__pwned('svg')"><script>window.__pwned('svg-script')</script></svg>
<div onmouseover="window.__pwned('hover')" id="sm-i18n">hover me</div>
<iframe srcdoc="<script>parent.__pwned('iframe')</script>"></iframe>
<a href="javascript:window.__pwned('link')" data-sm="evil-link">click me</a>
[md link](javascript:window.__pwned('mdlink'))
<form action="javascript:window.__pwned('form')"><button data-sm="evil-button">go</button></form>
<style>body { background: url(javascript:window.__pwned('style')) }</style>

$x</span><img src=x onerror="window.__pwned('math')">$

$$
\\href{javascript:window.__pwned('katex')}{click} \\htmlId{x}{y}
<img src=x onerror="window.__pwned('dmath')">
$$
"""


@pytest.fixture
def docs_site(ready_app, make_user, groups_dir):
    """The shipped catalog, a user per level (the developer reads Spanish in the dark theme)."""
    make_user("olivia", "operator")
    make_user("vera", "viewer")
    make_user("dario", "developer", preferred_language="es", preferred_theme="dark")
    make_user("ada", "admin")
    docs = groups_dir / "data_processing" / "docs"
    (docs / "unit_converter.md").write_text(GUIDE, encoding="utf-8")
    return {
        "csv": script_id(ready_app, "csv_summary.py"),
        "units": script_id(ready_app, "unit_converter.py"),
        "group": group_id(ready_app, "data_processing"),
        "docs": docs,
    }


def watch_for_script(page) -> list[str]:
    """Record every call of window.__pwned and every dialog: both mean script ran."""
    ran: list[str] = []
    page.expose_function("__pwned", lambda what: ran.append(str(what)))
    page.on("dialog", lambda dialog: (ran.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    return ran


def csp_tab(browser):
    """A tab with the manager's CSP enforced, recording every violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    violations: list[str] = []
    tab.on(
        "console",
        lambda m: (
            violations.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text
            else None
        ),
    )
    return context, tab, violations


def shot_of(tab, name: str) -> None:
    """Like the ``shot`` fixture, for a tab of its own."""
    if SHOTS_DIR:
        Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(Path(SHOTS_DIR) / f"{name}.png"), full_page=True)


def log_in_tab(tab, live_server: str, username: str) -> None:
    tab.goto(f"{live_server}/login")
    tab.fill("#username", username)
    tab.fill("#password", PASSWORD)
    with tab.expect_navigation():
        tab.click('[data-sm="login-submit"]')


def test_viewer_from_the_group_page_with_math_toc_links_and_languages(
    browser, live_server, docs_site
):
    context, page, violations = csp_tab(browser)  # KaTeX must work under the real CSP
    log_in_tab(page, live_server, "olivia")
    page.goto(f"{live_server}/groups/{docs_site['group']}")
    card = page.locator(f'[data-sm="script-card"][data-script-id="{docs_site["units"]}"]')

    # The expandable help beside the script shows the rendered document in place.
    card.locator('[data-sm="doc-help"]').click()
    help_body = card.locator('[data-sm="doc-help-body"]')
    help_body.locator(".katex").first.wait_for()
    assert "Rounding" in help_body.inner_text()

    with page.expect_navigation():
        card.locator('[data-sm="doc-link"]').click()
    content = page.locator('[data-sm="doc-content"]')
    assert content.locator(".katex").count() == 2, "inline and display math typeset"
    assert content.locator(".katex-display").count() == 1
    assert content.locator(".admonition.warning").is_visible()
    assert content.locator(".codehilite span.n, .codehilite span.o").count() > 0
    assert page.locator('[data-sm="doc-toc"] a[href="#doc-formula"]').is_visible()
    assert page.locator('[data-sm="doc-edit"]').count() == 0, "operators do not edit"
    examples = page.locator('[data-sm="example"]')
    assert examples.first.inner_text().strip() == "line_readings.csv"
    with page.expect_download() as download:
        examples.first.click()
    assert download.value.suggested_filename == "line_readings.csv"
    shot_of(page, "docs-viewer-en-light")

    # No Spanish version: English is shown with a note; the link to another document resolves.
    page.click('[data-sm-doc-lang="es"]')
    assert page.locator('[data-sm="doc-fallback"]').is_visible()
    with page.expect_navigation():
        content.get_by_role("link", name="CSV summary").click()
    assert f"/scripts/{docs_site['csv']}/docs" in page.url and page.url.endswith("#doc-parameters")
    page.click('[data-sm-doc-lang="es"]')
    assert page.locator("h1").nth(1).inner_text().strip() != "CSV Summary"  # the Spanish text
    assert page.locator('[data-sm="doc-fallback"]').count() == 0
    page.wait_for_load_state("networkidle")
    assert violations == []
    context.close()


def test_hostile_markdown_never_runs_script(page, live_server, docs_site, log_in, shot):
    """The shared page fixture has the CSP off: only the sanitiser stands in the way."""
    (docs_site["docs"] / "unit_converter.md").write_text(HOSTILE, encoding="utf-8")
    ran = watch_for_script(page)
    log_in("dario")
    page.goto(f"{live_server}/scripts/{docs_site['units']}/docs")
    content = page.locator('[data-sm="doc-content"]')
    content.hover()
    content.get_by_text("click me").click()
    content.get_by_text("md link").click()
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert content.locator("svg:not(.katex *), iframe, form, style").count() == 0
    # The page's own #sm-i18n is still the strings block, not the document's element.
    assert page.evaluate("document.getElementById('sm-i18n').tagName") == "SCRIPT"
    shot("docs-hostile-es-dark")

    # The same text in the group page's inline help and in the editor's live preview.
    page.goto(f"{live_server}/groups/{docs_site['group']}")
    card = page.locator(f'[data-sm="script-card"][data-script-id="{docs_site["units"]}"]')
    card.locator('[data-sm="doc-help"]').click()
    card.locator('[data-sm="doc-help-body"] h1').wait_for()
    page.goto(f"{live_server}/scripts/{docs_site['units']}/docs/edit?lang=en")
    with page.expect_response(lambda r: r.url.endswith("/api/docs/render")):
        page.fill('[data-sm="doc-text"]', HOSTILE + "\n\nedited")
    page.locator('[data-sm="doc-preview"]').get_by_text("edited").wait_for()
    page.locator('[data-sm="doc-preview"]').hover()
    page.wait_for_timeout(300)  # let any onerror/onload that slipped through fire
    assert ran == []


def test_editor_starts_from_a_template_previews_live_and_saves(
    page, live_server, docs_site, log_in, shot
):
    log_in("dario")
    page.goto(f"{live_server}/groups/{docs_site['group']}")
    card = page.locator(f'[data-sm="script-card"][data-script-id="{docs_site["units"]}"]')
    with page.expect_navigation():
        card.locator('[data-sm="doc-link"]').click()
    with page.expect_navigation():
        page.click('[data-sm-doc-lang="it"]')
    assert page.locator('[data-sm="doc-fallback"]').is_visible()
    with page.expect_navigation():
        page.click('[data-sm="doc-edit"]')
    assert page.locator('[data-sm="doc-template-note"]').is_visible()
    assert page.locator('[data-sm="doc-text"]').input_value().startswith("# ")
    assert page.locator('[data-sm="doc-preview"] h2').first.is_visible()
    with page.expect_response(lambda r: r.url.endswith("/api/docs/render")):
        page.fill(
            '[data-sm="doc-text"]',
            "# Convertitore\n\nArea: $a = b^2$\n\n| x | y |\n|-|-|\n| 1 | 2 |",
        )
    preview = page.locator('[data-sm="doc-preview"]')
    preview.locator(".katex").wait_for()
    assert preview.locator("table td").first.inner_text() == "1"
    shot("docs-editor-es-dark")
    with page.expect_response(lambda r: "/description-long" in r.url and r.request.method == "PUT"):
        page.click('[data-sm="doc-save"]')
    page.locator('[data-sm="doc-template-note"]').wait_for(state="detached")
    written = docs_site["docs"] / "unit_converter_it.md"
    assert written.read_text(encoding="utf-8").startswith("# Convertitore")
    page.goto(f"{live_server}/scripts/{docs_site['units']}/docs?lang=it")
    assert page.locator('[data-sm="doc-fallback"]').count() == 0
    assert page.locator('[data-sm="doc-content"] h1').inner_text() == "Convertitore"
    page.goto(f"{live_server}/scripts/{docs_site['csv']}/docs")  # dario reads Spanish
    assert page.locator('[data-sm="doc-content"]').get_attribute("lang") == "es"
    shot("docs-viewer-es-dark")


def test_history_shows_before_and_after_and_restores(
    page, live_server, docs_site, api, log_in, shot
):
    developer = api("dario")
    response = developer.put(
        f"/api/scripts/{docs_site['csv']}/metadata",
        json={"category": "Reports", "execution_timeout": 90, "proxy_enabled": False},
    )
    assert response.status_code == 200, response.get_json()
    log_in("dario")
    page.goto(f"{live_server}/groups/{docs_site['group']}")
    # Developers pick the group's environment on the group page; it lands in the history too.
    page.locator('#dev-environment option[value="data-science"]').wait_for(state="attached")
    page.select_option("#dev-environment", "data-science")
    with page.expect_navigation():
        page.click('[data-sm="dev-environment-save"]')
    assert "data-science" in page.locator('[data-sm="group-environment"]').inner_text()
    card = page.locator(f'[data-sm="script-card"][data-script-id="{docs_site["csv"]}"]')
    with page.expect_navigation():
        card.locator('[data-sm="history-link"]').click()
    env_row = page.locator('[data-sm="history-row"][data-kind="environment"]')
    env_row.wait_for()
    assert env_row.locator('[data-sm="history-value"]').nth(1).inner_text() == "data-science"
    row = page.locator('[data-sm="history-row"][data-field="category"]')
    row.wait_for()
    values = row.locator('[data-sm="history-value"]')
    assert values.nth(1).inner_text() == "Reports"
    assert page.locator('[data-sm="history-row"][data-field="proxy_enabled"]').count() == 1
    shot("docs-history-es-dark")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.url.endswith("/restore")):
        row.locator('[data-sm="history-restore"]').click()
    # The restore is itself a history entry, on top.
    page.locator('[data-sm="history-row"][data-field="category"]').nth(1).wait_for()
    meta = developer.get(f"/api/scripts/{docs_site['csv']}/metadata").get_json()
    assert meta["category"] != "Reports" and "category" not in meta["overrides"]
    assert meta["execution_timeout"] == 90


def test_status_page_for_admins_and_refusals(browser, page, live_server, docs_site, log_in, shot):
    log_in("ada")
    page.goto(f"{live_server}/admin/docs")
    row = page.locator(f'[data-sm="docs-row"][data-script-id="{docs_site["units"]}"]')
    assert row.get_attribute("data-missing") == "es,it,fr"
    assert row.locator('[data-sm="doc-missing"]').count() == 3
    csv = page.locator(f'[data-sm="docs-row"][data-script-id="{docs_site["csv"]}"]')
    assert csv.get_attribute("data-missing") == ""
    shot("docs-status-en-light")
    with page.expect_navigation():
        row.locator('[data-sm="doc-missing"]').first.click()
    assert "/docs/edit?lang=es" in page.url
    assert page.locator('[data-sm="doc-preview"] h1').is_visible()
    shot("docs-editor-en-light")
    page.goto(f"{live_server}/scripts/{docs_site['units']}/history")
    page.locator('[data-sm="history-empty"]').wait_for()
    with page.expect_response(lambda r: r.url.endswith("/api/user/preferences")):
        page.click('[data-sm="theme-toggle"]')
    page.goto(f"{live_server}/admin/docs")
    assert page.locator("html").get_attribute("data-bs-theme") == "dark"
    shot("docs-status-en-dark")

    refusals = {
        "dario": {"/admin/docs": 403},
        "olivia": {
            "/admin/docs": 403,
            f"/scripts/{docs_site['units']}/docs/edit": 403,
            f"/scripts/{docs_site['units']}/history": 403,
        },
        "vera": {f"/scripts/{docs_site['units']}/docs": 404},
    }
    for username, pages in refusals.items():
        context = browser.new_context()
        tab = context.new_page()
        log_in_tab(tab, live_server, username)
        for path, status in pages.items():
            response = tab.goto(f"{live_server}{path}")
            assert response is not None and response.status == status, (username, path)
        context.close()
