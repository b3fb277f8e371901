"""The log storage quota, enforced: a user whose logs fill ``SM_LOG_QUOTA_MB`` starts no run.

Called by the session service before a run starts (``check_log_quota``); the warning near the
quota stays in the statistics panel (``storage_usage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, has_app_context

from manager.extensions import DbSession
from manager.logs.stats import StorageUsage, storage_usage
from manager.models import User


def quota_refusal(usage: StorageUsage) -> str:
    """The message of a run refused because the user's logs fill their quota."""
    mb = 1024 * 1024
    return (
        f"Your execution logs use {usage.used_bytes / mb:.1f} MB of your "
        f"{usage.quota_bytes / mb:.0f} MB log quota (SM_LOG_QUOTA_MB): no new run can start. "
        "Delete old runs from the Logs page (or ask an admin for more space)."
    )


def check_log_quota(db: DbSession, user: User, config: Mapping[str, Any] | None = None) -> None:
    """Refuse a run when the user's logs are at or over ``SM_LOG_QUOTA_MB`` (0: no quota).

    ``config`` defaults to the current app's. Raises SessionError 507 (insufficient storage)
    with ``limit="log_quota"``; does nothing outside an app when no config is given.
    """
    if config is None:
        if not has_app_context():
            return
        config = current_app.config
    if int(config.get("SM_LOG_QUOTA_MB") or 0) <= 0:
        return
    usage = storage_usage(db, config, user.id, user.username)
    if usage.exceeded:
        from manager.sessions.service import SessionError  # the service imports this module

        raise SessionError(
            507,
            quota_refusal(usage),
            limit="log_quota",
            used_bytes=usage.used_bytes,
            quota_bytes=usage.quota_bytes,
        )
