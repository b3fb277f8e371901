"""The watcher on a real folder: real file events, debounced, one call per group."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from manager.catalog.watcher import CatalogWatcher

WAIT = 5.0


class Recorder:
    """Collects the watcher's callbacks."""

    def __init__(self) -> None:
        self.calls: queue.Queue[str | None] = queue.Queue()
        self.fail_next = False

    def __call__(self, group: str | None) -> None:
        self.calls.put(group)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("refresh failed")

    def next(self, timeout: float = WAIT) -> str | None:
        return self.calls.get(timeout=timeout)

    def drain(self, quiet: float) -> list[str | None]:
        """Every call until none came for ``quiet`` seconds."""
        seen: list[str | None] = []
        while True:
            try:
                seen.append(self.calls.get(timeout=quiet))
            except queue.Empty:
                return seen


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watched(groups: Path, recorder: Recorder) -> Iterator[CatalogWatcher]:
    (groups / "alpha").mkdir()
    (groups / "beta").mkdir()
    watcher = CatalogWatcher(groups, recorder, debounce=0.3)
    watcher.start()
    yield watcher
    watcher.stop()


def test_creating_a_script_reports_its_group(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    (groups / "alpha" / "new.py").write_text("print(1)\n")

    assert recorder.next() == "alpha"


def test_a_burst_of_changes_gives_one_call_per_group(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    for index in range(5):
        (groups / "alpha" / f"s{index}.py").write_text("print(1)\n")
        (groups / "beta" / "metadata.json").write_text(f'{{"n": {index}}}')
        time.sleep(0.02)

    assert sorted(recorder.drain(quiet=1.5)) == ["alpha", "beta"]


def test_a_new_group_folder_asks_for_a_full_scan(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    (groups / "gamma").mkdir()

    assert recorder.drain(quiet=1.5) == [None]


def test_bytecode_and_private_folders_are_ignored(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    cache = groups / "alpha" / "__pycache__"
    cache.mkdir()
    (cache / "new.cpython-311.pyc").write_bytes(b"\0")
    (groups / "alpha" / "edit.py.swp").write_bytes(b"\0")
    (groups / "README.md").write_text("top-level notes\n")

    assert recorder.drain(quiet=1.5) == []


def test_a_failing_callback_does_not_stop_the_watcher(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    recorder.fail_next = True
    (groups / "alpha" / "one.py").write_text("print(1)\n")
    assert recorder.next() == "alpha"

    (groups / "beta" / "two.py").write_text("print(2)\n")
    assert recorder.next() == "beta"


def test_after_stop_nothing_is_reported(
    watched: CatalogWatcher, groups: Path, recorder: Recorder
) -> None:
    watched.stop()
    assert not watched.running

    (groups / "alpha" / "late.py").write_text("print(1)\n")

    assert recorder.drain(quiet=1.0) == []


def test_polling_observer_also_reports_changes(groups: Path, recorder: Recorder) -> None:
    (groups / "alpha").mkdir()
    watcher = CatalogWatcher(groups, recorder, debounce=0.2, polling=True)
    watcher.start()
    try:
        time.sleep(0.6)  # let the first snapshot be taken
        (groups / "alpha" / "polled.py").write_text("print(1)\n")
        assert recorder.next() == "alpha"
    finally:
        watcher.stop()


def test_a_missing_folder_cannot_be_watched(tmp_path: Path, recorder: Recorder) -> None:
    with pytest.raises(FileNotFoundError):
        CatalogWatcher(tmp_path / "missing", recorder).start()
