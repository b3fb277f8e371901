"""Browser fixtures: the real app served on a free local port, and Debian's headless Chromium.

Chromium is never downloaded: Playwright drives /usr/bin/chromium. Without it (or without the
playwright package) the browser tests are skipped, unless REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "password123"
# Screenshots for a person to look at: SM_SHOTS_DIR=/tmp/sm-shots pytest -m browser
SHOTS_DIR = os.environ.get("SM_SHOTS_DIR")


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required (REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    # Reduced motion turns Bootstrap's transitions off: no half-faded modal in a screenshot.
    # bypass_csp: Playwright's string predicates (wait_for_function) are evaluated in the page,
    # which the manager's CSP forbids; test_password_ui walks the pages with the CSP enforced.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        reduced_motion="reduce",
        bypass_csp=True,
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


PARAMETERS = [
    {
        "name": "title",
        "type": "string",
        "required": True,
        "default": "Report",
        "label": {"en": "Title", "es": "Título"},
        "description": {"en": "Shown on top"},
    },
    {"name": "notes", "type": "text", "label": "Notes"},
    {"name": "count", "type": "int", "min": 1, "max": 10, "default": 3, "label": "Count"},
    {"name": "ratio", "type": "float", "min": 0, "max": 1, "default": 0.5, "label": "Ratio"},
    {"name": "verbose", "type": "bool", "default": True, "label": "Verbose"},
    {"name": "unit", "type": "select", "options": ["mm", "in"], "default": "mm", "label": "Unit"},
    {
        "name": "columns",
        "type": "multiselect",
        "options": ["a", "b", "c"],
        "default": ["b"],
        "label": "Columns",
    },
    {"name": "day", "type": "date", "default": "2024-05-01", "label": "Day"},
    {"name": "folder", "type": "path", "label": "Folder"},
    {"name": "token", "type": "secret", "default": "hunter2", "label": "Token"},
]


@pytest.fixture
def catalog(app) -> dict[str, int]:
    """A small catalog written straight to the database.

    "Browser Tools" (viewer level): report.py (viewer, one parameter of every type), cleanup.py
    (operator) and bad.py (invalid); "Broken Group" is invalid.
    """
    from manager.extensions import db
    from manager.models import Script, ScriptGroup

    with app.app_context():
        tools = ScriptGroup(
            name="Browser Tools",
            directory_path="browser_tools",
            required_level="viewer",
            conda_environment="base",
            description="Tools used by the browser tests",
            metadata_json={
                "display_name": {"en": "Browser Tools", "es": "Herramientas"},
                "description": {
                    "en": "Tools used by the browser tests",
                    "es": "Herramientas de las pruebas",
                },
                "icon": "tools",
                "category": "testing",
            },
        )
        broken = ScriptGroup(
            name="Broken Group",
            directory_path="broken_group",
            conda_environment="base",
            metadata_json={"icon": "bug"},
            invalid_reason="metadata.json: 'icon' must be a string",
        )
        db.session.add_all([tools, broken])
        db.session.flush()
        report = Script(
            group_id=tools.id,
            filename="report.py",
            display_name="Make report",
            description="Writes a report",
            tags="report,pdf",
            category="reports",
            required_level="viewer",
            parameters=PARAMETERS,
            execution_timeout=60,
            metadata_json={
                "display_name": {"en": "Make report", "es": "Crear informe"},
                "tags": ["report", "pdf"],
            },
        )
        cleanup = Script(
            group_id=tools.id,
            filename="cleanup.py",
            display_name="Clean workspace",
            description="Removes old files",
            tags="files",
            category="maintenance",
            required_level="operator",
            parameters=[],
            metadata_json={"tags": ["files"]},
        )
        bad = Script(
            group_id=tools.id,
            filename="bad.py",
            display_name="Bad script",
            parameters=[],
            required_level="operator",
            invalid_reason="line 4: @parameters is not valid JSON",
        )
        db.session.add_all([report, cleanup, bad])
        db.session.commit()
        return {
            "group": tools.id,
            "broken": broken.id,
            "report": report.id,
            "cleanup": cleanup.id,
            "bad": bad.id,
        }


@pytest.fixture
def log_in(page, live_server):
    """``log_in("olivia")`` logs the page in through the login form."""

    def submit(username: str, password: str = PASSWORD) -> None:
        page.goto(f"{live_server}/login")
        page.fill("#username", username)
        page.fill("#password", password)
        with page.expect_navigation():
            page.click('[data-sm="login-submit"]')

    return submit


@pytest.fixture
def shot(page):
    """``shot("name")`` saves a full-page screenshot when SM_SHOTS_DIR is set."""

    def take(name: str) -> None:
        if SHOTS_DIR:
            Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS_DIR) / f"{name}.png"), full_page=True)

    return take
