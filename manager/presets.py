"""Parameter presets: named values of a script's run form, per user and project.

A preset stores only what its script's parameters accept, converted as a run would convert
them; ``secret`` parameters are never stored (they are dropped and the caller is told which).
A developer or admin may share a preset: everyone who may see the script is then offered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from manager.catalog.schema import coerce_value
from manager.extensions import DbSession
from manager.models import ParameterPreset, Script, User, UserProject

MAX_PRESETS_PER_SCRIPT = 50
MAX_NAME = 100


class PresetError(ValueError):
    """A preset cannot be saved or used; ``status`` is the HTTP status, message for people."""

    def __init__(self, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


@dataclass
class CleanValues:
    values: dict[str, Any]
    dropped_secrets: list[str] = field(default_factory=list)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def clean_values(definitions: list[dict[str, Any]], raw: Any) -> CleanValues:
    """The values worth storing: known, non-secret, non-empty, converted; PresetError if not.

    Unknown names and values that do not convert are errors (named per parameter); secrets
    are left out and listed in ``dropped_secrets``.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PresetError("'parameters' must be a JSON object of name: value.")
    by_name = {d["name"]: d for d in definitions}
    values: dict[str, Any] = {}
    dropped: list[str] = []
    errors: dict[str, str] = {}
    for name, value in raw.items():
        definition = by_name.get(name)
        if definition is None:
            errors[name] = "is not a parameter of this script"
            continue
        if definition.get("type") == "secret":
            if not is_empty(value):
                dropped.append(name)
            continue
        if is_empty(value):
            continue
        try:
            values[name] = coerce_value(definition, value)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        names = ", ".join(sorted(errors))
        raise PresetError(f"Some parameters are not valid: {names}.", errors=errors)
    return CleanValues(values, sorted(dropped))


def clean_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > MAX_NAME:
        raise PresetError(f"A preset needs a name of 1 to {MAX_NAME} characters.", field="name")
    return raw.strip()


def own_project(db: DbSession, user: User, project_id: Any) -> UserProject:
    """The user's project with this id; PresetError 404 when it is not theirs."""
    try:
        project = db.get(UserProject, int(project_id))
    except (TypeError, ValueError):
        project = None
    if project is None or project.user_id != user.id:
        raise PresetError(f"You have no project with id {project_id}.", status=404)
    return project


def presets_for(
    db: DbSession, user: User, script: Script, project_id: int
) -> list[ParameterPreset]:
    """Mine in this project, then the ones others shared for this script; by name."""
    rows = db.execute(
        select(ParameterPreset)
        .where(
            ParameterPreset.script_id == script.id,
            or_(
                (ParameterPreset.user_id == user.id) & (ParameterPreset.project_id == project_id),
                (ParameterPreset.user_id != user.id) & ParameterPreset.shared.is_(True),
            ),
        )
        .order_by(ParameterPreset.name, ParameterPreset.id)
    ).scalars()
    return sorted(rows, key=lambda p: (p.user_id != user.id, p.name.lower()))


def _check_share(user: User, shared: Any) -> bool:
    if not isinstance(shared, bool):
        raise PresetError("'shared' must be true or false.", field="shared")
    if shared and not user.reaches("developer"):
        raise PresetError("Only developers and admins may share a preset with the group.", 403)
    return shared


def _name_taken(
    db: DbSession, user_id: int, script_id: int, project_id: int | None, name: str, but: int = 0
) -> bool:
    return (
        db.execute(
            select(ParameterPreset.id).where(
                ParameterPreset.user_id == user_id,
                ParameterPreset.script_id == script_id,
                ParameterPreset.project_id == project_id,
                func.lower(ParameterPreset.name) == name.lower(),
                ParameterPreset.id != but,
            )
        ).first()
        is not None
    )


