"""Write state-changing actions to the audit table and the audit log files."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from manager.extensions import DbSession
from manager.models import AuditEvent, User

user_log = logging.getLogger("scriptsmanager.audit.user")
admin_log = logging.getLogger("scriptsmanager.audit.admin")


def record(
    session: DbSession,
    action: str,
    *,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    user: User | None = None,
    admin: bool = False,
) -> AuditEvent:
    """Add an audit event to ``session`` (the caller commits) and write it to the log file."""
    if user is None and has_request_context() and current_user.is_authenticated:
        user = current_user._get_current_object()
    address = request.remote_addr if has_request_context() else None
    event = AuditEvent(
        user_id=user.id if user else None,
        username=user.username if user else None,
        action=action,
        target=target,
        details=details or {},
        address=address,
        is_admin_action=admin,
    )
    session.add(event)
    line = json.dumps(
        {
            "action": action,
            "user": event.username,
            "target": target,
            "address": address,
            "details": event.details,
        },
        default=str,
    )
    (admin_log if admin else user_log).info(line)
    return event
