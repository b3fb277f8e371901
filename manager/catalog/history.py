"""The history of a script's metadata: every edit with its before and after values, and restore.

An edit is recorded in the audit log as ``script_metadata_updated`` (or ``..._restored``) with
``details["changes"][field] = {"before", "after", "before_edit", "after_edit"}``: the effective
values a user saw, and the app edits (``Script.overrides``) behind them, ``None`` meaning no
edit (the files' value applied). Restoring a side puts that edit state back, so restoring a
value that came from the files removes the edit rather than freezing a copy of the file.
Document edits (``script_doc_updated``) keep the text before and after; the group's
environment choice (``group_environment_set``) keeps the environment before and after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import or_, select

from manager.catalog.fields import EDITABLE_SCRIPT_FIELDS
from manager.catalog.metadata import update_group_metadata, update_script_metadata
from manager.extensions import DbSession
from manager.models import AuditEvent, Script, ScriptGroup

__all__ = [
    "DOC_ACTION",
    "ENV_ACTION",
    "METADATA_ACTIONS",
    "HistoryError",
    "field_changes",
    "field_states",
    "history",
    "restore_target",
]

METADATA_ACTIONS = ("script_metadata_updated", "script_metadata_restored")
DOC_ACTION = "script_doc_updated"
ENV_ACTION = "group_environment_set"
HISTORY_LIMIT = 200


class HistoryError(Exception):
    """A restore that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def script_target(script: Script) -> str:
    return f"script:{script.id}"


def group_target(group: ScriptGroup) -> str:
    return f"group:{group.directory_path}"


def field_states(script: Script, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{field: {"value": effective value, "edit": app edit or None}}`` for ``fields``."""
    meta = script.metadata_json or {}
    overrides = script.overrides or {}
    return {f: {"value": meta.get(f), "edit": overrides.get(f)} for f in fields}


def field_changes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The fields whose value or edit differs, as the audit's ``changes`` object."""
    changes = {}
    for name, old in before.items():
        new = after[name]
        if old != new:
            changes[name] = {
                "before": old["value"],
                "after": new["value"],
                "before_edit": old["edit"],
                "after_edit": new["edit"],
            }
    return changes


def history(session: DbSession, script: Script, limit: int = HISTORY_LIMIT) -> list[AuditEvent]:
    """The script's metadata and document edits and its group's environment choices, newest
    first."""
    query = (
        select(AuditEvent)
        .where(
            or_(
                (AuditEvent.target == script_target(script))
                & AuditEvent.action.in_((*METADATA_ACTIONS, DOC_ACTION)),
                (AuditEvent.target == group_target(script.group))
                & (AuditEvent.action == ENV_ACTION),
            )
        )
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def event_for(session: DbSession, script: Script, event_id: int) -> AuditEvent:
    """The history event ``event_id`` of ``script``; raises HistoryError(404) otherwise."""
    event = session.get(AuditEvent, event_id)
    allowed: dict[str, tuple[str, ...]] = {
        script_target(script): (*METADATA_ACTIONS, DOC_ACTION),
        group_target(script.group): (ENV_ACTION,),
    }
    if event is None or event.action not in allowed.get(event.target or "", ()):
        raise HistoryError(f"No history entry {event_id} for this script.", 404)
    return event


def restore_target(
    session: DbSession, script: Script, event: AuditEvent, field: str, side: str
) -> tuple[str, Any]:
    """Put back the ``side`` ("before" or "after") of ``field`` in a metadata or environment
    event. Returns ``(kind, restored value)`` where kind is ``metadata`` or ``environment``.

    Document events are restored by the caller (it writes the file). Raises HistoryError or
    MetadataError; flushes, the caller commits and audits.
    """
    if side not in ("before", "after"):
        raise HistoryError("side must be 'before' or 'after'")
    details = event.details or {}
    if event.action == ENV_ACTION:
        value = details.get(side)
        if not isinstance(value, str) or not value:
            raise HistoryError(f"This entry holds no environment {side} the change.")
        update_group_metadata(session, script.group, {"conda_environment": value})
        return "environment", value
    if event.action not in METADATA_ACTIONS:
        raise HistoryError("Only metadata and environment entries are restored here.")
    change = (details.get("changes") or {}).get(field)
    if not isinstance(change, dict):
        raise HistoryError(f"This entry did not change {field!r}.")
    if field not in EDITABLE_SCRIPT_FIELDS:
        raise HistoryError(f"{field!r} cannot be edited any more.")
    edit = change.get(f"{side}_edit")
    update_script_metadata(session, script, {field: edit})
    return "metadata", edit
