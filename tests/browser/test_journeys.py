"""One journey per role, end to end in Chromium, against the real ``scriptsmanager serve`` and
real Docker sessions: log in, switch language and theme, browse, fill every parameter type, run
a batch script and watch it live, open an interactive script on its session host and use it,
stop it, find the run, search, download; developers also edit documentation and metadata,
admins also walk the admin pages. Screenshots of every step go to SM_SHOTS_DIR when it is set,
else to the test's tmp_path (kept by pytest as artifacts).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import ADMIN_PASSWORD, Server, docker_engine, login, script_ids

pytestmark = [pytest.mark.browser, pytest.mark.docker]

RUN = uuid.uuid4().hex[:6]
INSTANCE = f"smtest-journey-{RUN}"
PREFIX = f"smtest-journey-{RUN}"
LAB = Path(__file__).resolve().parent / "lab_group"
PASSWORD = "journey-password-1"
SECRET = "s3cret-journey-value"
TABLE = b"a,b\n1,2\n3,4\n"


@pytest.fixture(scope="module")
def engine():
    yield from docker_engine(INSTANCE, PREFIX)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("journeys")
    instance = Server(root, INSTANCE, PREFIX)
    shutil.copytree(LAB, root / "script_groups" / "lab")
    instance.start()
    admin = login(instance)
    for role in ("viewer", "operator", "developer"):
        made = admin.post(
            f"{instance.url}/api/admin/users",
            json={
                "username": role,
                "password": PASSWORD,
                "user_level": role,
                "email": f"{role}@example.org",
            },
        )
        assert made.status_code in (200, 201), made.text
    yield instance
    instance.kill()


@pytest.fixture(scope="module")
def ids(server: Server) -> dict[str, int]:
    admin = login(server)
    found = script_ids(server, admin)
    groups = admin.get(f"{server.url}/api/script-groups").json()["groups"]
    found["lab"] = next(g["id"] for g in groups if Path(g["directory"]).name == "lab")
    return found


class Journey:
    """One user's walk through the pages; ``shot`` numbers the screenshots in step order."""

    def __init__(self, page, server: Server, role: str, shots: Path):
        self.page = page
        self.server = server
        self.role = role
        self.shots = shots
        self.step = 0
        page.on("dialog", lambda dialog: dialog.accept())

    def shot(self, name: str, page=None) -> None:
        self.step += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        target = self.shots / f"journey-{self.role}-{self.step:02d}-{name}.png"
        (page or self.page).screenshot(path=str(target), full_page=True)

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.server.url}{path}")

    def log_in(self) -> None:
        page = self.page
        self.goto("/login")
        self.shot("login")
        page.fill("#username", self.role if self.role != "admin" else "admin")
        page.fill("#password", PASSWORD if self.role != "admin" else ADMIN_PASSWORD)
        with page.expect_navigation():
            page.click('[data-sm="login-submit"]')
        user = page.locator('[data-sm="current-user"]').first
        assert self.role in user.inner_text()
        self.shot("dashboard")

    def language_and_theme(self) -> None:
        """Spanish and the dark theme, then English again (the assertions read English)."""
        page = self.page
        self.choose_language("es")
        assert page.locator('[data-sm="nav-dashboard"]').first.inner_text().strip() == "Panel"
        page.locator('[data-sm="theme-toggle"]').first.click()
        page.wait_for_function("document.documentElement.dataset.bsTheme === 'dark'")
        self.shot("spanish-dark")
        self.navbar_fits()
        page.reload()  # the theme is kept by the server, not only by the page
        assert page.evaluate("document.documentElement.dataset.bsTheme") == "dark"
        self.choose_language("en")
        assert page.locator('[data-sm="nav-dashboard"]').first.inner_text().strip() == "Dashboard"

    def navbar_fits(self) -> None:
        """Every navigation entry on one line, and nothing pushed off the page's width."""
        broken = self.page.evaluate(
            """() => Array.from(document.querySelectorAll(
                   '.sm-navbar .nav-link, .sm-navbar [data-sm="logout"]'))
                 .filter((node) => node.offsetParent !== null)
                 .filter((node) => node.getBoundingClientRect().height > 44)
                 .map((node) => node.textContent.trim())"""
        )
        assert broken == [], f"navigation entries on two lines: {broken}"
        width = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page is wider than the window: {width}"

    def choose_language(self, code: str) -> None:
        page = self.page
        page.locator('[data-sm="language-menu"]').first.click()
        with page.expect_navigation():
            page.locator(f'[data-sm-language="{code}"]').first.click()
        assert page.evaluate("document.documentElement.lang") == code

    def browse_to_lab(self, group_id: int) -> None:
        page = self.page
        self.goto("/")
        card = page.locator(f'[data-sm="group-card"] a[href$="/groups/{group_id}"]').first
        with page.expect_navigation():
            card.click()
        assert page.url.endswith(f"/groups/{group_id}")
        page.locator('[data-sm="group-header"]', has_text="Browser test lab").wait_for()
        page.fill('[data-sm="filter-search"]', "every parameter")
        cards = page.locator('[data-sm="script-card"]:visible')
        cards.first.wait_for()
        assert cards.count() == 1, "the search leaves one script"
        self.shot("group-search")
        page.fill('[data-sm="filter-search"]', "")

    def card(self, script_id: int):
        return self.page.locator(f'[data-sm="script-card"][data-script-id="{script_id}"]')

    def fill_every_parameter(self, card) -> None:
        """Open the parameters and give each type a value other than its default."""
        page = self.page
        card.locator('[data-bs-toggle="collapse"][aria-controls^="params-"]').click()
        card.locator(".collapse.show").wait_for()

        def field(name: str):
            return card.locator(f'.sm-param[data-param-name="{name}"]')

        field("title").locator("input").fill(f"Journey of {self.role}")
        field("notes").locator("textarea").fill("first line\nsecond line")
        field("count").locator("input").fill("7")
        field("ratio").locator("input").fill("0.25")
        field("verbose").locator("input").uncheck()
        field("unit").locator("select").select_option("in")
        columns = field("columns")
        columns.locator('input[value="a"]').check()
        columns.locator('input[value="b"]').uncheck()
        columns.locator('input[value="c"]').check()
        field("day").locator("input").fill("2025-01-31")
        field("folder").locator("input").fill("reports/2025")
        field("token").locator("input").fill(SECRET)
        with page.expect_response(lambda r: "/parameter-files" in r.url) as uploaded:
            field("table").locator("input[type=file]").set_input_files(
                {"name": "table.csv", "mimeType": "text/csv", "buffer": TABLE}
            )
        assert uploaded.value.status in (200, 201), uploaded.value.text()
        hidden = field("table").locator("input[type=hidden]")
        page.wait_for_function("(node) => node.value !== ''", arg=hidden.element_handle())
        self.shot("parameters-filled")

    def run_batch_and_watch(self, script_id: int) -> str:
        page = self.page
        card = self.card(script_id)
        self.fill_every_parameter(card)
        with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
            card.locator('[data-sm="run"]').click()
        assert answer.value.status == 201, answer.value.text()
        run_id = answer.value.json()["execution_id"]
        panel = card.locator('[data-sm="run-status"]')
        badge = panel.locator('[data-sm="status"]')
        output = panel.locator('[data-sm="run-output"]')
        output.get_by_text("columns=", exact=False).wait_for(timeout=60_000)
        # The first line is there while the script still prints the others: it is live.
        # (The badge follows by polling: it may still say "starting".)
        assert badge.get_attribute("data-status") in ("starting", "running")
        assert "all parameters received" not in output.inner_text()
        self.shot("batch-live")
        page.wait_for_function(
            "(node) => node.dataset.status === 'completed'",
            arg=badge.element_handle(),
            timeout=60_000,
        )
        output.get_by_text("all parameters received").wait_for()
        text = output.inner_text()
        for line in (
            f'title="Journey of {self.role}"',
            'notes="first line\\nsecond line"',
            "count=7",
            "ratio=0.25",
            "verbose=false",
            'unit="in"',
            'columns=["a", "c"]',
            'day="2025-01-31"',
            'folder="reports/2025"',
            "table rows: 3",
        ):
            assert line in text, (line, text)
        assert f"token=<{len(SECRET)} characters>" in text, "the secret reached the script"
        assert panel.locator('[data-sm="run-exit-code"]').inner_text() == "0"
        self.shot("batch-completed")
        return run_id

    def open_interactive_and_use(self, script_id: int):
        """Open multipage.py from its card: its page runs on a host of its own."""
        page = self.page
        card = self.card(script_id)
        with page.context.expect_page() as opened:
            card.locator('[data-sm="run"]').click()
        tab = opened.value
        tab.locator("#title", has_text="Home").wait_for(timeout=60_000)
        assert ".localhost:" in tab.url and not tab.url.startswith(self.server.url)
        tab.click("#to-form")
        tab.fill("#name", self.role)
        tab.click("#send")
        tab.locator("#title", has_text=f"Thanks, {self.role}").wait_for()
        self.shot("interactive-used", page=tab)
        tab.close()
        row = card.locator('[data-sm="run-row"]').first
        return row.get_attribute("data-execution-id")

    def stop_from_dashboard(self, run_id: str) -> None:
        page = self.page
        self.goto("/")
        row = page.locator(
            f'[data-sm="my-sessions"] [data-sm="session"][data-execution-id="{run_id}"]'
        )
        row.wait_for()
        self.shot("dashboard-session")
        with page.expect_response(lambda r: r.url.endswith(f"/api/sessions/{run_id}/stop")) as stop:
            row.locator('[data-sm="session-stop"]').click()
        assert stop.value.status == 200, stop.value.text()
        row.wait_for(state="detached", timeout=60_000)
        self.shot("session-stopped")

    def find_run_search_download(self, batch_id: str) -> None:
        page = self.page
        with page.expect_navigation():
            page.locator('[data-sm="nav-logs"]').first.click()
        page.locator('[data-sm="log-row"]').first.wait_for()
        self.shot("logs")
        page.fill('[data-sm="log-search"]', "all parameters received")
        page.press('[data-sm="log-search"]', "Enter")
        row = page.locator(f'[data-sm="log-row"][data-execution-id="{batch_id}"]')
        row.wait_for()
        page.wait_for_function("document.querySelectorAll('[data-sm=\"log-row\"]').length === 1")
        assert "q=" in page.url
        self.shot("logs-search")
        with page.expect_navigation():
            row.locator('[data-sm="log-link"]').click()
        assert page.url.endswith(f"/logs/{batch_id}")
        artifact = page.locator('[data-sm="artifact"]', has_text="parameters.json")
        with page.expect_download() as saved:
            artifact.locator("a").click()
        written = json.loads(Path(saved.value.path()).read_text())
        assert written["count"] == 7 and "token" not in written
        page.locator('[data-sm="run-download"]').click()
        with page.expect_download() as log:
            page.locator('[data-sm="download-txt"]').click()
        text = Path(log.value.path()).read_text(encoding="utf-8")
        assert "all parameters received" in text and SECRET not in text
        page.locator("#tab-parameters").click()
        recorded = page.locator('[data-sm="pane-parameters"]')
        recorded.get_by_text("reports/2025").wait_for()
        assert SECRET not in recorded.inner_text(), "the recorded secret is masked"
        notes = recorded.locator('[data-sm="param-row"]', has_text="notes").locator("td")
        assert notes.inner_text() == "first line\nsecond line", "a text keeps its lines"
        self.shot("run-detail")

    def edit_documentation(self, script_id: int) -> None:
        page = self.page
        self.goto(f"/scripts/{script_id}/docs")
        page.locator('[data-sm="doc-content"] h1', has_text="Every parameter").wait_for()
        with page.expect_navigation():
            page.click('[data-sm="doc-edit"]')
        with page.expect_response(lambda r: r.url.endswith("/api/docs/render")):
            page.fill(
                '[data-sm="doc-text"]',
                f"# Every parameter\n\nEdited by the {self.role}.\n\n"
                "| type | x |\n|-|-|\n| int | 7 |",
            )
        page.locator('[data-sm="doc-preview"] table td', has_text="int").wait_for()
        self.shot("docs-editor")
        with page.expect_response(
            lambda r: "/description-long" in r.url and r.request.method == "PUT"
        ) as saved:
            page.click('[data-sm="doc-save"]')
        assert saved.value.status == 200, saved.value.text()
        self.goto(f"/scripts/{script_id}/docs")
        content = page.locator('[data-sm="doc-content"]')
        assert f"Edited by the {self.role}." in content.inner_text()
        self.shot("docs-saved")

    def edit_metadata(self, group_id: int, script_id: int) -> None:
        page = self.page
        self.goto(f"/groups/{group_id}")
        card = self.card(script_id)
        card.locator('[data-sm="edit-metadata"]').click()
        modal = page.locator("#sm-edit-modal")
        modal.wait_for(state="visible")
        modal.locator("#edit-display-name").fill(f"All parameter types ({self.role})")
        modal.locator("#edit-tags").fill("journey, parameters, edited")
        self.shot("metadata-editor")
        with page.expect_navigation():
            modal.locator('[data-sm="edit-save"]').click()
        card = self.card(script_id)
        assert f"All parameter types ({self.role})" in card.inner_text()
        assert "edited" in card.locator('[data-sm="script-tags"]').inner_text()
        with page.expect_navigation():
            card.locator('[data-sm="history-link"]').click()
        page.locator('[data-sm="history-rows"]', has_text=f"({self.role})").wait_for()
        self.shot("metadata-history")


