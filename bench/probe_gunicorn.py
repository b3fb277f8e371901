"""gunicorn config for benchmarks: a greenlet in the worker writes its own figures to a file.

Loaded through ``GUNICORN_CMD_ARGS=--config bench/probe_gunicorn.py`` (``benchlib.Manager``),
so the manager runs unchanged. Every ``SM_BENCH_PROBE_INTERVAL`` seconds one JSON line goes to
``SM_BENCH_PROBE``: time, RSS and file descriptors of the worker, live greenlets (counted on the
heap, a few ms), and the database pool's checked-out and open connections.
"""

from __future__ import annotations

import json
import os
import time


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _sample(app) -> dict:  # type: ignore[no-untyped-def]
    import gc

    from greenlet import greenlet

    from manager.extensions import db

    greenlets = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet) and obj)
    with app.app_context():
        pool = db.engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else None
        pooled = pool.checkedin() if hasattr(pool, "checkedin") else None
    return {
        "t": time.time(),
        "rss_mib": round(_rss_mib(), 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "greenlets": greenlets,
        "db_checked_out": checked_out,
        "db_idle_in_pool": pooled,
    }


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    path = os.environ.get("SM_BENCH_PROBE")
    if not path:
        return
    import gevent

    interval = float(os.environ.get("SM_BENCH_PROBE_INTERVAL", "5"))
    app = worker.wsgi

    def probe() -> None:
        while True:
            try:
                line = json.dumps(_sample(app))
            except Exception as exc:  # noqa: BLE001 - a probe must never take the worker down
                line = json.dumps({"t": time.time(), "error": repr(exc)})
            with open(path, "a") as out:
                out.write(line + "\n")
            gevent.sleep(interval)

    gevent.spawn(probe)
