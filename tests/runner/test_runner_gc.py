"""The runner imports Flask with the cycle collector off, then freezes what it imported and turns
collection back on: the script, and a legacy script's runner, always run with it on."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def test_the_script_runs_with_collection_on_and_the_runners_imports_frozen(run_runner) -> None:
    done = run_runner(
        "import gc\n"
        "print('enabled:', gc.isenabled())\n"
        "print('frozen many:', gc.get_freeze_count() > 10_000)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "enabled: True" in done.stdout and "frozen many: True" in done.stdout


def test_a_legacy_scripts_runner_collects_as_usual(
    session_files: Callable[..., tuple[Path, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The legacy runner lives as long as the session, relaying its requests: it must not run
    for days with the collector off. In-process, with the legacy child's start replaced."""
    from smrunner import main as runner_main

    seen: list[bool] = []

    def run_legacy(context: Any, terminated: Any) -> int:
        seen.append(gc.isenabled())
        return 0

    context_file, _ = session_files('"""\nScriptsManager Metadata:\n@interface: legacy\n"""\n')
    monkeypatch.setenv("SM_CONTEXT_FILE", str(context_file))
    monkeypatch.setattr(runner_main, "run_legacy", run_legacy)
    monkeypatch.setattr(runner_main.signal, "signal", lambda *args: None)
    monkeypatch.chdir(tmp_path)  # main() enters the workspace
    try:
        assert runner_main.main() == 0
    finally:
        gc.enable()
    assert seen == [True]
