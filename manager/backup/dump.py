"""Dump and load the database consistently, whatever writes to it meanwhile.

SQLite: the online backup API copies a snapshot page by page (readers and WAL writers go on).
PostgreSQL: ``pg_dump --format=custom`` (one transaction snapshot), loaded with ``pg_restore``.
Passwords travel in ``PGPASSWORD``, never on a command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SQLITE_DUMP = "scriptsmanager.db"
POSTGRES_DUMP = "postgresql.dump"
TOOL_TIMEOUT = 6 * 3600


class DumpError(RuntimeError):
    """The database could not be dumped or loaded; the message says why."""


def engine_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` (DumpError for any other engine)."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise DumpError(f"backups support SQLite and PostgreSQL, not {name}")
    return name


def dump_name(engine: str) -> str:
    return SQLITE_DUMP if engine == "sqlite" else POSTGRES_DUMP


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise DumpError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_env(url: str) -> dict[str, str]:
    parsed = make_url(url)
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", parsed.port),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value is not None:
            env[key] = str(value)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DumpError(
            f"{name} is not installed: PostgreSQL backups need the PostgreSQL client tools "
            "(apt-get install postgresql-client, of the server's major version or newer)"
        )
    return found


def _run(args: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DumpError(f"{Path(args[0]).name} failed: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DumpError(f"{Path(args[0]).name} exited with {done.returncode}: {' '.join(detail)}")


def dump_database(url: str, folder: Path) -> Path:
    """Write a consistent dump of the database at ``url`` into ``folder``; return its path."""
    engine = engine_of(url)
    target = folder / dump_name(engine)
    if engine == "sqlite":
        source_path = sqlite_path(url)
        if not source_path.exists():
            raise DumpError(f"the SQLite database {source_path} does not exist")
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # one step: a snapshot, whatever commits meanwhile
        except sqlite3.Error as exc:
            raise DumpError(f"SQLite backup failed: {exc}") from exc
        finally:
            copy.close()
            source.close()
        return target
    _run(
        [
            _tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--file",
            str(target),
        ],
        _pg_env(url),
    )
    return target


def load_database(url: str, dump_file: Path) -> None:
    """Replace the database at ``url`` with the dump's content (every table, every row)."""
    engine = engine_of(url)
    if engine == "sqlite":
        target_path = sqlite_path(url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{dump_file}?mode=ro", uri=True)
        target = sqlite3.connect(target_path, timeout=30)
        try:
            source.backup(target)  # page-level replace; open connections see the new content
        except sqlite3.Error as exc:
            raise DumpError(f"SQLite restore failed: {exc}") from exc
        finally:
            target.close()
            source.close()
        return
    # Objects a later migration added would survive a --clean restore: start from empty.
    sql_engine = create_engine(url)
    try:
        with sql_engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        sql_engine.dispose()
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            make_url(url).database or "",
            str(dump_file),
        ],
        _pg_env(url),
    )
