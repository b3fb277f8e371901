"""Read a group folder's JSON files: ``metadata.json`` and ``scripts/script_metadata.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manager.catalog.fields import GROUP_FIELDS, normalize_fields

METADATA_FILE = "metadata.json"
SCRIPT_METADATA_FILE = "scripts/script_metadata.json"


@dataclass
class GroupFiles:
    """A group's normalised metadata.json fields and its raw script_metadata.json entries."""

    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    entries: dict[str, Any] = field(default_factory=dict)
    entries_error: str | None = None


def load_group_files(path: Path) -> GroupFiles:
    """Read both files of the group at ``path``; problems become errors, never exceptions."""
    files = GroupFiles()
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        files.warnings.append(f"no {METADATA_FILE}; defaults are used")
    else:
        data, error = read_json(meta_path, METADATA_FILE)
        if error:
            files.errors.append(error)
        elif not isinstance(data, dict):
            files.errors.append(f"{METADATA_FILE} must hold a JSON object")
        else:
            raw = {key: value for key, value in data.items() if key != "name" or value}
            files.fields, files.errors, files.warnings = normalize_fields(
                raw, GROUP_FIELDS, METADATA_FILE
            )
    entries_path = path / SCRIPT_METADATA_FILE
    if entries_path.is_file():
        data, error = read_json(entries_path, SCRIPT_METADATA_FILE)
        if error:
            files.entries_error = error
        elif not isinstance(data, dict):
            files.entries_error = f"{SCRIPT_METADATA_FILE} must hold a JSON object"
        else:
            files.entries = data
    return files


def doc_names(path: Path) -> frozenset[str] | None:
    """The names in the group's ``docs/`` folder: empty without one, None if it cannot be read.

    Listed once per group, so a script's conventional docs (``docs/<name>[_<lang>].md``) are
    looked for only when they exist, instead of a stat of each name for every script.
    """
    try:
        return frozenset(os.listdir(path / "docs"))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
    except OSError:
        return None


def read_json(path: Path, label: str) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, the exact reason)`` when the file cannot be used."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig")), None
    except json.JSONDecodeError as exc:
        return None, (
            f"{label} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        )
    except UnicodeDecodeError as exc:
        return None, f"{label} is not valid UTF-8: {exc.reason} at byte {exc.start}"
    except OSError as exc:
        return None, f"{label} cannot be read: {exc.strerror or exc}"
