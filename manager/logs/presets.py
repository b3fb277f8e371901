"""Saved filter presets of the log list, one set per user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from manager.extensions import DbSession
from manager.logs.queries import FilterError, preset_filters
from manager.models.logs import LogFilterPreset

MAX_PRESETS = 50
MAX_NAME = 100


def list_presets(db: DbSession, user_id: int) -> list[LogFilterPreset]:
    """The user's presets by name."""
    return list(
        db.execute(
            select(LogFilterPreset)
            .where(LogFilterPreset.user_id == user_id)
            .order_by(LogFilterPreset.name)
        ).scalars()
    )


def save_preset(
    db: DbSession, user_id: int, data: dict[str, Any], *, allow_user: bool = False
) -> tuple[LogFilterPreset, bool]:
    """Create the preset, or replace the filters of the one with that name.

    Returns ``(preset, created)``; raises FilterError for a bad name or filters, or when the
    user already has :data:`MAX_PRESETS`.
    """
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise FilterError(f"name must be a text of 1 to {MAX_NAME} characters.")
    name = name.strip()
    filters = preset_filters(data.get("filters", {}), allow_user=allow_user)
    existing = db.execute(
        select(LogFilterPreset).where(
            LogFilterPreset.user_id == user_id, LogFilterPreset.name == name
        )
    ).scalar()
    if existing is not None:
        existing.filters = filters
        return existing, False
    count = db.execute(select(func.count()).where(LogFilterPreset.user_id == user_id)).scalar_one()
    if count >= MAX_PRESETS:
        raise FilterError(f"You already have {MAX_PRESETS} presets: delete one first.")
    preset = LogFilterPreset(user_id=user_id, name=name, filters=filters)
    db.add(preset)
    db.flush()
    return preset, True


def delete_preset(db: DbSession, user_id: int, preset_id: int) -> bool:
    """Delete the user's preset; False when it is not theirs or does not exist."""
    preset = db.get(LogFilterPreset, preset_id)
    if preset is None or preset.user_id != user_id:
        return False
    db.delete(preset)
    return True
