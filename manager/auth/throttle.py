"""Login throttling: growing delays per (account, client address), never a hard lock.

Failures are counted per account *and* address, so nobody can lock someone else out: failures
from one address slow that address down for that account only; the right password from
another address (or for another account) is never held back. After ``free_attempts`` failures
within ``window`` seconds each further attempt must wait ``base_delay * 2**k`` seconds after the
last failure (k = failures beyond the free ones), capped at ``max_delay``. A success, or an
admin's unlock, forgets the failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from manager import metrics
from manager.extensions import DbSession
from manager.models import LoginAttempt, utcnow


@dataclass(frozen=True)
class ThrottlePolicy:
    free_attempts: int
    base_delay: int  # seconds
    max_delay: int  # seconds
    window: int  # seconds: older failures are forgotten

    def delay_after(self, failures: int) -> int:
        """Seconds to wait after the last of ``failures`` failures (0: no wait)."""
        if failures < self.free_attempts:
            return 0
        exponent = min(failures - self.free_attempts, 30)
        return int(min(self.max_delay, self.base_delay * 2**exponent))


class LoginThrottled(Exception):
    """Too many recent failures from this address for this account; retry after a while."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


def _key(username: str) -> str:
    return (username or "").strip().lower()[:50]


def retry_after(
    session: DbSession,
    username: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> int:
    """Seconds this address must still wait before trying ``username`` again (0: go ahead)."""
    now = now or utcnow()
    count, last = session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.username == _key(username),
            LoginAttempt.address == address[:64],
            LoginAttempt.attempted_at >= now - timedelta(seconds=policy.window),
        )
    ).one()
    delay = policy.delay_after(int(count or 0))
    if not delay or last is None:
        return 0
    remaining = (last + timedelta(seconds=delay) - now).total_seconds()
    return max(0, int(remaining + 0.999))


def check(
    session: DbSession,
    username: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> None:
    """Raise LoginThrottled when this address must wait before trying ``username``."""
    wait = retry_after(session, username, address, policy, now)
    if wait:
        raise LoginThrottled(wait)


def record_failure(
    session: DbSession, username: str, address: str, now: datetime | None = None
) -> None:
    metrics.LOGIN_FAILURES.inc()
    session.add(
        LoginAttempt(username=_key(username), address=address[:64], attempted_at=now or utcnow())
    )


def forget(session: DbSession, username: str, address: str | None = None) -> int:
    """Drop the failures of ``username`` (from ``address`` only, when given); returns the count."""
    query = delete(LoginAttempt).where(LoginAttempt.username == _key(username))
    if address is not None:
        query = query.where(LoginAttempt.address == address[:64])
    result = session.execute(query.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def recent_failures(
    session: DbSession, policy: ThrottlePolicy, now: datetime | None = None
) -> dict[str, int]:
    """{username: failures within the window}, for the admin's user list."""
    now = now or utcnow()
    rows = session.execute(
        select(LoginAttempt.username, func.count(LoginAttempt.id))
        .where(LoginAttempt.attempted_at >= now - timedelta(seconds=policy.window))
        .group_by(LoginAttempt.username)
    ).all()
    return {name: int(count) for name, count in rows}


def purge(session: DbSession, policy: ThrottlePolicy, now: datetime | None = None) -> int:
    """Delete failures older than the window (they no longer count)."""
    now = now or utcnow()
    result = session.execute(
        delete(LoginAttempt)
        .where(LoginAttempt.attempted_at < now - timedelta(seconds=policy.window))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
