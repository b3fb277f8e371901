"""The project selector, the file browser and a `file` parameter, in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def errors(page) -> list[str]:
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


def test_project_selector_switches_creates_renames_and_deletes(
    page, live_server, log_in, make_user, catalog, errors
):
    make_user("olga", "operator")
    log_in("olga")
    name = page.locator('[data-sm="active-project-name"]')
    assert name.inner_text() == "project_default"
    answers = iter(["alpha", "beta"])
    page.on("dialog", lambda d: d.accept(next(answers, "")) if d.type == "prompt" else d.accept())
    page.click('[data-sm="active-project"]')
    with page.expect_navigation():
        page.click('[data-sm="project-new"]')
    assert name.inner_text() == "alpha"
    page.click('[data-sm="active-project"]')
    with page.expect_navigation():
        page.click('[data-sm="project-rename"]')
    assert name.inner_text() == "beta"
    page.click('[data-sm="active-project"]')
    page.wait_for_selector('[data-sm="project-choice"] >> text=project_default')
    with page.expect_navigation():
        page.click('[data-sm="project-choice"] >> text=project_default')
    assert name.inner_text() == "project_default"
    assert page.locator('[data-sm="project-delete"]').is_disabled()  # the default stays
    page.click('[data-sm="active-project"]')
    with page.expect_navigation():
        page.click('[data-sm="project-choice"] >> text=beta')
    page.click('[data-sm="active-project"]')
    with page.expect_navigation():
        page.click('[data-sm="project-delete"]')  # confirmed by the dialog handler
    assert name.inner_text() == "project_default"
    page.click('[data-sm="active-project"]')
    page.wait_for_selector('[data-sm="project-choice"]')
    assert page.locator('[data-sm="project-choice"]').all_inner_texts() == ["project_default"]
    assert errors == []


def test_file_browser_uploads_previews_and_deletes(
    page, live_server, log_in, make_user, catalog, errors, tmp_path: Path
):
    make_user("olga", "operator")
    log_in("olga")
    page.goto(f"{live_server}/files?group={catalog['group']}")
    page.wait_for_selector('[data-sm="files-empty"]')
    table = tmp_path / "table.csv"
    table.write_text('name,value\n"a, quoted",1\n<b>x</b>,2\n')
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"threshold": 3}))
    picture = tmp_path / "dot.png"
    picture.write_bytes(PNG)
    page.set_input_files('[data-sm="file-upload"]', [str(table), str(settings)])
    page.wait_for_selector('[data-sm="file-row"][data-path="settings.json"]')
    # Drag and drop: a drop event carrying a file, as the browser sends it.
    page.evaluate(
        """(bytes) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "dot.png", {type: "image/png"}));
        const zone = document.querySelector('[data-sm="file-dropzone"]');
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        list(PNG),
    )
    page.wait_for_selector('[data-sm="file-row"][data-path="dot.png"]')
    row = page.locator('[data-sm="file-row"][data-path="table.csv"]')
    row.locator('[data-sm="file-preview-open"]').click()
    cells = page.locator('[data-sm="file-preview-table"] td')
    cells.first.wait_for()
    assert cells.all_inner_texts() == ["a, quoted", "1", "<b>x</b>", "2"]  # text, not markup
    page.locator(
        '[data-sm="file-row"][data-path="settings.json"] [data-sm="file-preview-open"]'
    ).click()
    page.wait_for_selector('[data-sm="file-preview-text"]')
    assert '"threshold": 3' in page.locator('[data-sm="file-preview-text"]').inner_text()
    page.locator('[data-sm="file-row"][data-path="dot.png"] [data-sm="file-preview-open"]').click()
    image = page.locator('[data-sm="file-preview-image"]')
    image.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-sm=\"file-preview-image\"]').naturalWidth === 1"
    )
    with page.expect_download() as download:
        row.locator('[data-sm="file-download"]').click()
    assert Path(download.value.path()).read_text() == table.read_text()
    page.on("dialog", lambda d: d.accept())
    row.locator('[data-sm="file-delete"]').click()
    page.wait_for_selector('[data-sm="file-row"][data-path="table.csv"]', state="detached")
    assert "B" in page.locator('[data-sm="files-usage"]').inner_text()
    assert errors == []


def test_viewers_see_a_read_only_browser_and_strangers_the_login(
    page, live_server, log_in, make_user, catalog, errors
):
    page.goto(f"{live_server}/files")
    assert "/login" in page.url
    make_user("vera", "viewer")
    log_in("vera")
    page.goto(f"{live_server}/files?group={catalog['group']}")
    page.wait_for_selector('[data-sm="files-read-only"]')
    assert page.locator('[data-sm="file-upload"]').count() == 0
    assert page.locator('[data-sm="file-delete"]').count() == 0
    assert errors == []


def test_a_file_parameter_is_uploaded_into_the_workspace(
    app, page, live_server, log_in, make_user, catalog, errors, tmp_path: Path
):
    from manager.extensions import db
    from manager.models import Script

    with app.app_context():
        db.session.add(
            Script(
                group_id=catalog["group"],
                filename="load.py",
                display_name="Load data",
                required_level="operator",
                parameters=[{"name": "data", "type": "file", "required": True, "label": "Data"}],
                metadata_json={},
            )
        )
        db.session.commit()
    uid = make_user("olga", "operator")
    log_in("olga")
    page.goto(f"{live_server}/groups/{catalog['group']}")
    source = tmp_path / "input.csv"
    source.write_text("a,b\n")
    page.set_input_files("[data-sm-file-param]", str(source))
    status = page.locator('[data-sm="file-param-status"][data-state="uploaded"]')
    status.wait_for(state="attached")  # in the collapsed parameters panel
    stored = status.text_content()
    assert stored.startswith("uploads/") and stored.endswith("/input.csv")
    hidden = page.locator('input[type=hidden][name="data"]').input_value()
    assert hidden == f"/workspace/{stored}"
    workspace = Path(app.config["SM_DATA_DIR"]) / "script_groups" / "browser_tools" / str(uid)
    assert [p.read_text() for p in workspace.rglob("input.csv")] == ["a,b\n"]
    assert errors == []
