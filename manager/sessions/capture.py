"""Read a session's capture file: the output as the runner's capture process wrote it.

The runner (``runner-image/smrunner/capture.py``) appends one record per output line to
``<capture folder>/output.log``, a folder the backend gives each run (a bind mount for Docker, a
volume for Kubernetes): ``<seq> <stamp> <kind>\\t<text>\\n``, ``seq`` from 1, ``stamp`` RFC 3339
UTC with nanoseconds and strictly increasing, ``kind`` ``stdout``/``stderr`` (a line), ``note``
(a line of the runner's own, read as a ``debug`` line), ``trunc``
(the size cap was reached) or ``end`` (the runner's exit status; the last record).

``read_capture`` turns the file into ``LogLine``s from a stamp on (exclusive), following it while
the session runs. It holds at most one record (a capped line) in memory, says what it could not
read (a gap, a damaged record, a file past its cap, a capture that ended without its ``end``
record) as ``debug`` lines instead of skipping it silently, and stops at the cap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from manager.sessions.backend import LogLine

CAPTURE_FILE = "output.log"
CAPTURE_MOUNT = "/run/sm/capture"  # where the session sees its capture folder
# Created in the capture folder once the container is on its network (``DockerBackend.start``
# joins it after the start); the runner waits for it before the script (smrunner.context).
NETWORK_READY_FILE = "network-ready"
NETWORK_READY_ENV = "SM_NETWORK_READY_FILE"
READ_BLOCK = 256 * 1024
RECORD_ROOM = 512  # a record's header and a cut marker, on top of SM_LOG_MAX_LINE
SLACK = 64 * 1024  # a capture file may pass SM_LOG_MAX_BYTES by this (and one line) at most
IDLE_SLEEP = (0.005, 0.05)  # seconds between two looks at a quiet file (first, most)
# Seconds between two "is the session still running?" questions while the file is quiet: from
# CHECK_EVERY, doubling up to CHECK_EVERY_MAX. The ``end`` record says when a run ends; the
# question only catches a capture process that died without writing it, and each one is a call
# to the engine: 50 quiet sessions asking twice a second slowed every engine call (bench/load).
CHECK_EVERY = 0.5
CHECK_EVERY_MAX = 5.0
# The runner's own notes (starting, serving, stopped) are debug lines, not the script's stderr.
_KINDS = {b"stdout": "stdout", b"stderr": "stderr", b"note": "debug"}


@dataclass(frozen=True)
class CaptureLimits:
    """The caps the capture process applies, which the reader enforces again."""

    max_bytes: int = 50 * 1024 * 1024
    max_line: int = 16 * 1024

    @property
    def file_limit(self) -> int:
        """The size past which a capture file was not written by the capture process alone."""
        return self.max_bytes + self.max_line + RECORD_ROOM + SLACK

    def environment(self) -> dict[str, str]:
        """What the capture process reads (with ``SM_CAPTURE_DIR``)."""
        return {
            "SM_CAPTURE_DIR": CAPTURE_MOUNT,
            "SM_LOG_MAX_BYTES": str(self.max_bytes),
            "SM_LOG_MAX_LINE": str(self.max_line),
        }


def stamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 stamp; raises ValueError when not one."""
    whole, dot, rest = stamp.strip().partition(".")
    digits = ""
    if dot:  # split "123456789Z" into the fraction and the zone
        count = len(rest) - len(rest.lstrip("0123456789"))
        digits, whole = rest[:count], whole + rest[count:]
    seconds = int(datetime.fromisoformat(whole.replace("Z", "+00:00")).timestamp())
    return seconds * 1_000_000_000 + int(digits[:9].ljust(9, "0") or "0")


def _record_stamp(raw: bytes) -> int | None:
    try:
        head = raw[: raw.index(b"\t")]
        return stamp_ns(head.split(b" ")[1].decode("ascii"))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def offset_after(handle: BinaryIO, after_ns: int) -> int:
    """Offset of a record start at or before the first record stamped after ``after_ns``."""
    lo, hi = 0, os.fstat(handle.fileno()).st_size
    while hi - lo > READ_BLOCK:
        mid = (lo + hi) // 2
        handle.seek(mid)
        handle.readline()  # the rest of the record ``mid`` falls into
        start = handle.tell()
        raw = handle.readline(READ_BLOCK)
        stamp = _record_stamp(raw) if raw.endswith(b"\n") else None
        if start >= hi or stamp is None:
            hi = mid
        elif stamp <= after_ns:
            lo = start + len(raw)
        else:
            hi = start
    return lo