def journey(page, server: Server, role: str, tmp_path: Path) -> Journey:
    shots = Path(os.environ["SM_SHOTS_DIR"]) if os.environ.get("SM_SHOTS_DIR") else tmp_path
    return Journey(page, server, role, shots)


def runner_journey(walk: Journey, ids: dict[str, int], while_open=None) -> tuple[str, str]:
    """The part every role that runs scripts walks; returns the batch and interactive runs.
    ``while_open(run_id)`` is called while the interactive session still runs."""
    walk.log_in()
    walk.language_and_theme()
    walk.browse_to_lab(ids["lab"])
    batch = walk.run_batch_and_watch(ids["every_parameter.py"])
    interactive = walk.open_interactive_and_use(ids["multipage.py"])
    if while_open is not None:
        while_open(interactive)
    walk.stop_from_dashboard(interactive)
    walk.find_run_search_download(batch)
    return batch, interactive


def test_viewer_browses_and_reads_but_cannot_run(server: Server, ids, page, tmp_path) -> None:
    walk = journey(page, server, "viewer", tmp_path)
    walk.log_in()
    walk.language_and_theme()
    walk.browse_to_lab(ids["lab"])
    card = walk.card(ids["every_parameter.py"])
    assert card.locator('[data-sm="run"]').count() == 0, "no Run button for a viewer"
    denied = card.locator('[data-sm="run-denied"]')
    assert "cannot run scripts" in denied.inner_text()
    card.locator('[data-bs-toggle="collapse"][aria-controls^="params-"]').click()
    card.locator(".collapse.show").wait_for()
    title = card.locator('.sm-param[data-param-name="title"] input')
    assert title.input_value() == "Report" and title.is_disabled(), "shown, read-only"
    assert walk.card(ids["multipage.py"]).count() == 0, "operator scripts are not listed"
    walk.shot("group-read-only")
    # Refused by the server too, with a sentence, not only hidden.
    refused = page.evaluate(
        """async (id) => {
             const r = await window.sm.fetch(`/api/scripts/${id}/execute`,
                                             {method: "POST", body: {}});
             return [r.status, window.sm.errorMessage(r)];
           }""",
        ids["every_parameter.py"],
    )
    assert refused[0] == 403 and "cannot run scripts" in refused[1], refused
    with page.expect_navigation():
        card.locator('[data-sm="doc-link"]').click()
    assert "Every parameter" in page.locator('[data-sm="doc-content"]').inner_text()
    assert page.locator('[data-sm="doc-edit"]').count() == 0
    walk.shot("docs")
    with page.expect_navigation():
        page.locator('[data-sm="nav-logs"]').first.click()
    page.locator('[data-sm="log-none"]').wait_for()
    walk.shot("logs-empty")


