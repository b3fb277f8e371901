"""Password changes: a user's own (with the current password) and an admin's reset."""

from __future__ import annotations

from datetime import datetime

from manager.auth import logins, throttle
from manager.auth.service import (
    AccountError,
    check_password_policy,
    hash_password,
    verify_password,
)
from manager.auth.throttle import ThrottlePolicy
from manager.extensions import DbSession
from manager.models import User


def change_own_password(
    session: DbSession,
    user: User,
    current: str,
    new: str,
    *,
    address: str,
    policy: ThrottlePolicy,
    min_length: int,
    keep_login: str | None,
    now: datetime | None = None,
) -> int:
    """Set ``user``'s password after checking the current one; returns how many of the
    user's other logins were ended (``keep_login``, this browser's, stays).

    A wrong current password counts as a failed login (the same throttle guards both), so a
    borrowed browser cannot be used to guess it. Raises LoginThrottled or AccountError.
    """
    throttle.check(session, user.username, address, policy, now)
    if not verify_password(current or "", user.password_hash):
        throttle.record_failure(session, user.username, address, now)
        raise AccountError("The current password is wrong.", "current_password", status=403)
    if new == current:
        raise AccountError("The new password must differ from the current one.", "new_password")
    check_password_policy(new, min_length=min_length, username=user.username, field="new_password")
    user.password_hash = hash_password(new)
    return logins.end_all_logins(session, user.id, keep=keep_login)


def reset_password(
    session: DbSession,
    user: User,
    new: str,
    *,
    min_length: int,
    keep_login: str | None = None,
) -> int:
    """An admin sets ``user``'s password: every login of the user ends (but ``keep_login``,
    when admins reset their own), their login throttle is cleared. Returns logins ended."""
    check_password_policy(new, min_length=min_length, username=user.username, field="new_password")
    user.password_hash = hash_password(new)
    throttle.forget(session, user.username)
    return logins.end_all_logins(session, user.id, keep=keep_login)