class _Reader:
    """State of one pass over a capture file."""

    def __init__(self, limits: CaptureLimits, after_ns: int | None):
        self.limits = limits
        self.after_ns = after_ns
        self.expected: int | None = None  # the seq the next record should carry
        self.ended = False
        self.truncated = False

    def line(self, raw: bytes) -> LogLine | None:
        """The common case, quickly: the next output line in sequence; None for the rest."""
        tab = raw.find(b"\t")
        fields = raw[:tab].split(b" ")
        if tab < 0 or len(fields) != 3 or self.after_ns is not None:
            return None
        stream = _KINDS.get(fields[2])
        if stream is None or len(raw) - tab > self.limits.max_line + RECORD_ROOM:
            return None
        try:
            seq = int(fields[0])
        except ValueError:
            return None
        if self.expected is not None and seq != self.expected:
            return None
        self.expected = seq + 1
        return LogLine(stream, raw[tab + 1 :].decode("utf-8", "replace"), fields[1].decode())

    def parse(self, raw: bytes) -> Iterator[LogLine]:
        """The LogLines of one complete record (without its newline)."""
        tab = raw.find(b"\t")
        fields = raw[:tab].split(b" ") if tab > 0 else []
        if len(fields) != 3 or not fields[0].isdigit():
            yield LogLine("debug", f"a damaged output record was skipped ({len(raw)} bytes)")
            return
        seq = int(fields[0])
        stamp = fields[1].decode("ascii", "replace")
        if self.after_ns is not None:
            try:
                moment = stamp_ns(stamp)
            except ValueError:
                yield LogLine("debug", f"an output record with a bad stamp was skipped (#{seq})")
                return
            if moment <= self.after_ns:
                return  # stored before (the binary search lands a little early)
            self.after_ns = None  # stamps increase: every later record is new too
        if self.expected is not None and seq != self.expected:
            yield LogLine(
                "debug",
                f"output records {self.expected}..{seq - 1} are missing from the capture file",
                stamp,
            )
        self.expected = seq + 1
        kind = fields[2]
        text = raw[tab + 1 :]
        stream = _KINDS.get(kind)
        if stream is not None:
            if len(text) > self.limits.max_line + RECORD_ROOM:
                text = text[: self.limits.max_line] + b" [line cut: SM_LOG_MAX_LINE]"
            yield LogLine(stream, text.decode("utf-8", "replace"), stamp)
        elif kind == b"trunc":
            self.truncated = True
            yield LogLine("debug", text.decode("utf-8", "replace"), stamp, truncated=True)
        elif kind == b"end":
            self.ended = True
        else:
            yield LogLine("debug", f"an output record of unknown kind was skipped (#{seq})", stamp)


def read_capture(
    path: str | Path,
    limits: CaptureLimits,
    *,
    since: str | None = None,
    follow: bool = False,
    running: Callable[[], bool] = lambda: False,
    on_overflow: Callable[[], None] | None = None,
) -> Iterator[LogLine]:
    """The capture file's lines after ``since`` (a stamp, exclusive), in order.

    ``follow`` keeps reading while ``running()`` says the session runs (asked while the file
    is quiet, first after ``CHECK_EVERY`` seconds, then less and less often, at least every
    ``CHECK_EVERY_MAX``) and until the ``end`` record. A file
    growing past ``limits.file_limit`` was written to by something else than the capture
    process: ``on_overflow`` is called (once), the lines up to the limit are read, and a
    ``truncated`` note ends the output.
    """
    after_ns = stamp_ns(since) if since else None
    reader = _Reader(limits, after_ns)
    limit = limits.file_limit
    with open(path, "rb") as handle:
        base = offset_after(handle, after_ns) if after_ns is not None else 0
        handle.seek(base)  # ``base``: where ``rest`` (a record's unread start) begins
        rest = b""
        overflowed = False
        idle = IDLE_SLEEP[0]
        checked = time.monotonic()
        check_every = CHECK_EVERY
        while not reader.ended:
            block = handle.read(READ_BLOCK)
            if block:
                idle = IDLE_SLEEP[0]
                if not overflowed and os.fstat(handle.fileno()).st_size > limit:
                    overflowed = True
                    if on_overflow is not None:
                        on_overflow()
                data = rest + block if rest else block
                start = 0
                while not reader.ended:
                    newline = data.find(b"\n", start)
                    if newline < 0:
                        break
                    if base + newline > limit:
                        yield _overflow_note(limits)
                        return
                    if newline > start:
                        raw = data[start:newline]
                        line = reader.line(raw)
                        if line is not None:
                            yield line
                        else:
                            yield from reader.parse(raw)
                    start = newline + 1
                base += start
                rest = data[start:]
                if len(rest) > limits.max_line + RECORD_ROOM:
                    # A record longer than the capture process ever writes: not its work.
                    yield LogLine("debug", "an over-long output record was skipped")
                    rest = b""
                    if not _skip_line(handle):
                        break
                    base = handle.tell()
                continue
            if not follow:
                break
            now = time.monotonic()
            if now - checked >= check_every:
                checked = now
                check_every = min(check_every * 2, CHECK_EVERY_MAX)
                if not running():
                    # One more read: what the session wrote just before it ended.
                    follow = False
                    continue
            time.sleep(idle)
            idle = min(idle * 2, IDLE_SLEEP[1])
        if not reader.ended and not reader.truncated:
            yield LogLine(
                "debug",
                "the output capture stopped before the session ended (the session was killed"
                " or ran out of memory): output the script wrote last may be missing",
            )


def _skip_line(handle: BinaryIO) -> bool:
    """Read up to and past the next newline, block by block; False at the end of the file."""
    while True:
        block = handle.read(READ_BLOCK)
        if not block:
            return False
        newline = block.find(b"\n")
        if newline >= 0:
            handle.seek(newline + 1 - len(block), os.SEEK_CUR)
            return True


def _overflow_note(limits: CaptureLimits) -> LogLine:
    return LogLine(
        "debug",
        f"the capture file grew past {limits.file_limit} bytes (SM_LOG_MAX_BYTES plus room for"
        " one line): something in the session wrote to it directly; the session was stopped"
        " and nothing after this point is stored.",
        truncated=True,
    )
