"""Admin views of the manager's own logs: system log files and the audit table."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.logs.queries import FilterError, int_param, moment_param
from manager.models import AuditEvent

# The files written by manager.logging_setup, by the name the API uses.
SYSTEM_FILES: dict[str, str] = {
    "application": "system/application.log",
    "error": "system/error.log",
    "access": "system/access.log",
    "user_actions": "audit/user_actions.log",
    "admin_actions": "audit/admin_actions.log",
}
MAX_TAIL = 10_000
_BLOCK = 64 * 1024
_RECORD = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (?P<level>[A-Z]+) "
    r"(?P<logger>[\w.]+): (?P<message>.*)$"
)
SYSTEM_COLUMNS = ("time", "level", "logger", "message")
AUDIT_COLUMNS = (
    "id",
    "created_at",
    "user_id",
    "username",
    "action",
    "target",
    "details",
    "address",
    "is_admin_action",
)


def system_file(log_dir: str | Path, name: str) -> Path:
    """The path of system log ``name``; FilterError for an unknown name."""
    if name not in SYSTEM_FILES:
        raise FilterError(f"file must be one of: {', '.join(SYSTEM_FILES)}.")
    return Path(log_dir) / SYSTEM_FILES[name]


def tail_file(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file, read from its end; [] when it is missing."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return []
    try:
        position = os.fstat(handle.fileno()).st_size
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    finally:
        handle.close()
    text = data.decode("utf-8", "replace").splitlines()
    if position > 0:
        text = text[1:]  # the first one may be cut
    return text[-lines:] if lines else []


def parse_line(line: str) -> dict[str, Any]:
    """A log line as ``time, level, logger, message`` (the message alone when unparsed)."""
    match = _RECORD.match(line)
    if match is None:
        return {"time": None, "level": None, "logger": None, "message": line}
    return match.groupdict()


def system_lines(log_dir: str | Path, name: str, lines: int) -> dict[str, Any]:
    """The tail of one system log, raw and parsed."""
    path = system_file(log_dir, name)
    raw = tail_file(path, lines)
    return {
        "file": name,
        "exists": path.is_file(),
        "size": path.stat().st_size if path.is_file() else 0,
        "lines": raw,
        "records": [parse_line(line) for line in raw],
    }


def audit_filters(args: Mapping[str, Any]) -> dict[str, Any]:
    """Read the audit list's query parameters; FilterError names a bad one."""
    found: dict[str, Any] = {
        "user_id": int_param(args, "user_id", 1, 2**31 - 1),
        "date_from": moment_param(args, "date_from", end_of_day=False),
        "date_to": moment_param(args, "date_to", end_of_day=True),
        "page": int_param(args, "page", 1, 10**6) or 1,
        "per_page": int_param(args, "per_page", 1, 500) or 50,
    }
    for key in ("username", "action", "target"):
        value = str(args.get(key) or "").strip()
        if len(value) > 255:
            raise FilterError(f"{key} is too long.")
        found[key] = value or None
    admin = str(args.get("admin_only") or "").lower()
    if admin not in ("", "0", "1", "true", "false"):
        raise FilterError("admin_only must be true or false.")
    found["admin_only"] = admin in ("1", "true")
    return found


def _audit_query(filters: Mapping[str, Any]) -> Any:
    query = select(AuditEvent)
    if filters.get("user_id") is not None:
        query = query.where(AuditEvent.user_id == filters["user_id"])
    if filters.get("username"):
        query = query.where(AuditEvent.username == filters["username"])
    if filters.get("action"):
        query = query.where(AuditEvent.action.startswith(filters["action"], autoescape=True))
    if filters.get("target"):
        query = query.where(AuditEvent.target.contains(filters["target"], autoescape=True))
    if filters.get("admin_only"):
        query = query.where(AuditEvent.is_admin_action.is_(True))
    if filters.get("date_from"):
        query = query.where(AuditEvent.created_at >= filters["date_from"])
    if filters.get("date_to"):
        query = query.where(AuditEvent.created_at < filters["date_to"])
    return query


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """An audit event as the API shows it."""
    return {**event.to_dict(), "is_admin_action": event.is_admin_action}


def audit_page(db: DbSession, filters: Mapping[str, Any]) -> dict[str, Any]:
    """One page of audit events, newest first."""
    query = _audit_query(filters)
    total = db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page, per_page = filters["page"], filters["per_page"]
    events = db.execute(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).scalars()
    return {
        "events": [audit_row(e) for e in events],
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-total // per_page)),
    }


def audit_rows(db: DbSession, filters: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """Audit events for an export, oldest first, at most ``limit``."""
    query = _audit_query(filters).order_by(AuditEvent.created_at, AuditEvent.id).limit(limit)
    return [audit_row(e) for e in db.execute(query).scalars()]


def system_rows(
    log_dir: str | Path, name: str, lines: int, date_from: datetime | None, date_to: datetime | None
) -> list[dict[str, Any]]:
    """Parsed lines of a system log for an export, within the dates when given."""
    rows = [parse_line(line) for line in tail_file(system_file(log_dir, name), lines)]
    if date_from is None and date_to is None:
        return rows
    kept = []
    for row in rows:
        if row["time"] is None:
            continue
        moment = datetime.strptime(row["time"], "%Y-%m-%d %H:%M:%S,%f")
        if (date_from is None or moment >= date_from) and (date_to is None or moment < date_to):
            kept.append(row)
    return kept
