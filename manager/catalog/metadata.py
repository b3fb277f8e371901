"""Merge a script's metadata from its sources, and store edits made in the app.

Precedence, highest first: edits made in the app (``Script.overrides``) >
``scripts/script_metadata.json`` > the script's header > what discovery detected (a display
name from the file name, ``docs/<name>[_<lang>].md``) > group defaults (``required_level``,
``execution_timeout``, ``conda_environment`` from ``metadata.json``).

Object values (localized texts, ``limits``) merge key by key, so a higher source may supply
just one language; every other value is replaced whole. The sources are kept in
``metadata_json["layers"]`` so an edit or a group change is re-merged without reading files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from manager.catalog.errors import MetadataError
from manager.catalog.fields import (
    EDITABLE_GROUP_FIELDS,
    EDITABLE_SCRIPT_FIELDS,
    GROUP_FIELDS,
    SCRIPT_FIELDS,
)
from manager.catalog.localize import localized, normalize_localized
from manager.extensions import DbSession
from manager.models.catalog import Script, ScriptGroup

__all__ = [
    "GROUP_LAYERS",
    "SCRIPT_LAYERS",
    "MetadataError",
    "apply_group_metadata",
    "apply_script_metadata",
    "group_defaults",
    "localized",
    "merge_layers",
    "normalize_localized",
    "title_from_name",
    "update_group_metadata",
    "update_script_metadata",
]

# Lowest precedence first.
SCRIPT_LAYERS: tuple[str, ...] = ("group", "detected", "header", "script_metadata", "overrides")
GROUP_LAYERS: tuple[str, ...] = ("defaults", "file", "overrides")
GROUP_DEFAULT_FIELDS: tuple[str, ...] = ("required_level", "execution_timeout", "conda_environment")
DEFAULT_LEVEL = "operator"
# Keys of metadata_json that are not merged fields; kept when a script is re-merged.
SCRIPT_EXTRA_KEYS: tuple[str, ...] = ("warnings", "registers_routes", "syntax_ok")
GROUP_EXTRA_KEYS: tuple[str, ...] = ("warnings",)


def merge_layers(
    layers: Mapping[str, Mapping[str, Any]], order: Iterable[str] = SCRIPT_LAYERS
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge ``layers`` in ``order`` (lowest first); return ``(merged, source_of_each_field)``."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in order:
        for key, value in (layers.get(name) or {}).items():
            previous = merged.get(key)
            if isinstance(value, Mapping) and isinstance(previous, Mapping):
                merged[key] = {**previous, **value}
            elif isinstance(value, Mapping):
                merged[key] = dict(value)
            elif isinstance(value, list):
                merged[key] = list(value)
            else:
                merged[key] = value
            sources[key] = name
    return merged, sources


def title_from_name(name: str) -> str:
    """``csv_summary.py`` -> ``Csv Summary``: a readable fallback display name."""
    stem = name.removesuffix(".py")
    return " ".join(word.capitalize() for word in stem.replace("-", "_").split("_") if word)


def group_defaults(group: ScriptGroup) -> dict[str, Any]:
    """The fields a group passes to its scripts as their lowest layer."""
    meta = group.metadata_json or {}
    return {key: meta[key] for key in GROUP_DEFAULT_FIELDS if meta.get(key) is not None}


def apply_script_metadata(
    script: Script, layers: Mapping[str, Mapping[str, Any]], extras: Mapping[str, Any]
) -> None:
    """Merge ``layers`` with the script's overrides into ``metadata_json`` and its columns."""
    file_layers = {name: dict(layers.get(name) or {}) for name in SCRIPT_LAYERS[:-1]}
    merged, sources = merge_layers({**file_layers, "overrides": script.overrides or {}})
    merged.setdefault("required_level", DEFAULT_LEVEL)
    merged.setdefault("tags", [])
    merged.setdefault("parameters", [])
    merged.setdefault("requires_parameters", any(p.get("required") for p in merged["parameters"]))
    merged.setdefault("proxy_enabled", True)
    script.metadata_json = {
        **merged,
        **{key: extras[key] for key in SCRIPT_EXTRA_KEYS if key in extras},
        "sources": sources,
        "layers": file_layers,
    }
    script.display_name = (
        localized(merged.get("display_name"), "en") or title_from_name(script.filename)
    )[:100]
    script.description = localized(merged.get("description"), "en") or None
    script.description_long_path = localized(merged.get("description_long"), "en") or None
    script.tags = ",".join(merged["tags"]) or None
    script.required_level = merged["required_level"]
    script.parameters = list(merged["parameters"])
    script.category = merged.get("category")
    script.execution_timeout = merged.get("execution_timeout")


