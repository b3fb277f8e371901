"""The output capture without an engine: the runner's capture process on the host's Python, the
manager's capture reader, and the engine-log fallback's frame reader."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from manager.sessions.backend import LogLine
from manager.sessions.capture import CAPTURE_FILE, CaptureLimits, read_capture
from manager.sessions.docker import read_frames

REPO = Path(__file__).resolve().parents[2]
RUNNER_DIR = REPO / "runner-image"


def run_captured(tmp_path: Path, script: str, **env: str) -> tuple[int, Path]:
    """``python -m smrunner`` with a capture folder, as in a session; (exit status, file)."""
    (tmp_path / "script.py").write_text(script)
    context = tmp_path / "context.json"
    document = {
        "script_path": str(tmp_path / "script.py"),
        "workspace_path": str(tmp_path),
        "parameters": {},
        "environment": {},
        "brand": {},
        "prefix": "",
        "port": 8080,
    }
    context.write_text(json.dumps(document))
    capture = tmp_path / "capture"
    capture.mkdir()
    environment = {**os.environ, "SM_CONTEXT_FILE": str(context), "SM_CAPTURE_DIR": str(capture),
                   "PYTHONPATH": str(RUNNER_DIR), **env}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "smrunner"], env=environment, timeout=120,
                          capture_output=True)  # fmt: skip
    assert done.stdout == b"" and done.stderr == b"", "output must go to the capture file only"
    return done.returncode, capture / CAPTURE_FILE


def texts(lines: list[LogLine], stream: str = "stdout") -> list[str]:
    return [line.text for line in lines if line.stream == stream]


def test_a_tight_loop_of_300000_lines_is_captured_whole_and_in_order(tmp_path):
    status, path = run_captured(
        tmp_path,
        "import sys\n"
        "for n in range(1, 300001):\n"
        "    print(f'line {n}')\n"
        "    if n % 1000 == 0:\n"
        "        print(f'err {n}', file=sys.stderr)\n",
    )
    assert status == 0
    lines = list(read_capture(path, CaptureLimits()))
    assert texts(lines) == [f"line {n}" for n in range(1, 300001)]
    assert texts(lines, "stderr") == [f"err {n}" for n in range(1000, 300001, 1000)]
    assert not [line for line in lines if line.stream == "debug"]  # no gap, no missing end
    stamps = [line.timestamp for line in lines]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # Resuming after any line gives exactly the lines after it.
    middle = lines[123_456]
    again = list(read_capture(path, CaptureLimits(), since=middle.timestamp))
    assert again == lines[123_457:]


def test_a_256_mib_line_keeps_its_head_and_the_next_lines(tmp_path):
    status, path = run_captured(
        tmp_path,
        "import sys\n"
        "print('before')\n"
        "chunk = 'x' * (1 << 20)\n"
        "for _ in range(256):\n"
        "    sys.stdout.write(chunk)\n"
        "print()\n"
        "print('after')\n"
        "sys.stdout.write('last words without a newline')\n",
        SM_LOG_MAX_LINE="1000",
    )
    assert status == 0
    assert path.stat().st_size < 10_000  # the line was never stored whole
    out = texts(list(read_capture(path, CaptureLimits(max_line=1000))))
    assert out[0] == "before"
    assert out[1].startswith("x" * 1000) and "x" * 1001 not in out[1]
    assert out[1].endswith("[line cut: longer than SM_LOG_MAX_LINE=1000 bytes;"
                           " the rest of this line is not stored]")  # fmt: skip
    assert out[2:] == ["after", "last words without a newline"]


def test_the_size_cap_ends_the_output_with_a_note_and_never_blocks_the_script(tmp_path):
    status, path = run_captured(
        tmp_path,
        "for n in range(1, 200001):\n    print(f'line {n}')\nprint('done')\nraise SystemExit(3)\n",
        SM_LOG_MAX_BYTES="100000",
    )
    assert status == 3  # the script ran to its end: output past the cap was read and dropped
    assert path.stat().st_size < 100_000 + 500
    lines = list(read_capture(path, CaptureLimits(max_bytes=100_000)))
    out = texts(lines)
    assert 1000 < len(out) < 5000 and out == [f"line {n}" for n in range(1, len(out) + 1)]
    note = lines[-1]
    assert note.stream == "debug" and note.truncated
    assert "100000 bytes (SM_LOG_MAX_BYTES)" in note.text


def test_the_runner_status_and_signals_pass_through_the_capture(tmp_path):
    status, path = run_captured(tmp_path, "import os, signal\nos.kill(os.getpid(), 9)\n")
    assert status == 137
    assert path.read_bytes().splitlines()[-1].endswith(b" end\t137")


def write(path: Path, records: list[bytes]) -> None:
    with open(path, "ab") as handle:
        handle.write(b"".join(records))


def record(seq: int, kind: str, text: str, second: int = 0) -> bytes:
    return f"{seq} 2026-01-01T00:00:{second:02d}.{seq:09d}Z {kind}\t{text}\n".encode()


def test_the_reader_says_what_it_could_not_read(tmp_path):
    path = tmp_path / CAPTURE_FILE
    write(path, [record(1, "stdout", "one"), b"garbage without a tab\n", record(2, "stderr", "two"),
                 record(5, "stdout", "five"), record(6, "mystery", "?")])  # fmt: skip
    lines = list(read_capture(path, CaptureLimits()))
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "one"),
        ("debug", "a damaged output record was skipped (21 bytes)"),
        ("stderr", "two"),
        ("debug", "output records 3..4 are missing from the capture file"),
        ("stdout", "five"),
        ("debug", "an output record of unknown kind was skipped (#6)"),
        ("debug", "the output capture stopped before the session ended (the session was killed"
                  " or ran out of memory): output the script wrote last may be missing"),
    ]  # fmt: skip


def test_a_file_written_past_its_cap_stops_the_session_and_the_reading(tmp_path):
    path = tmp_path / CAPTURE_FILE
    limits = CaptureLimits(max_bytes=10_000, max_line=100)
    write(path, [record(n, "stdout", f"line {n}") for n in range(1, 3001)])  # ~150 KB
    stopped = []
    lines = list(read_capture(path, limits, on_overflow=lambda: stopped.append(True)))
    assert stopped == [True]
    assert lines[-1].truncated and "wrote to it directly" in lines[-1].text
    out = texts(lines)
    assert out == [f"line {n}" for n in range(1, len(out) + 1)]
    assert sum(len(record(n, "stdout", t)) for n, t in enumerate(out, 1)) <= limits.file_limit


def test_an_over_long_record_is_cut_without_being_held_whole(tmp_path):
    path = tmp_path / CAPTURE_FILE
    limits = CaptureLimits(max_line=100)
    write(
        path, [record(1, "stdout", "a" * 1000), b"x" * 5_000_000 + b"\n", record(2, "stdout", "b")]
    )
    lines = list(read_capture(path, limits))
    assert lines[0].text == "a" * 100 + " [line cut: SM_LOG_MAX_LINE]"
    assert lines[1].text == "an over-long output record was skipped"
    assert lines[2].text == "b"


def test_following_a_growing_file_ends_at_the_end_record(tmp_path):
    path = tmp_path / CAPTURE_FILE
    write(path, [record(1, "stdout", "first")])
    seen: list[LogLine] = []
    reader = threading.Thread(
        target=lambda: seen.extend(
            read_capture(path, CaptureLimits(), follow=True, running=lambda: True)
        )  # fmt: skip
    )
    reader.start()
    write(path, [record(2, "stdout", "sec")])
    write(path, [b"3 2026-01-01T00:00:00.000000003Z stdout\tpart", b"ly written\n"])
    write(path, [record(4, "end", "0")])
    reader.join(10)
    assert not reader.is_alive()
    assert texts(seen) == ["first", "sec", "partly written"]


def test_a_quiet_session_is_asked_after_less_and_less_often(tmp_path, monkeypatch):
    """Each "still running?" is a call to the engine: while the file stays quiet they thin
    out (up to CHECK_EVERY_MAX apart) instead of coming twice a second for ever."""
    from manager.sessions import capture

    monkeypatch.setattr(capture, "CHECK_EVERY", 0.02)
    monkeypatch.setattr(capture, "CHECK_EVERY_MAX", 0.3)
    path = tmp_path / CAPTURE_FILE
    write(path, [record(1, "stdout", "only line")])
    asked: list[float] = []

    def running() -> bool:
        asked.append(time.monotonic())
        return len(asked) < 9

    lines = list(read_capture(path, CaptureLimits(), follow=True, running=running))
    assert texts(lines) == ["only line"]
    gaps = [later - earlier for earlier, later in zip(asked, asked[1:], strict=False)]
    assert min(gaps[-3:]) >= 0.25, gaps  # the last ones at the most: 0.3 s apart


def frames(stream: int, stamp: str, data: bytes, size: int = 16 * 1024) -> bytes:
    """The engine's multiplexed frames of ``data`` (split like the engine splits long lines)."""
    out = io.BytesIO()
    for start in range(0, len(data), size):
        payload = stamp.encode() + b" " + data[start : start + size]
        out.write(struct.pack(">BxxxL", stream, len(payload)) + payload)
    return out.getvalue()


@pytest.mark.parametrize("size", [5, 5000, 16 * 1024])
def test_engine_frames_of_a_long_line_are_cut_at_the_cap(size):
    stamp = "2026-01-01T00:00:00.000000001Z"
    raw = frames(1, stamp, b"y" * 8_000_000 + b"\nnext\n", 16 * 1024) + frames(2, stamp, b"e\n")
    lines = list(read_frames(io.BytesIO(raw), max_line=size))
    assert lines[0].text == "y" * size + f" [line cut: 8000000 bytes, SM_LOG_MAX_LINE={size}]"
    assert [(li.stream, li.text) for li in lines[1:]] == [("stdout", "next"), ("stderr", "e")]
