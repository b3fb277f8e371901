"""gunicorn config for benchmarks: a greenlet in the worker writes its own figures to a file.

Loaded through ``GUNICORN_CMD_ARGS=--config bench/probe_gunicorn.py`` (``benchlib.Manager``),
so the manager runs unchanged. Every ``SM_BENCH_PROBE_INTERVAL`` seconds one JSON line goes to
``SM_BENCH_PROBE``: time, RSS and file descriptors of the worker, live greenlets (counted on the
heap, a few ms), the database pool's checked-out and open connections, and glibc's own count of
the heap's bytes in use and free (``mallinfo2``): RSS growing while "in use" stays flat is the
allocator keeping freed memory (fragmentation), not objects kept alive; and what the SQLite
library holds (``sqlite3_memory_used``: page caches and prepared statements of every
connection); and CPython's small-object allocator (``sys._debugmallocstats``): the arenas it
holds against the bytes of live objects in them.

Opt-in, to find what grows (both slow the worker; their figures are for finding, not timing):

- ``SM_PROBE_TRACEMALLOC=1``: traces Python allocations (``SM_PROBE_TRACEMALLOC_FRAMES``
  frames each, 12 by default), adds ``traced_mib`` to each line, takes a snapshot after
  ``SM_PROBE_WARMUP`` seconds (60) and every ``SM_PROBE_SNAPSHOT_EVERY`` seconds (120) after
  it, and writes the 30 allocation sites that grew most since the warm-up snapshot, by
  traceback, to ``<SM_BENCH_PROBE>.tracemalloc.txt`` (rewritten each time).
- ``SM_PROBE_GC_TYPES=1``: at the same moments, counts the objects the garbage collector
  tracks by type name and writes the 30 types that grew most since warm-up to
  ``<SM_BENCH_PROBE>.gctypes.txt``.
- ``SM_PROBE_MALLOC_TRIM=1``: after each sample, ``malloc_trim(0)`` hands the free memory of
  glibc's heap back to the system: if that flattens the RSS, what grew was freed memory the
  allocator kept (fragmentation), not objects.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
from collections import Counter

TOP = 30


def _rss_mib() -> dict:
    """RSS, and its anonymous (heap, arenas, stacks) and file-backed (code, libraries) parts."""
    names = {"VmRSS:": "rss_mib", "RssAnon:": "rss_anon_mib", "RssFile:": "rss_file_mib"}
    figures = {}
    with open("/proc/self/status") as status:
        for line in status:
            name = names.get(line.split(":", 1)[0] + ":")
            if name:
                figures[name] = round(int(line.split()[1]) / 1024, 1)
    return figures


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _malloc_mib() -> dict:
    """glibc's heap: bytes handed out (``in_use``, mmapped blocks included) and free in arenas."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return {}
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    mib = 1024 * 1024
    return {
        "malloc_in_use_mib": round((info.uordblks + info.hblkhd) / mib, 1),
        "malloc_free_mib": round(info.fordblks / mib, 1),
    }


def _sqlite_mib() -> dict:
    """What the SQLite library holds (page caches, prepared statements) across connections."""
    try:
        memory_used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
    except (OSError, AttributeError):  # sqlite3 built in statically: not measurable from here
        return {}
    memory_used.restype = ctypes.c_int64
    return {"sqlite_mib": round(memory_used() / 1024 / 1024, 1)}


def _pymalloc_mib() -> dict:
    """CPython's small-object allocator: its arenas (1 MiB each, mapped apart from malloc's
    heap), the bytes of live objects in them, and what is free inside them (fragmentation)."""
    import sys
    import tempfile

    stats = getattr(sys, "_debugmallocstats", None)
    if stats is None:
        return {}
    with tempfile.TemporaryFile() as tmp:  # it writes to the C stderr: borrow that descriptor
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    figures = {}
    for line in text.splitlines():
        label, _, value = line.partition("=")
        if value.strip().replace(",", "").isdigit():
            figures.setdefault(label.strip(), int(value.strip().replace(",", "")))
    arenas = next((v for k, v in figures.items() if k.endswith("bytes/arena")), None)
    used = figures.get("# bytes in allocated blocks")
    if arenas is None or used is None:
        return {}
    mib = 1024 * 1024
    return {
        "pymalloc_arenas_mib": round(arenas / mib, 1),
        "pymalloc_used_mib": round(used / mib, 1),
    }


def _sample(app) -> dict:  # type: ignore[no-untyped-def]
    import gc
    import tracemalloc

    from greenlet import greenlet

    from manager.extensions import db

    greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and obj)
    with app.app_context():
        pool = db.engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else None
        pooled = pool.checkedin() if hasattr(pool, "checkedin") else None
    sample = {
        "t": time.time(),
        **_rss_mib(),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "greenlets": greenlets,
        "db_checked_out": checked_out,
        "db_idle_in_pool": pooled,
        **_malloc_mib(),
        **_sqlite_mib(),
        **_pymalloc_mib(),
    }
    if tracemalloc.is_tracing():
        sample["traced_mib"] = round(tracemalloc.get_traced_memory()[0] / 1024 / 1024, 1)
    return sample


