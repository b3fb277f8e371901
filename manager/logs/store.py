"""The execution log file: one append-only text file per run, one record per line.

A record is ``<seq> <stamp> <stream>\\t<text>\\n``:

- ``seq`` numbers the run's lines from 1 across all streams, never reused;
- ``stamp`` is the engine's own timestamp for container lines, verbatim (RFC 3339, up to
  nanoseconds: the pump resumes from it with ``since`` after a restart), and the manager's clock
  in milliseconds for ``debug`` lines; readers get it as milliseconds in ``Line.ts``;
- ``stream`` is ``stdout``, ``stderr`` or ``debug``;
- ``text`` is the line as printed (ANSI escapes kept) with ``\\``, newline, carriage return and
  tab escaped as ``\\\\``, ``\\n``, ``\\r``, ``\\t``, so a record is always one line.

Records are only ever appended; a record without its final newline (the manager died while
writing it) does not exist for readers and is cut off by the next ``LogWriter``.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

STREAMS = ("stdout", "stderr", "debug")
CONTAINER_STREAMS = ("stdout", "stderr")
# Debug lines starting with this mark the per-run size cap: output after it was dropped.
TRUNCATION_MARK = "[log truncated]"

_BLOCK = 256 * 1024
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class Line(NamedTuple):
    """One stored line as readers see it; ``[seq, ts, stream, text]`` in JSON (Socket.IO).

    A named tuple, not a dataclass: the live path makes tens of thousands a second, and a tuple
    of strings and ints is cheap to build, leaves the garbage collector alone once collected
    and goes into a JSON array as it is.
    """

    seq: int  # 1-based, per execution, across all streams, never reused
    ts: str  # ISO-8601 UTC with milliseconds, e.g. 2026-11-25T10:00:00.123Z
    stream: str  # "stdout" | "stderr" | "debug"
    text: str  # without newline; ANSI escapes kept as printed


@dataclass(frozen=True)
class ResumePoint:
    """Where a writer (and the pump) carries on in an existing file."""

    last_seq: int = 0
    cursor: str | None = None  # engine stamp of the last stored container line: ``since``
    capped: bool = False  # the size cap was reached: container output is dropped
    size: int = 0


# ---------------------------------------------------------------------------- paths


def log_path(log_dir: str | Path, user_id: int, start_time: datetime, execution_uuid: str) -> Path:
    """``<log_dir>/executions/<user id>/<YYYY-MM-DD>/execution_<uuid>.log``.

    Keyed by the user's id, never the username: a name used again must not reach old logs.
    """
    day = start_time.strftime("%Y-%m-%d")
    folder = Path(log_dir) / "executions" / str(int(user_id)) / day
    return folder / f"execution_{execution_uuid}.log"


# ---------------------------------------------------------------------------- the format


def millis(stamp: str) -> str:
    """An RFC 3339 stamp (any precision, any offset) as UTC with milliseconds."""
    if len(stamp) >= 20 and stamp[-1] == "Z":
        if stamp[19] == ".":
            return f"{stamp[:19]}.{(stamp[20:-1] + '000')[:3]}Z"
        if len(stamp) == 20:
            return f"{stamp[:19]}.000Z"
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def now_stamp() -> str:
    """The manager's clock as a record stamp (UTC, milliseconds)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def escape(text: str) -> str:
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    return text


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def format_record(seq: int, stamp: str, stream: str, text: str) -> bytes:
    """One record, newline included."""
    return f"{seq} {stamp} {stream}\t{escape(text)}\n".encode("utf-8", "replace")


def parse_record(raw: bytes) -> tuple[int, str, str, str]:
    """``(seq, stamp, stream, text)`` of one record (with or without its newline).

    Raises ValueError when ``raw`` is not a record.
    """
    decoded = raw.decode("utf-8", "replace")
    head, tab, text = decoded.partition("\t")
    seq, stamp, stream = head.split(" ")
    if not tab:
        raise ValueError("not a log record")
    if text.endswith("\n"):
        text = text[:-1]
    return int(seq), stamp, stream, unescape(text)


