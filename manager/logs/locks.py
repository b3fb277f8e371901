"""Database locks for scheduled jobs: one process runs a job, once per period.

The lock is a ``job_locks`` row. Taking it is one atomic ``UPDATE ... WHERE`` (the row is first
inserted if missing, with ``ON CONFLICT DO NOTHING``): on PostgreSQL the second updater waits for
the first's row lock and then no longer matches; on SQLite writers are serialised. Every manager
process (gunicorn workers, replicas) may call :func:`acquire`; exactly one gets ``True``.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from manager.models import utcnow
from manager.models.logs import JobLock


def default_holder() -> str:
    """This process and thread, as the lock's holder name."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def _insert_missing(engine: Engine, name: str) -> Any:
    table = cast(Table, JobLock.__table__)
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).values(name=name, last_result={}).on_conflict_do_nothing()
    return sqlite.insert(table).values(name=name, last_result={}).on_conflict_do_nothing()


def acquire(
    engine: Engine,
    name: str,
    holder: str,
    *,
    ttl: timedelta,
    period: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Take the lock ``name`` for ``ttl``; False when someone holds it or ``period`` is done.

    A lock whose holder did not release it before ``expires_at`` (a crashed process) is free.
    With ``period`` (e.g. ``"2026-11-25"``), a job that already finished that period is not
    taken again, so a daily job runs once a day however many processes wake up for it.
    """
    now = now or utcnow()
    condition = and_(JobLock.name == name, or_(JobLock.holder.is_(None), JobLock.expires_at < now))
    if period is not None:
        condition = and_(
            condition, or_(JobLock.last_period.is_(None), JobLock.last_period != period)
        )
    with engine.begin() as conn:
        conn.execute(_insert_missing(engine, name))
        result = conn.execute(
            update(JobLock)
            .where(condition)
            .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        )
    return result.rowcount == 1


def renew(engine: Engine, name: str, holder: str, *, ttl: float) -> bool:
    """Extend a lock ``holder`` still holds; False when it lost it (expired and taken)."""
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(JobLock)
            .where(JobLock.name == name, JobLock.holder == holder)
            .values(expires_at=now + timedelta(seconds=ttl))
        )
    return result.rowcount == 1


def take_over_dead(engine: Engine, name: str, holder: str, *, ttl: float) -> bool:
    """Take a lock whose holder was a process of this host that no longer exists (a manager
    killed and restarted need not wait for its old lease to run out)."""
    with engine.begin() as conn:
        current = conn.execute(select(JobLock.holder).where(JobLock.name == name)).scalar()
    if not current:
        return False
    host, _, rest = current.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
        return False  # alive: a live process of this host holds it
    except ProcessLookupError:
        pass
    except PermissionError:
        return False  # it exists, under another user
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(JobLock)
            .where(JobLock.name == name, JobLock.holder == current)
            .values(holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=ttl))
        )
    return result.rowcount == 1


def release(
    engine: Engine,
    name: str,
    holder: str,
    *,
    period: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Give the lock back; with ``period``, mark that period done. False if not the holder."""
    values: dict[str, Any] = {"holder": None, "expires_at": None, "last_finished_at": utcnow()}
    if period is not None:
        values["last_period"] = period
    if result is not None:
        values["last_result"] = result
    with engine.begin() as conn:
        done = conn.execute(
            update(JobLock).where(JobLock.name == name, JobLock.holder == holder).values(**values)
        )
    return done.rowcount == 1


def state(engine: Engine, name: str) -> dict[str, Any] | None:
    """The lock row as a dict (for status pages and tests), or None."""
    with engine.connect() as conn:
        row = conn.execute(JobLock.__table__.select().where(JobLock.name == name)).mappings()
        found = row.first()
    return dict(found) if found else None
