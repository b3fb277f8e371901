"""The database pool holds as many connections as a gevent worker's requests in flight need.

Under the gevent worker each request in flight keeps its connection until it ends, also while
it waits on a container starting; with SQLAlchemy's default 5 + 10 connections, fifty users
(bench/load) made the other requests wait for a connection, then answer 503 after 30 s.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from manager.config import build_config
from manager.db import engine_options
from manager.settings import ConfigError
from tests.conftest import missing

HELD = 40  # requests in flight at once, each holding its connection


def hold_at_once(url: str, count: int, wait: float = 10.0) -> int:
    """``count`` when as many threads each held a connection at the same moment, else 0."""
    engine = create_engine(url, **{**engine_options(url, {}), "pool_timeout": wait})
    barrier = threading.Barrier(count, timeout=wait)
    held: list[int] = []
    lock = threading.Lock()

    def request() -> None:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                with lock:
                    held.append(1)
                barrier.wait()
        except Exception:  # noqa: BLE001 - counted: a pool timeout or a broken barrier
            barrier.abort()

    threads = [threading.Thread(target=request) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return 0 if barrier.broken else len(held)


def test_sqlite_serves_forty_requests_holding_connections(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/pool.db"
    assert hold_at_once(url, HELD, wait=5.0) == HELD


@pytest.mark.postgres
def test_postgresql_serves_forty_requests_holding_connections():
    url = os.environ.get("SM_TEST_POSTGRES_URL")
    if not url:
        missing("postgres", "SM_TEST_POSTGRES_URL is not set")
    from manager.config import normalise_database_url

    assert hold_at_once(normalise_database_url(str(url)), HELD, wait=5.0) == HELD


def test_the_app_uses_the_sized_pool_and_overrides_apply(tmp_path: Path):
    environ = {"SECRET_KEY": "k" * 40, "SM_DATA_DIR": str(tmp_path)}
    options = build_config(environ)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] + options["max_overflow"] >= HELD
    assert options["pool_pre_ping"] is True
    environ |= {"SM_DB_POOL_SIZE": "3", "SM_DB_MAX_OVERFLOW": "0"}
    options = build_config(environ)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (options["pool_size"], options["max_overflow"]) == (3, 0)
    with pytest.raises(ConfigError, match="SM_DB_POOL_SIZE"):
        build_config(environ | {"SM_DB_POOL_SIZE": "many"})


def test_in_memory_sqlite_keeps_its_own_pool():
    assert engine_options("sqlite://", {}) == {"pool_pre_ping": True}
    assert engine_options("sqlite:///:memory:", {}) == {"pool_pre_ping": True}
