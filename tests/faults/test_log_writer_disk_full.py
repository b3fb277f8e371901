"""A log file on a full disk: a batch is written whole or not at all, and writing goes on
once there is room. The disk is a 64 KiB tmpfs (root needed; skipped otherwise)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from manager.logs.store import LogDiskFull, LogWriter, parse_record


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "--lazy", str(folder)], check=False)


def records(path: Path) -> list[tuple[int, str, str]]:
    return [
        (seq, stream, text)
        for seq, _stamp, stream, text in map(parse_record, path.read_bytes().splitlines())
    ]


def test_a_batch_that_does_not_fit_is_not_written_at_all(small_disk: Path):
    path = small_disk / "run.log"
    writer = LogWriter(path)
    writer.append("stdout", "first")
    writer.flush()
    for _ in range(2000):  # ~280 KB: far more than the disk holds
        writer.append("stdout", "x" * 100)
    with pytest.raises(LogDiskFull):
        writer.flush()
    assert records(path) == [(1, "stdout", "first")], "no half record, no part of the batch"
    assert writer.size == path.stat().st_size and not writer.dirty

    writer.append("stdout", "after")  # the dropped batch freed its space
    assert [line.text for line in writer.flush()] == ["after"]
    writer.close()
    assert records(path) == [(1, "stdout", "first"), (2, "stdout", "after")]