def _type_counts() -> Counter[str]:
    import gc

    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


class _Growth:
    """Snapshots after warm-up and every few minutes; writes what grew since the first."""

    def __init__(self, path: str):
        import tracemalloc

        self.path = path
        self.trace = tracemalloc.is_tracing()
        self.types = os.environ.get("SM_PROBE_GC_TYPES") == "1"
        self.began = time.time()
        self.first: tracemalloc.Snapshot | None = None
        self.first_types: Counter[str] | None = None

    def _snapshot(self):  # type: ignore[no-untyped-def]
        import linecache
        import tracemalloc

        snapshot = tracemalloc.take_snapshot()
        return snapshot.filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
                # the probe's own: its counts, and linecache filled by formatting tracebacks
                tracemalloc.Filter(False, __file__, all_frames=True),
                tracemalloc.Filter(False, linecache.__file__),
            )
        )

    def take(self) -> None:
        import gc

        gc.collect()  # what is still reachable: garbage not yet collected is not growth
        minutes = (time.time() - self.began) / 60
        if self.trace:
            snapshot = self._snapshot()
            if self.first is None:
                self.first = snapshot
            else:
                self._write_traces(snapshot, minutes)
        if self.types:
            counts = _type_counts()
            if self.first_types is None:
                self.first_types = counts
            else:
                self._write_types(counts, minutes)

    def _write_traces(self, snapshot, minutes: float) -> None:  # type: ignore[no-untyped-def]
        assert self.first is not None
        diffs = snapshot.compare_to(self.first, "traceback")
        total = sum(d.size_diff for d in diffs)
        lines = [f"{minutes:.1f} min since the probe began; traced growth since warm-up "
                 f"{total / 1024:+.1f} KiB; top {TOP} sites by growth"]  # fmt: skip
        for n, diff in enumerate(sorted(diffs, key=lambda d: d.size_diff, reverse=True)[:TOP]):
            lines.append(
                f"\n#{n + 1} {diff.size_diff / 1024:+.1f} KiB, {diff.count_diff:+d} blocks "
                f"(now {diff.size / 1024:.1f} KiB in {diff.count} blocks)"
            )
            lines.extend("    " + line for line in diff.traceback.format(most_recent_first=True))
        with open(self.path + ".tracemalloc.txt", "w") as out:
            out.write("\n".join(lines) + "\n")

    def _write_types(self, counts: Counter[str], minutes: float) -> None:
        assert self.first_types is not None
        growth = Counter({name: counts[name] - self.first_types.get(name, 0) for name in counts})
        lines = [f"{minutes:.1f} min since the probe began; gc-tracked objects "
                 f"{sum(self.first_types.values())} -> {sum(counts.values())}; top {TOP} types "
                 "by growth since warm-up"]  # fmt: skip
        for name, grew in growth.most_common(TOP):
            lines.append(f"{grew:+8d}  now {counts[name]:8d}  {name}")
        with open(self.path + ".gctypes.txt", "w") as out:
            out.write("\n".join(lines) + "\n")


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    path = os.environ.get("SM_BENCH_PROBE")
    if not path:
        return
    import gevent

    if os.environ.get("SM_PROBE_TRACEMALLOC") == "1":
        import tracemalloc

        tracemalloc.start(int(os.environ.get("SM_PROBE_TRACEMALLOC_FRAMES", "12")))
    interval = float(os.environ.get("SM_BENCH_PROBE_INTERVAL", "5"))
    warmup = float(os.environ.get("SM_PROBE_WARMUP", "60"))
    every = float(os.environ.get("SM_PROBE_SNAPSHOT_EVERY", "120"))
    app = worker.wsgi
    growth = _Growth(path)
    wanted = growth.trace or growth.types
    trim = os.environ.get("SM_PROBE_MALLOC_TRIM") == "1"

    def probe() -> None:
        next_snapshot = time.time() + warmup
        while True:
            try:
                line = json.dumps(_sample(app))
            except Exception as exc:  # noqa: BLE001 - a probe must never take the worker down
                line = json.dumps({"t": time.time(), "error": repr(exc)})
            with open(path, "a") as out:
                out.write(line + "\n")
            if trim:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            if wanted and time.time() >= next_snapshot:
                try:
                    growth.take()
                except Exception as exc:  # noqa: BLE001 - as above
                    with open(path + ".error.txt", "a") as out:
                        out.write(repr(exc) + "\n")
                next_snapshot = time.time() + every
            gevent.sleep(interval)

    gevent.spawn(probe)
