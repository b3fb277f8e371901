"""Database schema management with Alembic (top-level ``migrations/``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, event

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def migrations_dir() -> Path:
    """The checkout's ``migrations/``, or SM_MIGRATIONS_DIR (an installed package, an image)."""
    configured = os.environ.get("SM_MIGRATIONS_DIR")
    return Path(configured) if configured else MIGRATIONS_DIR


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (creating it when empty)."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


# Connections one manager process may hold, per engine: (pool_size, max_overflow). Under the
# gevent worker every request in flight keeps its connection until it ends, including
# requests that wait on something else (a container starting, a Docker API call); with
# SQLAlchemy's default 5 + 10, fifty users exhausted the pool and requests waited for a
# connection, then failed with a pool timeout (a 503). SQLite connections are cheap;
# PostgreSQL's are bounded by the server's max_connections (100 by default), shared by
# replicas and the CLI. SM_DB_POOL_SIZE and SM_DB_MAX_OVERFLOW override.
POOL_SIZES = {"sqlite": (20, 80), "postgresql": (10, 30)}


def engine_options(database_url: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """SQLAlchemy engine options for ``database_url``: pre-ping, and a pool sized for a gevent
    worker (SM_DB_POOL_SIZE / SM_DB_MAX_OVERFLOW from ``environ`` override the defaults).

    Raises ValueError when an override is not a whole number >= 0.
    """
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {"pool_pre_ping": True}
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    if backend == "sqlite" and (":memory:" in database_url or database_url == "sqlite://"):
        return options  # one in-memory database per connection: SQLAlchemy's own pool
    size, overflow = POOL_SIZES.get(backend, POOL_SIZES["postgresql"])
    for key, name in (("pool_size", "SM_DB_POOL_SIZE"), ("max_overflow", "SM_DB_MAX_OVERFLOW")):
        raw = environ.get(name)
        if raw not in (None, ""):
            if not raw.strip().isdigit():
                raise ValueError(f"{name} must be a whole number >= 0, not {raw!r}")
            options[key] = int(raw)
    options.setdefault("pool_size", size)
    options.setdefault("max_overflow", overflow)
    return options


# What SQLite's page caches may hold, all connections of the process together. Each pooled
# connection keeps its own cache (up to 2 MiB by default) for as long as the pool keeps it, and
# a burst of requests leaves the pool with more connections: bench/soak saw the manager's RSS
# step up 2.5 MiB when its pool went from 2 to 6 idle connections, and never come down. Past
# this limit SQLite reuses cached pages instead of allocating more; a page it dropped is read
# again from the operating system's file cache.
SQLITE_HEAP_LIMIT = 8 * 1024 * 1024


def tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and a bound on SQLite's memory: the web worker, the monitor and the
    CLI share the SQLite file."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        # With WAL, NORMAL survives a crash of the manager; commits no longer fsync, which
        # would stall the single gevent worker (and every live log watcher) for 10-300 ms.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")  # for the whole process
        cursor.close()


_WRITE_VERBS = ("insert", "update", "delete", "replace")
_HOLDS = "sm_sqlite_write_lock"


def serialize_sqlite_writers(engine: Engine) -> None:
    """Under gevent, let greenlets queue for SQLite's single writer cooperatively.

    SQLite waits for a write lock inside C (busy_timeout). Under gevent that wait stops every
    greenlet, including the one holding the lock, so a second writer always hangs the whole
    process for the full timeout. Taking a gevent-aware lock before the first write of a
    transaction, and releasing it when the transaction ends, makes writers wait their turn
    without blocking the loop. Only for SQLite in a gevent-patched process.
    """
    if engine.dialect.name != "sqlite" or not gevent_patched():
        return
    import threading  # patched by gevent: a cooperative lock

    lock = threading.Lock()

    def release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS, False):
            lock.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if not conn.info.get(_HOLDS) and statement.lstrip()[:7].lower().startswith(_WRITE_VERBS):
            lock.acquire()
            conn.info[_HOLDS] = True

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        release(conn.info)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        release(conn.info)

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi: Any, record: Any) -> None:
        if record is not None:
            release(record.info)

    @event.listens_for(engine.pool, "reset")
    def _reset(_dbapi: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            release(record.info)


def gevent_patched() -> bool:
    """True in a process gevent has monkey-patched (the gunicorn gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))
