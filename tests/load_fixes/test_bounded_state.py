"""SQLite's page caches stay bounded however many connections the pool has kept: each pooled
connection holds its own cache (2 MiB by default), and bench/soak saw the manager's RSS step up
2.5 MiB, for good, when a burst left its pool with 6 idle connections instead of 2."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from manager.db import SQLITE_HEAP_LIMIT, engine_options, tune_sqlite


def sqlite_memory_used() -> int:
    """Bytes the SQLite library holds in this process (every connection's caches), asked of
    the very library Python's ``sqlite3`` module has loaded (another copy would answer 0)."""
    import sqlite3  # noqa: F401 - loads the library whose figure is read

    maps = Path("/proc/self/maps")
    loaded = sorted(
        {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
        if maps.exists()
        else set()
    )
    if not loaded:
        pytest.skip("Python's sqlite3 has SQLite built in here, not as a shared library to ask")
    memory_used = ctypes.CDLL(loaded[0]).sqlite3_memory_used
    memory_used.restype = ctypes.c_int64
    return int(memory_used())


def test_pooled_connections_share_a_bounded_page_cache(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'big.db'}"
    engine = create_engine(url, **engine_options(url, environ={}))
    tune_sqlite(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (output TEXT)"))
        conn.execute(  # about 20 MiB: more than ten connections' default caches
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)"
                " INSERT INTO runs SELECT printf('%.250c', 'x') FROM n"
            )
        )
    before = sqlite_memory_used()
    held = [engine.connect() for _ in range(12)]  # a burst: twelve requests at once
    try:
        for conn in held:
            assert conn.execute(text("SELECT count(*), max(output) FROM runs")).one()[0] == 80000
        grown = sqlite_memory_used() - before
    finally:
        for conn in held:
            conn.close()
        engine.dispose()
    assert grown > 0  # the figure is this process's SQLite: reading 20 MiB used its caches
    assert grown < SQLITE_HEAP_LIMIT + 2 * 1024 * 1024  # without the limit: about 24 MiB
