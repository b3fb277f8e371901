"""The context file: defaults, validation, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from smrunner.context import ContextError, SessionContext, load_context


def test_defaults_fill_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    path.write_text(json.dumps({"script_path": "/scripts/g/a.py"}))
    context = load_context(path)
    assert context == SessionContext(script_path="/scripts/g/a.py")
    assert (context.workspace_path, context.port, context.prefix) == ("/workspace", 8080, "")


def test_full_context_is_read(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    data = {
        "script_path": "/scripts/g/a.py",
        "workspace_path": "/data/ws",
        "parameters": {"n": 3},
        "environment": {"USER_ID": "7"},
        "brand": {"name": "ACME"},
        "prefix": "/project/1/script/2/user/3/",
        "port": 9000,
    }
    path.write_text(json.dumps(data))
    context = load_context(path)
    assert context.prefix == "/project/1/script/2/user/3"
    assert context.parameters == {"n": 3}
    assert context.environment == {"USER_ID": "7"}
    assert context.port == 9000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({}, "script_path"),
        ({"script_path": "/a.py", "parameters": [1]}, "parameters"),
        ({"script_path": "/a.py", "environment": "x"}, "environment"),
        ({"script_path": "/a.py", "prefix": "/a b"}, "prefix"),
        ({"script_path": "/a.py", "prefix": "/a;Domain=evil"}, "prefix"),
        ({"script_path": "/a.py", "port": 70000}, "port"),
        ({"script_path": "/a.py", "port": "8080"}, "port"),
        ({"script_path": "/a.py", "port": True}, "port"),
    ],
)
def test_malformed_context_is_refused(data: object, message: str) -> None:
    with pytest.raises(ContextError, match=message):
        SessionContext.from_dict(data)


def test_missing_or_broken_file_is_a_context_error(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="cannot read"):
        load_context(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ContextError, match="not valid JSON"):
        load_context(broken)


def test_a_standby_says_it_is_ready_once_preloaded_and_the_script_never_sees_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import sys
    import threading

    from smrunner import capture, context

    marker = tmp_path / "capture" / "standby-ready"
    marker.parent.mkdir()
    monkeypatch.setenv("SM_CAPTURE_DIR", str(marker.parent))
    monkeypatch.delenv("SM_CONTEXT_WAIT", raising=False)
    assert "SM_STANDBY_READY_FILE" not in capture.runner_environment()  # a cold run: no marker
    monkeypatch.setenv("SM_CONTEXT_WAIT", "1")
    given = capture.runner_environment()
    assert given["SM_STANDBY_READY_FILE"] == str(marker) and "SM_CAPTURE_DIR" not in given

    monkeypatch.setenv("SM_STANDBY_READY_FILE", str(marker))
    path = tmp_path / "context.json"
    seen: list[bool] = []

    def hand_over() -> None:  # the manager, once the runner said it waits
        while not marker.exists():
            threading.Event().wait(0.005)
        seen.append("waitress.server" in sys.modules and "smrunner.app" in sys.modules)
        partial = path.with_name(".context.json.partial")  # whole, as the pool writes it
        partial.write_text(json.dumps({"script_path": "/scripts/g/a.py"}))
        os.replace(partial, path)

    manager = threading.Thread(target=hand_over)
    manager.start()
    loaded = load_context(path)
    manager.join(10)
    assert loaded.script_path == "/scripts/g/a.py"
    assert seen == [True]  # ready meant Flask and the web server were imported
    assert "SM_STANDBY_READY_FILE" not in os.environ
    assert context.READY_ENV == "SM_STANDBY_READY_FILE"
