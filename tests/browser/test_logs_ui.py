"""The log viewer in the browser: the list (search, filters, presets, bulk), a finished run's
page (ANSI colours, markup shown as text, tail and "load earlier", downloads), and live output
over Socket.IO from FakeBackend runs, on the detail page, the watch page and the group page.

The live server is werkzeug in a thread of this process: Socket.IO runs in threading mode and the
log pumps and their flusher run as threads too (``SM_LOG_PUMPS``); the test drives the session
monitor (``tick``) itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from manager.models import utcnow
from manager.sessions.fake import FakeScript
from tests.logs.test_api_support import World, build_world
from tests.support.catalog import group_id, script_id, tick

pytestmark = pytest.mark.browser


def register_views(app) -> None:
    """Register the log pages if manager.blueprints does not (yet) do it."""
    from manager.views import logs

    if logs.bp.name not in app.blueprints:
        app.register_blueprint(logs.bp)


@pytest.fixture
def app_config(app_config: dict) -> dict:
    # Pumps and the batch flusher run in this process, as under `serve`.
    return {**app_config, "SM_LOG_PUMPS": True, "SM_LOG_BATCH_INTERVAL": 0.05}


@pytest.fixture
def logs_app(fake, app) -> Iterator:
    register_views(app)
    yield app
    for session in list(fake.sessions.values()):  # let the pumps' threads end
        if session.exit is None:
            fake.finish(session.spec.execution_uuid, 0)
    app.extensions["sm_logs"].stop()


@pytest.fixture
def world(logs_app, make_user) -> World:
    return build_world(logs_app, make_user)


@pytest.fixture
def errors(page) -> list[str]:
    """Uncaught script errors of the page: every test ends with none."""
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found
    assert found == []


def dark(page) -> None:
    page.locator('[data-sm="theme-toggle"]').first.click()
    page.wait_for_function("document.documentElement.dataset.bsTheme === 'dark'")


def rows(page):
    return page.locator('[data-sm="log-row"]')


def wait_rows(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('[data-sm=\"log-row\"]').length === n", arg=count
    )


def wait_lines(page, count: int, scope: str = '[data-sm="log-lines"]') -> None:
    """Wait until the log view shows ``count`` lines."""
    page.wait_for_function(
        "([scope, n]) => document.querySelectorAll(`${scope} .sm-log-line`).length === n",
        arg=[scope, count],
    )


def shown_seqs(page, scope: str = '[data-sm="log-lines"]') -> list[int]:
    return page.eval_on_selector_all(
        f"{scope} .sm-log-line", "nodes => nodes.map(n => Number(n.dataset.seq))"
    )


# ---------------------------------------------------------------------- the list


def test_list_search_highlights_and_filters(world, live_server, log_in, page, shot, errors):
    now = utcnow()
    world.run("olga", output="alpha widget ready\n", start=now - timedelta(hours=3), duration=3)
    world.run(
        "olga",
        output="<b>bold</b> widget\n",
        errors="oops\n",
        start=now - timedelta(hours=2),
        duration=40,
    )
    world.run(
        "olga",
        script="cleanup",
        status="failed",
        exit_code=2,
        output="beta gadget\n",
        start=now - timedelta(hours=1),
        duration=7,
    )
    world.run("ivan", output="ivan's widget\n")
    log_in("olga")
    page.goto(f"{live_server}/logs")
    wait_rows(page, 3)
    assert "Disk cleanup" in rows(page).first.inner_text(), "newest first"
    assert "oops" in page.locator('[data-sm="log-preview-errors"]').inner_text()
    shot("logs-list")

    page.fill('[data-sm="log-search"]', "widget")
    page.press('[data-sm="log-search"]', "Enter")
    wait_rows(page, 2)
    marks = page.locator('[data-sm="log-snippet"] mark')
    assert marks.count() == 2 and {m.lower() for m in marks.all_inner_texts()} == {"widget"}
    snippet = rows(page).first.locator('[data-sm="log-snippet"]').first
    assert "<b>bold</b> widget" in snippet.inner_text(), "markup in output is shown as text"
    assert snippet.locator("b").count() == 0
    assert "q=widget" in page.url
    shot("logs-list-search")

    page.reload()  # the filters live in the address
    wait_rows(page, 2)
    assert page.input_value('[data-sm="log-search"]') == "widget"

    page.locator('[data-sm="log-reset"]').click()
    wait_rows(page, 3)
    page.locator('[data-sm="log-status-button"]').click()
    page.check("#log-status-failed")
    page.locator('[data-sm="log-filters"] button[type="submit"]').last.click()
    wait_rows(page, 1)
    assert rows(page).locator('[data-sm="status"]').get_attribute("data-status") == "failed"

    # Save these filters, clear them, apply them again.
    page.locator('[data-sm="presets-button"]').click()
    page.fill('[data-sm="preset-name"]', "Failed runs")
    page.locator('[data-sm="preset-save"]').click()
    page.locator('[data-sm="preset"][data-name="Failed runs"]').wait_for()
    page.keyboard.press("Escape")
    page.locator('[data-sm="log-reset"]').click()
    wait_rows(page, 3)
    page.locator('[data-sm="presets-button"]').click()
    page.locator('[data-sm="preset"][data-name="Failed runs"] [data-sm="preset-apply"]').click()
    wait_rows(page, 1)
    assert page.is_checked("#log-status-failed")

    # Sort by duration, longest first.
    page.locator('[data-sm="log-reset"]').click()
    wait_rows(page, 3)
    page.locator('th[data-sort="duration"] button').click()
    page.wait_for_function(
        "document.querySelector('th[data-sort=\"duration\"]').getAttribute('aria-sort')"
        " === 'descending'"
    )
    wait_rows(page, 3)
    durations = page.locator('[data-sm="log-duration"]').all_inner_texts()
    assert durations[0] == "40 s"
    dark(page)
    shot("logs-list-dark")


def test_bulk_delete_after_confirming(world, live_server, log_in, page, shot, errors):
    ids = [world.run("olga", output=f"run {n}\n") for n in range(3)]
    running = world.run("olga", status="running")
    log_in("olga")
    page.goto(f"{live_server}/logs")
    wait_rows(page, 4)
    running_row = page.locator(f'[data-sm="log-row"][data-execution-id="{running}"]')
    assert running_row.locator('[data-sm="log-select"]').is_disabled()
    for run_id in ids[:2]:
        page.locator(
            f'[data-sm="log-row"][data-execution-id="{run_id}"] [data-sm="log-select"]'
        ).check()
    bar = page.locator('[data-sm="bulk-bar"]')
    assert bar.is_visible() and "2" in bar.locator('[data-sm="bulk-count"]').inner_text()
    shot("logs-bulk")

    with page.expect_download() as download:
        bar.locator('[data-sm="bulk-export"]').click()
        bar.locator('[data-format="jsonl"]').click()
    assert download.value.suggested_filename.endswith(".jsonl")
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(exported) == 2

    bar.locator('[data-sm="bulk-delete"]').click()
    dialog = page.locator('[data-sm="confirm-dialog"]')
    dialog.wait_for()
    shot("logs-bulk-confirm")
    dialog.locator('[data-sm="confirm-ok"]').click()
    wait_rows(page, 2)
    assert not world.exists(ids[0]) and not world.exists(ids[1]) and world.exists(ids[2])
    assert not bar.is_visible()


# ---------------------------------------------------------------------- a finished run

ANSI_LINES = [
    ("stdout", "\x1b[31mred\x1b[0m plain"),
    ("stdout", "\x1b[1;32mbold green\x1b[0m and \x1b[94mbright blue\x1b[39m"),
    ("stdout", "<script>window.__pwned = 1</script>"),
    ("stdout", '<img src="x" onerror="window.__pwned = 2">'),
    ("stderr", "\x1b[33mwarning\x1b[0m on stderr"),
    ("debug", "container started"),
]


def test_detail_renders_ansi_and_never_markup(world, live_server, log_in, page, shot, errors):
    run_id = world.run(
        "olga",
        lines=ANSI_LINES,
        output="red plain\n",
        errors="warning on stderr\n",
        parameters={"title": "<i>Report</i>", "count": 3},
    )
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    lines = page.locator('[data-sm="log-lines"] .sm-log-line')
    lines.nth(4).wait_for()
    assert lines.count() == 5, "stdout and stderr first; debug on its own tab"
    red = lines.nth(0).locator("span.sm-fg-1")
    assert red.inner_text() == "red"
    assert "sm-fg-1" not in (lines.nth(0).locator(".sm-log-text").inner_html().split("</span>")[-1])
    assert lines.nth(1).locator("span.sm-fg-2.sm-bold").inner_text() == "bold green"
    assert lines.nth(1).locator("span.sm-fg-12").inner_text() == "bright blue"
    assert (
        lines.nth(2).locator(".sm-log-text").inner_text() == "<script>window.__pwned = 1</script>"
    )
    assert lines.nth(3).locator(".sm-log-text").inner_text().startswith("<img")
    assert page.locator('[data-sm="log-lines"] script, [data-sm="log-lines"] img').count() == 0
    assert page.evaluate("window.__pwned") is None
    assert lines.nth(4).get_attribute("data-stream") == "stderr"
    assert "\x1b" not in page.locator('[data-sm="log-lines"]').inner_text()
    shot("logs-detail")

    page.locator('[data-sm="tab-errors"]').click()
    wait_lines(page, 1)
    assert "warning on stderr" in page.locator('[data-sm="log-lines"]').inner_text()
    page.locator('[data-sm="tab-debug"]').click()
    page.locator('[data-sm="log-lines"] .sm-log-debug').wait_for()
    assert page.locator('[data-sm="log-lines"]').inner_text().strip().endswith("container started")
    page.locator('[data-sm="tab-parameters"]').click()
    params = page.locator('[data-sm="pane-parameters"]')
    assert "<i>Report</i>" in params.inner_text() and params.locator("i:not(.bi)").count() == 0
    page.locator('[data-sm="tab-output"]').click()
    page.locator('[data-sm="stream-debug"]').check()
    wait_lines(page, 6)

    page.locator('[data-sm="run-download"]').click()
    with page.expect_download() as download:
        page.locator('[data-sm="download-txt"]').click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "red" in text and "container started" in text
    dark(page)
    shot("logs-detail-dark")


def test_tail_of_a_long_log_and_loading_earlier_lines(world, live_server, log_in, page, errors):
    run_id = world.run("olga", lines=[("stdout", f"line {n}") for n in range(1, 2501)])
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    wait_lines(page, 1000)
    seqs = shown_seqs(page)
    assert seqs[0] == 1501 and seqs[-1] == 2500
    earlier = page.locator('[data-sm="log-earlier"]')
    assert earlier.is_visible()
    earlier.click()
    wait_lines(page, 2000)
    seqs = shown_seqs(page)
    assert seqs == list(range(501, 2501))
    earlier.click()
    wait_lines(page, 2500)
    assert shown_seqs(page)[:3] == [1, 2, 3]
    assert not earlier.is_visible()


def test_delete_one_run(world, live_server, log_in, page, errors):
    run_id = world.run("olga", output="bye\n")
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    page.locator('[data-sm="run-delete"]').click()
    page.locator('[data-sm="confirm-ok"]').click()
    page.wait_for_url(f"{live_server}/logs")
    assert not world.exists(run_id)
    assert "deleted" in page.locator("#sm-notices").inner_text()


# ---------------------------------------------------------------------- live


def start_run(app, api, username: str = "olga") -> str:
    answer = api(username).post(
        f"/api/scripts/{script_id(app, 'unit_converter.py')}/execute", json={"parameters": {}}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["execution_id"]


@pytest.fixture
def live_app(logs_app, ready_app, fake):
    fake.program = FakeScript(exit_code=None)  # runs until the test finishes it
    return ready_app


def test_live_lines_appear_in_order(live_app, fake, make_user, api, live_server, log_in, page,
                                    shot, errors):  # fmt: skip
    make_user("olga", "operator")
    run_id = start_run(live_app, api)
    fake.emit(run_id, "\x1b[36mfirst\x1b[0m line, before the page opened")
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    page.locator('[data-sm="log-lines"] .sm-log-line').first.wait_for()
    assert page.locator('[data-sm="log-spinner"]').is_visible(), "live: a progress indicator"
    page.wait_for_function(
        "document.querySelector('[data-sm=\"run-viewers-count\"]').textContent.startsWith('1')"
    )
    for n in range(1, 61):
        fake.emit(run_id, f"line {n}", "stderr" if n % 20 == 0 else "stdout")
    wait_lines(page, 61)
    texts = page.locator('[data-sm="log-lines"] .sm-log-text').all_inner_texts()
    assert texts == ["first line, before the page opened"] + [f"line {n}" for n in range(1, 61)]
    seqs = shown_seqs(page)
    assert seqs == sorted(set(seqs)), "in order, each line once"
    assert page.locator('[data-sm="log-lines"] .sm-fg-6').inner_text() == "first"
    # Following the end: the newest line is in view.
    assert page.evaluate(
        "(() => { const b = document.querySelector('[data-sm=\"log-lines\"]');"
        " return b.scrollHeight - b.scrollTop - b.clientHeight < 30; })()"
    )
    shot("logs-live-detail")

    # Pause: new lines arrive but the view stays where it is; resume jumps to the end.
    page.locator('[data-sm="log-follow"]').click()
    page.evaluate("document.querySelector('[data-sm=\"log-lines\"]').scrollTop = 0")
    for n in range(61, 121):
        fake.emit(run_id, f"line {n}")
    wait_lines(page, 121)
    assert page.evaluate("document.querySelector('[data-sm=\"log-lines\"]').scrollTop") == 0
    page.locator('[data-sm="log-follow"]').click()
    page.wait_for_function(
        "(() => { const b = document.querySelector('[data-sm=\"log-lines\"]');"
        " return b.scrollHeight - b.scrollTop - b.clientHeight < 30; })()"
    )

    # Choosing streams joins again with them: the manager's debug lines come in too.
    page.locator('[data-sm="stream-debug"]').check()
    page.locator('[data-sm="log-lines"] .sm-log-debug').first.wait_for()
    assert "container started" in page.locator('[data-sm="log-lines"]').inner_text()
    fake.emit(run_id, "after the rejoin")
    page.locator('[data-sm="log-lines"] .sm-log-line', has_text="after the rejoin").wait_for()
    seqs = shown_seqs(page)
    assert seqs == sorted(set(seqs))

    fake.finish(run_id, 0)
    tick(live_app)
    badge = page.locator('[data-sm="run-header"] [data-sm="status"]')
    page.wait_for_function(
        'document.querySelector(\'[data-sm="run-header"] [data-sm="status"]\')'
        ".dataset.status === 'completed'"
    )
    assert badge.inner_text() == "Completed"
    page.wait_for_function(
        "document.querySelector('[data-sm=\"run-exit-code\"]').textContent === '0'"
    )
    assert not page.locator('[data-sm="log-spinner"]').is_visible()
    assert page.locator('[data-sm="run-delete"]').is_enabled()
    dark(page)
    shot("logs-live-detail-done-dark")


def test_reconnecting_resumes_from_the_last_line(
    live_app, fake, make_user, api, live_server, log_in, page, errors
):
    make_user("olga", "operator")
    run_id = start_run(live_app, api)
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    page.wait_for_function("window.smLogs.connection() && window.smLogs.connection().connected")
    fake.emit(run_id, "before")
    wait_lines(page, 1)
    page.evaluate("window.smLogs.connection().disconnect()")
    page.locator('[data-sm="log-connection"]').wait_for()
    for n in range(1, 11):
        fake.emit(run_id, f"while away {n}")
    wait_lines(page, 11)  # read over the API meanwhile
    page.evaluate("window.smLogs.connection().connect()")
    page.wait_for_function("window.smLogs.connection().connected")
    page.locator('[data-sm="log-connection"]').wait_for(state="hidden")
    for n in range(1, 6):
        fake.emit(run_id, f"back {n}")
    wait_lines(page, 16)
    page.wait_for_timeout(300)  # a repeat would show up now
    texts = page.locator('[data-sm="log-lines"] .sm-log-text').all_inner_texts()
    expected = ["before"] + [f"while away {n}" for n in range(1, 11)]
    assert texts == expected + [f"back {n}" for n in range(1, 6)]


def test_without_the_socket_client_the_view_reads_over_the_api(
    live_app, fake, make_user, api, live_server, log_in, page, errors
):
    page.route("**/socket.io.min.js", lambda route: route.abort())
    make_user("olga", "operator")
    run_id = start_run(live_app, api)
    log_in("olga")
    page.goto(f"{live_server}/logs/{run_id}")
    assert page.evaluate("typeof window.io") == "undefined"
    for n in range(1, 4):
        fake.emit(run_id, f"polled {n}")
    wait_lines(page, 3)
    assert page.locator('[data-sm="log-connection"]').inner_text() == "Live updates by polling"
    fake.finish(run_id, 0)
    tick(live_app)
    page.wait_for_function(
        'document.querySelector(\'[data-sm="run-header"] [data-sm="status"]\')'
        ".dataset.status === 'completed'"
    )


def test_watch_page_tabs_and_rerun(live_app, fake, make_user, api, live_server, log_in, page,
                                   shot, errors):  # fmt: skip
    make_user("olga", "operator")
    first = start_run(live_app, api)
    second = start_run(live_app, api)
    log_in("olga")
    page.goto(f"{live_server}/logs/live")
    tabs = page.locator('[data-sm="watch-tab"]')
    page.wait_for_function("document.querySelectorAll('[data-sm=\"watch-tab\"]').length === 2")
    assert page.locator('[data-sm="live-count"]').inner_text() == "2"
    fake.emit(first, "from the first run")
    fake.emit(second, "from the second run")
    first_pane = page.locator(f'[data-sm="watch-pane"][data-execution-id="{first}"]')
    second_pane = page.locator(f'[data-sm="watch-pane"][data-execution-id="{second}"]')
    first_pane.locator(".sm-log-line", has_text="from the first run").wait_for()
    assert not second_pane.is_visible()
    tabs.nth(1).click()
    second_pane.locator(".sm-log-line", has_text="from the second run").wait_for()
    assert "from the first run" not in second_pane.inner_text()
    page.check('[data-sm="watch-side"]')
    assert first_pane.is_visible() and second_pane.is_visible()
    shot("logs-watch-side-by-side")

    # Ended runs keep their tab, with their final state.
    fake.finish(first, 0)
    tick(live_app)
    page.wait_for_function(
        'id => document.querySelector(`[data-sm="watch-tab"][data-execution-id="${id}"]'
        " [data-sm=\"status\"]`).dataset.status === 'completed'",
        arg=first,
    )

    # A run started meanwhile gets a tab of its own (two may run at once in this group).
    third = start_run(live_app, api)
    page.locator(f'[data-sm="watch-pane"][data-execution-id="{third}"]').wait_for()
    fake.finish(second, 0)
    tick(live_app)

    # Run the first one again with the same parameters, from its page.
    page.goto(f"{live_server}/logs/{first}")
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        page.locator('[data-sm="run-rerun"]').click()
    assert answer.value.status == 201
    page.wait_for_url(lambda url: "/logs/" in url and first not in url)
    again = page.url.rsplit("/", 1)[-1]
    assert "started again" in page.locator("#sm-notices").inner_text()
    fake.emit(again, "the second time")
    page.locator('[data-sm="log-lines"] .sm-log-line', has_text="the second time").wait_for()


def test_group_page_run_panel_streams_the_output(live_app, fake, make_user, live_server, log_in,
                                                 page, shot, errors):  # fmt: skip
    make_user("olga", "operator")
    log_in("olga")
    page.goto(f"{live_server}/groups/{group_id(live_app, 'data_processing')}")
    sid = script_id(live_app, "unit_converter.py")
    card = page.locator(f'[data-sm="script-card"][data-script-id="{sid}"]')
    card.locator('[data-sm="run"]').click()
    card.locator("[id^=params-].collapse.show").wait_for()
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        card.locator('[data-sm="run"]').click()
    run_id = answer.value.json()["execution_id"]
    output = card.locator('[data-sm="run-output"]')
    assert output.is_hidden(), "no output yet: nothing shown"
    for n in range(1, 21):
        fake.emit(run_id, f"converted {n}")
    wait_lines(page, 20, '[data-sm="run-output"]')
    assert output.locator(".sm-log-line").last.inner_text() == "converted 20"
    assert (
        card.locator('[data-sm="run-log-link"]').get_attribute("href").endswith(f"/logs/{run_id}")
    )
    shot("logs-run-panel")
    fake.finish(run_id, 0)
    tick(live_app)
    page.wait_for_function(
        'document.querySelector(\'[data-sm="run-status"] [data-sm="status"]\')'
        ".dataset.status === 'completed'"
    )


def test_foreign_run_is_refused_on_the_socket_too(live_app, make_user, api, live_server, log_in,
                                                  page, errors):  # fmt: skip
    make_user("olga", "operator")
    make_user("ivan", "operator")
    run_id = start_run(live_app, api)
    log_in("ivan")
    page.goto(f"{live_server}/logs")
    page.wait_for_function(
        "window.smLogs && window.smLogs.connection() && window.smLogs.connection().connected"
    )
    got = page.evaluate(
        """id => new Promise((resolve) => {
            const socket = window.smLogs.connection();
            const lines = [];
            socket.on("lines", (d) => lines.push(d));
            socket.on("error", (d) => resolve({error: d.message, lines: lines.length}));
            socket.emit("join", {execution_id: id, last_seq: 0});
        })""",
        run_id,
    )
    assert got["lines"] == 0 and "No such run" in got["error"]


# ---------------------------------------------------------------------- statistics and admin


def test_stats_and_admin_pages(world, live_server, log_in, page, shot, errors):
    for days_ago, status in ((0, "completed"), (1, "completed"), (1, "failed"), (3, "killed")):
        world.run("root", status=status, start=utcnow() - timedelta(days=days_ago, hours=1))
    log_in("root")
    page.goto(f"{live_server}/logs/stats?days=7")
    assert page.locator('[data-sm="trend-bar"]').count() == 7
    assert page.locator('[data-sm="stat-runs"]').inner_text() == "4"
    assert page.locator('[data-sm="stat-success"]').inner_text().startswith("50")
    shot("logs-stats")
    dark(page)
    shot("logs-stats-dark")

    page.click("text=Admin")
    page.click(".dropdown-menu >> text=System logs")
    page.wait_for_url("**/admin/logs/system")
    page.select_option('[data-sm="system-file"]', "access")
    page.wait_for_url("**file=access**")
    assert page.locator('[data-sm="system-row"]').count() >= 1, "the pages just opened"
    page.fill('[data-sm="system-filter"]', "/logs/stats")
    visible = page.locator('[data-sm="system-row"]:visible')
    assert visible.count() >= 1 and all("/logs/stats" in t for t in visible.all_inner_texts())
    shot("admin-system-logs-dark")

    page.click("text=Admin")
    page.click(".dropdown-menu >> text=Audit")
    page.wait_for_url("**/admin/logs/audit")
    assert page.locator('[data-sm="audit-row"]').count() >= 1
    with page.expect_download() as download:
        page.locator('[data-sm="audit-export"][data-format="csv"]').click()
    assert download.value.suggested_filename.endswith(".csv")
    shot("admin-audit-dark")