def create_preset(
    db: DbSession, user: User, script: Script, project: UserProject, data: dict[str, Any]
) -> tuple[ParameterPreset, list[str]]:
    """Save a new preset; returns it and the secret parameters left out. Raises PresetError."""
    if not user.reaches("operator"):
        raise PresetError("Viewers cannot run scripts, so they cannot save presets.", 403)
    name = clean_name(data.get("name"))
    shared = _check_share(user, data.get("shared", False))
    cleaned = clean_values(list(script.parameters or []), data.get("parameters"))
    if _name_taken(db, user.id, script.id, project.id, name):
        raise PresetError(
            f"You already have a preset named {name!r} for this script in this project.",
            409,
            field="name",
        )
    count = db.execute(
        select(func.count(ParameterPreset.id)).where(
            ParameterPreset.user_id == user.id, ParameterPreset.script_id == script.id
        )
    ).scalar_one()
    if count >= MAX_PRESETS_PER_SCRIPT:
        raise PresetError(
            f"You already have {MAX_PRESETS_PER_SCRIPT} presets for this script: delete one first.",
            409,
        )
    preset = ParameterPreset(
        user_id=user.id,
        script_id=script.id,
        project_id=project.id,
        name=name,
        parameters=cleaned.values,
        shared=shared,
    )
    db.add(preset)
    db.flush()
    return preset, cleaned.dropped_secrets


def update_preset(
    db: DbSession, user: User, preset: ParameterPreset, script: Script, data: dict[str, Any]
) -> list[str]:
    """Change the name, values and/or sharing of one's own preset; returns secrets left out."""
    dropped: list[str] = []
    if not {"name", "parameters", "shared"} & set(data):
        raise PresetError("Send 'name', 'parameters' and/or 'shared' to change.")
    if "name" in data:
        name = clean_name(data["name"])
        if _name_taken(db, user.id, script.id, preset.project_id, name, but=preset.id):
            raise PresetError(f"You already have a preset named {name!r}.", 409, field="name")
        preset.name = name
    if "parameters" in data:
        cleaned = clean_values(list(script.parameters or []), data["parameters"])
        preset.parameters = cleaned.values
        dropped = cleaned.dropped_secrets
    if "shared" in data:
        preset.shared = _check_share(user, data["shared"])
    db.flush()
    return dropped


def usable_preset(db: DbSession, user: User, preset_id: int) -> ParameterPreset:
    """A preset the user may run: their own, or a shared one. PresetError 404 otherwise."""
    preset = db.get(ParameterPreset, preset_id)
    if preset is None or not (preset.user_id == user.id or preset.shared):
        raise PresetError(f"No preset with id {preset_id} is available to you.", 404)
    return preset


def own_preset(db: DbSession, user: User, preset_id: int) -> ParameterPreset:
    """The user's own preset (admins: anyone's); PresetError 404 or 403 otherwise."""
    preset = db.get(ParameterPreset, preset_id)
    if preset is None or not (preset.user_id == user.id or preset.shared or user.is_admin):
        raise PresetError(f"No preset with id {preset_id} is available to you.", 404)
    if preset.user_id != user.id and not user.is_admin:
        raise PresetError("This preset was shared with you: only its owner may change it.", 403)
    return preset


def run_values(preset: ParameterPreset, script: Script, extra: Any) -> dict[str, Any]:
    """The preset's values with what the run adds (e.g. secrets, never stored) on top."""
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise PresetError("'parameters' must be a JSON object of name: value.")
    known = {d["name"] for d in script.parameters or []}
    # A parameter removed from the script since the preset was saved is left out.
    return {**{k: v for k, v in preset.parameters.items() if k in known}, **extra}


def preset_view(preset: ParameterPreset, user: User, owner_name: str | None = None) -> dict:
    return {
        "id": preset.id,
        "script_id": preset.script_id,
        "project_id": preset.project_id if preset.user_id == user.id else None,
        "name": preset.name,
        "parameters": preset.parameters,
        "shared": preset.shared,
        "mine": preset.user_id == user.id,
        "owner": owner_name,
        "created_at": preset.created_at.isoformat() if preset.created_at else None,
        "updated_at": preset.updated_at.isoformat() if preset.updated_at else None,
    }