def apply_group_metadata(
    group: ScriptGroup, file_fields: Mapping[str, Any], extras: Mapping[str, Any]
) -> None:
    """Merge defaults, ``metadata.json`` fields and the group's overrides into the group."""
    defaults = {
        "name": {"en": title_from_name(group.directory_path)},
        "required_level": DEFAULT_LEVEL,
        "auto_discovery": True,
        "limits": {},
    }
    layers = {"defaults": defaults, "file": dict(file_fields), "overrides": group.overrides or {}}
    merged, sources = merge_layers(layers, GROUP_LAYERS)
    group.metadata_json = {
        **merged,
        "display_name": merged["name"],  # the same key as scripts', for presenters
        **{key: extras[key] for key in GROUP_EXTRA_KEYS if key in extras},
        "sources": sources,
        "file": dict(file_fields),
    }
    group.name = localized(merged["name"], "en")[:100]
    group.description = localized(merged.get("description"), "en") or None
    group.required_level = merged["required_level"]
    group.conda_environment = merged.get("conda_environment")


def update_script_metadata(session: DbSession, script: Script, changes: Mapping[str, Any]) -> None:
    """Validate app edits and store them in ``script.overrides``; re-merge the script.

    A value of None removes the edit (the files' value applies again). Every change is
    checked before anything is stored; raises :class:`MetadataError` naming the first bad
    field. Flushes; the caller commits (and writes the audit record).
    """
    overrides = _validated_overrides(
        script.overrides, changes, EDITABLE_SCRIPT_FIELDS, SCRIPT_FIELDS
    )
    script.overrides = overrides
    _remerge_script(script)
    session.flush()


def update_group_metadata(
    session: DbSession, group: ScriptGroup, changes: Mapping[str, Any]
) -> None:
    """Validate admin edits of a group, store them in ``group.overrides``, re-merge its scripts.

    ``limits`` edits merge key by key over ``metadata.json``'s (the UI value wins). Raises
    :class:`MetadataError`; flushes; the caller commits and audits.
    """
    overrides = _validated_overrides(group.overrides, changes, EDITABLE_GROUP_FIELDS, GROUP_FIELDS)
    group.overrides = overrides
    meta = group.metadata_json or {}
    apply_group_metadata(group, meta.get("file") or {}, meta)
    for script in group.scripts:
        _remerge_script(script)
    session.flush()


def _validated_overrides(
    current: Mapping[str, Any] | None,
    changes: Mapping[str, Any],
    editable: tuple[str, ...],
    normalisers: Mapping[str, Any],
) -> dict[str, Any]:
    overrides = dict(current or {})
    for field, value in changes.items():
        if field not in editable:
            raise MetadataError(field, f"cannot be edited (editable: {', '.join(editable)})")
        normalised = None if value is None else normalisers[field](field, value)
        if normalised is None or normalised == {}:
            overrides.pop(field, None)
        else:
            overrides[field] = normalised
    return overrides


def _remerge_script(script: Script) -> None:
    meta = script.metadata_json or {}
    layers = dict(meta.get("layers") or {})
    if script.group is not None:
        layers["group"] = group_defaults(script.group)
    apply_script_metadata(script, layers, meta)