def _line(raw: bytes) -> Line:
    seq, stamp, stream, text = parse_record(raw)
    return Line(seq, millis(stamp), stream, text)


def _stream_of(raw: bytes) -> str:
    head = raw[: raw.find(b"\t")]
    return head[head.rfind(b" ") + 1 :].decode("ascii", "replace")


# ---------------------------------------------------------------------------- reading


def file_size(path: str | Path) -> int:
    """Bytes on disk; 0 when the file does not exist."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _records_from(handle: BinaryIO, offset: int) -> Iterator[bytes]:
    """Complete records from ``offset`` on (an unfinished last record is left out)."""
    handle.seek(offset)
    rest = b""
    while True:
        block = handle.read(_BLOCK)
        if not block:
            return
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        for part in parts:
            if part:
                yield part


def _first_offset_after(handle: BinaryIO, size: int, after_seq: int) -> int:
    """Offset of a record start at or before the first record with ``seq > after_seq``."""
    lo, hi = 0, size
    while after_seq > 0 and hi - lo > _BLOCK:
        mid = (lo + hi) // 2
        handle.seek(mid)
        handle.readline()  # the rest of the record ``mid`` falls into
        start = handle.tell()
        raw = handle.readline()
        if start >= hi or not raw.endswith(b"\n"):
            hi = mid
            continue
        if int(raw[: raw.index(b" ")]) <= after_seq:
            lo = start + len(raw)
        else:
            hi = start
    return lo


def iter_lines(
    path: str | Path,
    *,
    after_seq: int = 0,
    until_seq: int | None = None,
    streams: Iterable[str] | None = None,
) -> Iterator[Line]:
    """Stored lines with ``after_seq < seq <= until_seq``, in order, read lazily (for exports)."""
    wanted = None if streams is None else frozenset(streams)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return
    try:
        start = _first_offset_after(handle, os.fstat(handle.fileno()).st_size, after_seq)
        for raw in _records_from(handle, start):
            seq = int(raw[: raw.index(b" ")])
            if seq <= after_seq:
                continue
            if until_seq is not None and seq > until_seq:
                return
            if wanted is None or _stream_of(raw) in wanted:
                yield _line(raw)
    finally:
        handle.close()


def read_lines(
    path: str | Path,
    *,
    after_seq: int = 0,
    limit: int | None = None,
    streams: Iterable[str] | None = None,
    until_seq: int | None = None,
    max_bytes: int | None = None,
) -> list[Line]:
    """Up to ``limit`` lines after ``after_seq`` (and up to ``until_seq``), oldest first.

    ``max_bytes`` stops once the texts returned add up to that many characters (at least one
    line is returned). A missing file reads as empty.
    """
    lines: list[Line] = []
    size = 0
    for line in iter_lines(path, after_seq=after_seq, until_seq=until_seq, streams=streams):
        lines.append(line)
        size += len(line.text) + 40
        if limit is not None and len(lines) >= limit:
            break
        if max_bytes is not None and size >= max_bytes:
            break
    return lines


def _records_backwards(path: str | Path) -> Iterator[bytes]:
    """Complete records from the last one to the first."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return
    try:
        position = os.fstat(handle.fileno()).st_size
        rest = b""
        first = True
        while position > 0:
            step = min(_BLOCK // 4, position)
            position -= step
            handle.seek(position)
            parts = (handle.read(step) + rest).split(b"\n")
            if first:
                parts.pop()  # after the last newline: empty, or an unfinished record
                first = False
            rest = parts.pop(0) if position > 0 else b""
            for raw in reversed(parts):
                if raw:
                    yield raw
        if rest:
            yield rest
    finally:
        handle.close()


def tail_lines(path: str | Path, n: int, *, streams: Iterable[str] | None = None) -> list[Line]:
    """The last ``n`` lines (of ``streams`` when given), oldest first."""
    wanted = None if streams is None else frozenset(streams)
    found: list[Line] = []
    if n <= 0:
        return found
    for raw in _records_backwards(path):
        if wanted is None or _stream_of(raw) in wanted:
            found.append(_line(raw))
            if len(found) >= n:
                break
    found.reverse()
    return found


def count_lines(path: str | Path) -> int:
    """The last ``seq`` in the file (0 when empty or missing)."""
    for raw in _records_backwards(path):
        return int(raw[: raw.index(b" ")])
    return 0


def resume_point(path: str | Path) -> ResumePoint:
    """What a writer needs to carry on: last seq, engine cursor, whether capped, size."""
    last_seq = 0
    for raw in _records_backwards(path):
        seq, stamp, stream, text = parse_record(raw)
        last_seq = last_seq or seq
        if stream in CONTAINER_STREAMS:
            return ResumePoint(last_seq, stamp, False, file_size(path))
        if text.startswith(TRUNCATION_MARK):
            capped_cursor = _last_container_stamp(path)
            return ResumePoint(last_seq, capped_cursor, True, file_size(path))
    return ResumePoint(last_seq, None, False, file_size(path))


def _last_container_stamp(path: str | Path) -> str | None:
    for raw in _records_backwards(path):
        if _stream_of(raw) in CONTAINER_STREAMS:
            return parse_record(raw)[1]
    return None


# ---------------------------------------------------------------------------- writing


class LogDiskFull(OSError):
    """The disk holding the logs is full: the batch was not written (nor any part of it)."""


class LogWriter:
    """Append records to one run's file; thread-safe; one writer per file per process.

    ``append`` numbers a line and buffers it; ``flush`` writes the buffer with one ``write``
    and returns the lines it made durable (to the OS: a killed manager loses nothing flushed).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Unbuffered: a failed write must not leave bytes behind to be written later.
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._repair()
        point = resume_point(self.path)
        self.resume = point
        self.last_seq = point.last_seq
        self.size = point.size
        self.pending_bytes = 0
        self.closed = False
        self._pending: list[bytes] = []
        self._pending_lines: list[Line] = []

    def _repair(self) -> None:
        """Cut an unfinished last record (the previous manager died while writing it)."""
        size = os.fstat(self._file.fileno()).st_size
        if size == 0:
            return
        with open(self.path, "rb") as reader:
            position = size
            while position > 0:
                step = min(_BLOCK, position)
                position -= step
                reader.seek(position)
                block = reader.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    keep = position + newline + 1
                    break
            else:
                keep = 0
        if keep != size:
            self._file.truncate(keep)

    def append(self, stream: str, text: str, stamp: str | None = None) -> Line:
        """Number and buffer one line; ``stamp`` defaults to the manager's clock."""
        stamp = stamp or now_stamp()
        with self._lock:
            self.last_seq += 1
            record = format_record(self.last_seq, stamp, stream, text)
            self._pending.append(record)
            self.size += len(record)
            self.pending_bytes += len(record)
            line = Line(self.last_seq, millis(stamp), stream, text)
            self._pending_lines.append(line)
            return line

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def flush(self) -> list[Line]:
        """Write what is buffered; return those lines (empty when nothing was buffered)."""
        with self._lock:
            if not self._pending or self.closed:
                return []
            self._write(b"".join(self._pending))
            lines = self._pending_lines
            self._pending = []
            self._pending_lines = []
            self.pending_bytes = 0
            return lines

    def _write(self, data: bytes) -> None:
        """Append ``data`` whole, or not at all: on a full disk the file is cut back to where
        it was (no half record), the batch is dropped and LogDiskFull raised."""
        fd = self._file.fileno()
        start = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            os.ftruncate(fd, start)
            self.size -= self.pending_bytes
            self.last_seq -= len(self._pending)
            self._pending = []
            self._pending_lines = []
            self.pending_bytes = 0
            raise LogDiskFull(exc.errno, f"{exc.strerror}: {self.path}") from exc

    def close(self) -> list[Line]:
        """Flush and close; return the lines flushed (none when the disk is full)."""
        try:
            lines = self.flush()
        except LogDiskFull:
            lines = []
        with self._lock:
            self.closed = True
            self._file.close()
        return lines