def test_operator_journey(server: Server, ids, page, tmp_path) -> None:
    walk = journey(page, server, "operator", tmp_path)
    runner_journey(walk, ids)
    walk.goto(f"/groups/{ids['lab']}")
    assert walk.card(ids["every_parameter.py"]).locator('[data-sm="edit-metadata"]').count() == 0
    walk.goto(f"/scripts/{ids['every_parameter.py']}/docs")
    assert page.locator('[data-sm="doc-edit"]').count() == 0, "operators do not edit documents"


def test_developer_journey_also_edits_docs_and_metadata(
    server: Server, ids, page, tmp_path
) -> None:
    walk = journey(page, server, "developer", tmp_path)
    runner_journey(walk, ids)
    walk.edit_documentation(ids["every_parameter.py"])
    walk.edit_metadata(ids["lab"], ids["every_parameter.py"])
    assert page.locator('[data-sm="nav-users"]').count() == 0, "no admin pages for developers"


# Each admin page, and what shows once it has loaded (some fill themselves from the API).
ADMIN_PAGES = [
    ("/admin/users", '[data-sm="user-row"]'),
    ("/admin/sessions", '[data-sm="sessions-loading"]'),
    ("/admin/environments", '[data-sm="env-loading"]'),
    ("/admin/permissions", '[data-sm="matrix-row"]'),
    ("/admin/config", '[data-sm="config-row"]'),
    ("/admin/usage", '[data-sm="usage-user"]'),
    ("/admin/backups", '[data-sm="backup-list"]'),
    ("/admin/docs", '[data-sm="docs-row"]'),
    ("/admin/logs/audit", '[data-sm="audit-row"]'),
    ("/admin/logs/system", '[data-sm="system-row"]'),
]


