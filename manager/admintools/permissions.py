"""The permission matrix: for every group and script, what each level may do with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manager.models import LEVELS, ScriptGroup, level_at_least

# What a level may do with a script it can see (see presenters and the session service).
RUN_LEVEL = "operator"
EDIT_LEVEL = "developer"


@dataclass
class MatrixRow:
    kind: str  # "group" or "script"
    id: int
    name: str
    required_level: str
    invalid: bool
    cells: dict[str, list[str]] = field(default_factory=dict)  # level -> ["see", "run", "edit"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "required_level": self.required_level,
            "invalid": self.invalid,
            "cells": self.cells,
        }


def rights(level: str, group_level: str, script_level: str | None, invalid: bool) -> list[str]:
    """What ``level`` may do: see (and, with it, run and edit by role) the script or group."""
    needed = [group_level] + ([script_level] if script_level else [])
    if not all(level_at_least(level, need) for need in needed):
        return []
    if invalid and not level_at_least(level, EDIT_LEVEL):  # invalid items: developers only
        return []
    found = ["see"]
    if level_at_least(level, RUN_LEVEL) and not invalid:
        found.append("run")
    if level_at_least(level, EDIT_LEVEL):
        found.append("edit")
    return found


def matrix(groups: list[ScriptGroup]) -> list[MatrixRow]:
    """One row per active group and, under it, one per active script."""
    rows: list[MatrixRow] = []
    for group in sorted(groups, key=lambda g: g.name.lower()):
        if not group.is_active:
            continue
        group_invalid = group.invalid_reason is not None
        rows.append(
            MatrixRow(
                "group",
                group.id,
                group.name,
                group.required_level,
                group_invalid,
                {lv: rights(lv, group.required_level, None, group_invalid) for lv in LEVELS},
            )
        )
        for script in sorted(group.scripts, key=lambda s: s.filename):
            if not script.is_active:
                continue
            invalid = group_invalid or script.invalid_reason is not None
            rows.append(
                MatrixRow(
                    "script",
                    script.id,
                    script.display_name or script.filename,
                    script.required_level,
                    invalid,
                    {
                        lv: rights(lv, group.required_level, script.required_level, invalid)
                        for lv in LEVELS
                    },
                )
            )
    return rows
