"""The log file format and its readers: plain functions on files, no app."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from manager.logs.store import (
    TRUNCATION_MARK,
    Line,
    LogWriter,
    count_lines,
    file_size,
    format_record,
    iter_lines,
    log_path,
    millis,
    parse_record,
    read_lines,
    resume_point,
    tail_lines,
)

TRICKY = [
    "plain",
    "tab\there and\ttwice",
    "new\nline and \r carriage return\r\n",
    "back\\slash \\n not a newline \\\\t",
    "\x1b[1;31mred bold\x1b[0m and \x1b[32mgreen\x1b[0m",
    "unicode: ñandú, 東京, emoji 🎉, zero-width\u200b, line sep\u2028end",
    "",
    " leading and trailing spaces ",
    "\\",
]


def stamp(n: int) -> str:
    return f"2026-11-25T10:00:{n // 1_000_000 % 60:02d}.{n % 1_000_000:06d}123Z"


def write(path: Path, texts: list[tuple[str, str]]) -> LogWriter:
    writer = LogWriter(path)
    for n, (stream, text) in enumerate(texts):
        writer.append(stream, text, stamp(n))
    writer.flush()
    return writer


def test_log_path_is_per_user_and_day():
    path = log_path("/srv/logs", 42, datetime(2026, 11, 25, 23, 59), "abc-123")
    assert path == Path("/srv/logs/executions/42/2026-11-25/execution_abc-123.log")


@pytest.mark.parametrize(
    "engine, expected",
    [
        ("2026-11-25T10:00:00.123456789Z", "2026-11-25T10:00:00.123Z"),
        ("2026-11-25T10:00:00.1Z", "2026-11-25T10:00:00.100Z"),
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T11:00:00.5+01:00", "2026-11-25T10:00:00.500Z"),
    ],
)
def test_engine_stamps_read_as_utc_milliseconds(engine, expected):
    assert millis(engine) == expected


@pytest.mark.parametrize("text", TRICKY)
def test_a_record_is_one_line_and_round_trips(text):
    record = format_record(7, stamp(1), "stderr", text)
    assert record.count(b"\n") == 1 and record.endswith(b"\n")
    assert parse_record(record) == (7, stamp(1), "stderr", text)


def test_file_round_trip_keeps_order_streams_and_text(tmp_path):
    path = tmp_path / "run.log"
    texts = [(("stdout", "stderr", "debug")[n % 3], t) for n, t in enumerate(TRICKY)]
    write(path, texts).close()
    lines = read_lines(path)
    assert [(line.stream, line.text) for line in lines] == texts
    assert [line.seq for line in lines] == list(range(1, len(texts) + 1))
    assert lines[0].ts == "2026-11-25T10:00:00.000Z"
    assert path.read_bytes().count(b"\n") == len(texts)  # human-readable: a record a line
    assert path.read_text().splitlines()[0] == f"1 {stamp(0)} stdout\tplain"


def test_reading_after_a_seq_with_limits_and_streams(tmp_path):
    path = tmp_path / "run.log"
    texts = [("stderr" if n % 4 == 0 else "stdout", f"line {n}") for n in range(1, 50_001)]
    write(path, texts).close()
    assert file_size(path) > 1_000_000  # large enough for the bisection to matter
    randomly = random.Random(4)
    for after in [0, 1, 2, 49_999, 50_000, 60_000] + randomly.sample(range(50_000), 40):
        got = read_lines(path, after_seq=after, limit=3)
        assert [line.seq for line in got] == list(range(after + 1, min(after + 3, 50_000) + 1))
    errors = read_lines(path, after_seq=10, limit=2, streams=["stderr"])
    assert [(line.seq, line.text) for line in errors] == [(12, "line 12"), (16, "line 16")]
    window = read_lines(path, after_seq=100, until_seq=105)
    assert [line.seq for line in window] == [101, 102, 103, 104, 105]
    assert len(read_lines(path, after_seq=0, max_bytes=1000)) < 30
    assert sum(1 for _ in iter_lines(path, streams=["stderr"])) == 12_500


def test_tail_and_count(tmp_path):
    path = tmp_path / "run.log"
    texts = [("debug" if n % 100 == 0 else "stdout", f"line {n}") for n in range(1, 20_001)]
    write(path, texts).close()
    assert count_lines(path) == 20_000
    assert [line.text for line in tail_lines(path, 3)] == [
        f"line {n}" for n in (19_998, 19_999, 20_000)
    ]
    debug = tail_lines(path, 2, streams=["debug"])
    assert [line.seq for line in debug] == [19_900, 20_000]
    assert len(tail_lines(path, 500, streams=["debug"])) == 200
    assert tail_lines(path, 0) == []


def test_missing_file_reads_empty(tmp_path):
    missing = tmp_path / "nope.log"
    assert read_lines(missing) == [] and tail_lines(missing, 5) == []
    assert count_lines(missing) == 0 and file_size(missing) == 0
    assert resume_point(missing).last_seq == 0


def test_unfinished_record_is_invisible_and_cut_by_the_next_writer(tmp_path):
    path = tmp_path / "run.log"
    write(path, [("stdout", "one"), ("stdout", "two")]).close()
    with path.open("ab") as torn:  # the manager died in the middle of a write
        torn.write(b"3 2026-11-25T10:00:02.000000000Z stdout\thalf a li")
    assert count_lines(path) == 2 and [line.text for line in read_lines(path)] == ["one", "two"]
    assert [line.text for line in tail_lines(path, 5)] == ["one", "two"]
    writer = LogWriter(path)
    assert writer.last_seq == 2
    assert writer.append("stdout", "three", stamp(9)) == Line(
        3, millis(stamp(9)), "stdout", "three"
    )
    writer.close()
    assert [line.text for line in read_lines(path)] == ["one", "two", "three"]


def test_resume_point_gives_the_engine_cursor_and_the_cap(tmp_path):
    path = tmp_path / "run.log"
    writer = write(path, [("stdout", "a"), ("stderr", "b")])
    writer.append("debug", "ended")
    writer.close()
    point = resume_point(path)
    assert point.last_seq == 3 and point.cursor == stamp(1) and not point.capped
    assert point.size == file_size(path)
    writer = LogWriter(path)
    writer.append("debug", f"{TRUNCATION_MARK} cap reached")
    writer.append("debug", "ended")
    writer.close()
    capped = resume_point(path)
    assert capped.capped and capped.cursor == stamp(1) and capped.last_seq == 5


def test_writer_buffers_until_flush(tmp_path):
    path = tmp_path / "run.log"
    writer = LogWriter(path)
    writer.append("stdout", "buffered")
    assert writer.dirty and count_lines(path) == 0
    flushed = writer.flush()
    assert [line.text for line in flushed] == ["buffered"] and not writer.dirty
    assert writer.flush() == []
    writer.close()
    assert count_lines(path) == 1