def test_admin_journey_also_walks_the_admin_pages(server: Server, ids, page, tmp_path) -> None:
    walk = journey(page, server, "admin", tmp_path)

    def in_the_sessions_page(run_id: str) -> None:
        walk.goto("/admin/sessions")
        row = page.locator(f'[data-sm="session"][data-execution-id="{run_id}"]')
        row.wait_for()
        assert "Multipage" in row.inner_text() and "admin" in row.inner_text()
        walk.shot("admin-sessions-open")

    runner_journey(walk, ids, while_open=in_the_sessions_page)
    walk.edit_documentation(ids["every_parameter.py"])
    walk.edit_metadata(ids["lab"], ids["every_parameter.py"])
    for path, marker in ADMIN_PAGES:
        walk.goto(path)
        state = "hidden" if marker.endswith('-loading"]') else "visible"
        page.locator(marker).first.wait_for(state=state)
        assert page.title() and "error" not in page.title().lower(), path
        walk.shot(path.strip("/").replace("/", "-"))
    # Everyone's runs: the operator's and the developer's batch runs are found by a search.
    walk.goto("/logs?user=all&q=all+parameters+received")
    page.wait_for_function("document.querySelectorAll('[data-sm=\"log-row\"]').length >= 1")
    names = page.locator('[data-sm="log-rows"]').inner_text()
    assert "admin" in names
    walk.shot("logs-everyone")
