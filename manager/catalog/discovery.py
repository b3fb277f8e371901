"""Discover script groups and scripts on disk and keep their database rows in step.

Layout: ``<groups_dir>/<group>/metadata.json``, ``<group>/*.py`` (files starting with ``_``
or ``.`` are helpers, not scripts), ``<group>/docs/*.md``,
``<group>/scripts/script_metadata.json``.

Rules:

* A group or script whose metadata cannot be read is still listed, with ``invalid_reason``
  (every reason, joined by ``"; "``); the rest of the catalog is unaffected; nothing raises.
  Use :func:`is_runnable` before starting a script: invalid ones must not run.
* When a ``required_level`` cannot be read (broken JSON, unknown level), the level is held at
  its previous value, or ``admin`` for a new row, so a typo never widens access.
* A group folder without ``metadata.json`` is a valid group with defaults (level
  ``operator``, name from the folder), with a warning.
* A script or group that disappears becomes inactive (history is kept); it comes back active.
  A missing ``groups_dir`` is reported as an error and deactivates nothing.
* A group with ``"auto_discovery": false`` keeps its scripts as they are during automatic
  scans; an explicit refresh (``manual=True``, :func:`refresh_group`) still scans it.

Functions flush but never commit: the caller commits (and serialises concurrent scans).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from manager.catalog.fields import SCRIPT_FIELDS, normalize_fields
from manager.catalog.files import (
    METADATA_FILE,
    SCRIPT_METADATA_FILE,
    GroupFiles,
    doc_names,
    load_group_files,
)
from manager.catalog.header import HeaderResult, parse_header
from manager.catalog.metadata import (
    apply_group_metadata,
    apply_script_metadata,
    group_defaults,
    title_from_name,
    update_group_metadata,
    update_script_metadata,
)
from manager.catalog.report import DiscoveryReport
from manager.extensions import DbSession
from manager.models.catalog import Script, ScriptGroup
from manager.models.user import LANGUAGES

__all__ = [
    "DiscoveryReport",
    "discover",
    "is_runnable",
    "refresh_group",
    "refresh_script",
    "script_path",
    "update_group_metadata",
    "update_script_metadata",
]

LOCKED_LEVEL = "admin"
MAX_FILENAME = 100


def discover(
    session: DbSession,
    groups_dir: Path,
    *,
    group_dir_name: str | None = None,
    envs_dir: Path | None = None,
    manual: bool = False,
) -> DiscoveryReport:
    """Scan ``groups_dir`` (or only ``group_dir_name``) and create/update/deactivate rows.

    ``envs_dir`` (``conda-envs/``) enables the warning for a group whose environment has no
    spec file. ``manual`` marks an explicit refresh (see ``auto_discovery``).
    """
    return _discover(session, Path(groups_dir), group_dir_name, envs_dir, manual, None)


def refresh_group(
    session: DbSession, group: ScriptGroup, groups_dir: Path, *, envs_dir: Path | None = None
) -> DiscoveryReport:
    """Re-read one group and all its scripts now; app edits (overrides) are kept."""
    return _discover(session, Path(groups_dir), group.directory_path, envs_dir, True, None)


def refresh_script(
    session: DbSession, script: Script, groups_dir: Path, *, envs_dir: Path | None = None
) -> DiscoveryReport:
    """Re-parse one script (and its group's files) now; app edits (overrides) are kept."""
    return _discover(
        session, Path(groups_dir), script.group.directory_path, envs_dir, True, script.filename
    )


def is_runnable(script: Script) -> bool:
    """True when the script and its group are active and valid: only then may it run."""
    group = script.group
    return bool(
        script.is_active
        and not script.invalid_reason
        and group is not None
        and group.is_active
        and not group.invalid_reason
    )


def script_path(groups_dir: Path, script: Script) -> Path:
    """The script's file under ``groups_dir``."""
    return Path(groups_dir) / script.group.directory_path / script.filename


def _discover(
    session: DbSession,
    groups_dir: Path,
    only_group: str | None,
    envs_dir: Path | None,
    manual: bool,
    only_script: str | None,
) -> DiscoveryReport:
    report = DiscoveryReport()
    if not groups_dir.is_dir():
        report.errors.append(f"script groups folder {groups_dir} does not exist")
        return report
    if only_group is not None:
        if not _is_group_name(only_group):
            report.errors.append(f"{only_group!r} is not a group folder name")
            return report
        names = [only_group] if (groups_dir / only_group).is_dir() else []
        query = select(ScriptGroup).where(ScriptGroup.directory_path == only_group)
    else:
        names = sorted(
            p.name for p in groups_dir.iterdir() if p.is_dir() and _is_group_name(p.name)
        )
        query = select(ScriptGroup)
    # Every group's scripts in one more query, not one query (and autoflush) per group.
    rows = session.scalars(query.options(selectinload(ScriptGroup.scripts))).all()
    by_dir = {group.directory_path: group for group in rows}
    for name in names:
        if len(name) > 255:
            report.errors.append(f"group folder {name[:40]}...: name longer than 255 characters")
            continue
        _sync_group(
            session, groups_dir / name, by_dir.get(name), envs_dir, manual, only_script, report
        )
    for dir_name, group in by_dir.items():
        if dir_name not in names and group.is_active:
            group.is_active = False
            report.deactivated.append(dir_name)
            for script in group.scripts:
                script.is_active = False
    _number_new_rows(session)
    session.flush()
    return report


def _is_group_name(name: str) -> bool:
    return bool(name) and Path(name).name == name and not name.startswith((".", "_"))


def _sync_group(
    session: DbSession,
    path: Path,
    group: ScriptGroup | None,
    envs_dir: Path | None,
    manual: bool,
    only_script: str | None,
    report: DiscoveryReport,
) -> None:
    name = path.name
    files = load_group_files(path)
    on_disk = _script_files(path, report)
    created = group is None
    if group is None:
        group = ScriptGroup(directory_path=name, name=name[:100], overrides={}, metadata_json={})
        session.add(group)
    before = _state(group)
    was_active = bool(group.is_active)
    fields = dict(files.fields)
    warnings = list(files.warnings)
    if files.errors and "required_level" not in fields:
        fields["required_level"] = LOCKED_LEVEL if created else group.required_level
        warnings.append(
            f"required_level held at {fields['required_level']!r} until {METADATA_FILE} is fixed"
        )
    for entry in sorted(set(files.entries) - set(on_disk)):
        warnings.append(f"{SCRIPT_METADATA_FILE}: entry {entry!r} matches no script")
    apply_group_metadata(group, fields, {})
    env = group.conda_environment
    if env and envs_dir is not None and not (Path(envs_dir) / f"{env}.yml").is_file():
        warnings.append(f"conda environment {env!r} has no spec file conda-envs/{env}.yml")
    group.metadata_json = {**group.metadata_json, "warnings": warnings}
    group.invalid_reason = "; ".join(files.errors) or None
    group.is_active = True
    report.record(name, created, was_active, before != _state(group), group.invalid_reason)
    if warnings:
        report.warnings[name] = warnings
    automatic_skip = not manual and not created and was_active
    if automatic_skip and not group.metadata_json.get("auto_discovery", True):
        return
    existing = {script.filename: script for script in group.scripts}
    names = [only_script] if only_script else sorted(set(on_disk) | set(existing))
    listed_docs = doc_names(path)
    for filename in names:
        script = existing.get(filename)
        if filename in on_disk:
            _sync_script(session, group, on_disk[filename], script, files, listed_docs, report)
        elif script is not None and script.is_active:
            script.is_active = False
            report.deactivated.append(f"{name}/{filename}")


def _sync_script(
    session: DbSession,
    group: ScriptGroup,
    path: Path,
    script: Script | None,
    files: GroupFiles,
    listed_docs: frozenset[str] | None,
    report: DiscoveryReport,
) -> None:
    key = f"{group.directory_path}/{path.name}"
    try:
        with path.open("rb") as file:
            data = file.read()
            stat = os.fstat(file.fileno())
    except OSError as exc:  # vanished or unreadable between listing and reading
        report.errors.append(f"{key}: cannot read the file: {exc.strerror or exc}")
        return
    created = script is None
    if script is None:
        script = Script(filename=path.name, overrides={}, metadata_json={}, parameters=[])
        script.group = group
        session.add(script)
    before = _state(script)
    was_active = bool(script.is_active)
    header = _header(data)
    errors = list(header.errors)
    warnings = list(header.warnings)
    entry, entry_rejected = _entry_fields(files, path.name, errors, warnings)
    if "required_level" in header.rejected | entry_rejected and "required_level" not in entry:
        entry["required_level"] = LOCKED_LEVEL if created else script.required_level
        warnings.append(f"required_level held at {entry['required_level']!r} until fixed")
    layers = {
        "group": group_defaults(group),
        "detected": _detected(path, listed_docs),
        "header": header.fields,
        "script_metadata": entry,
    }
    extras = {"registers_routes": header.registers_routes, "syntax_ok": not header.syntax_error}
    apply_script_metadata(script, layers, extras)
    docs = script.metadata_json.get("description_long") or {}
    for lang, rel in docs.items():
        if not (path.parent / rel).is_file():
            warnings.append(f"description_long: {lang}: {rel} not found")
    script.metadata_json = {**script.metadata_json, "warnings": warnings}
    script.file_hash = hashlib.sha256(data).hexdigest()
    script.last_modified = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
    script.invalid_reason = "; ".join(errors) or None
    script.is_active = True
    report.record(key, created, was_active, before != _state(script), script.invalid_reason)
    if warnings:
        report.warnings[key] = warnings


def _header(data: bytes) -> HeaderResult:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return HeaderResult(
            errors=[f"file is not valid UTF-8: {exc.reason} at byte {exc.start}"],
            syntax_error="not UTF-8",
            rejected={"required_level"},
        )
    return parse_header(text)


def _entry_fields(
    files: GroupFiles, filename: str, errors: list[str], warnings: list[str]
) -> tuple[dict[str, Any], set[str]]:
    """This script's ``script_metadata.json`` fields, and the fields given but rejected."""
    if files.entries_error:
        errors.append(files.entries_error)
        return {}, {"required_level"}
    raw = files.entries.get(filename)
    if raw is None:
        return {}, set()
    where = f"{SCRIPT_METADATA_FILE}: {filename}"
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be an object")
        return {}, {"required_level"}
    fields, entry_errors, entry_warnings = normalize_fields(raw, SCRIPT_FIELDS, where)
    errors.extend(entry_errors)
    warnings.extend(entry_warnings)
    return fields, {key for key in raw if key in SCRIPT_FIELDS and key not in fields}


def _detected(path: Path, listed_docs: frozenset[str] | None) -> dict[str, Any]:
    """What the file system says: a display name from the file name, docs by convention.

    ``listed_docs``: the names in the group's ``docs/`` (see :func:`doc_names`); only those
    are looked at.
    """
    stem = path.stem
    docs: dict[str, str] = {}
    for lang in LANGUAGES:
        name = f"{stem}.md" if lang == "en" else f"{stem}_{lang}.md"
        listed = listed_docs is None or name in listed_docs
        if listed and (path.parent / "docs" / name).is_file():
            docs[lang] = f"docs/{name}"
    detected: dict[str, Any] = {"display_name": {"en": title_from_name(path.name)}}
    if docs:
        detected["description_long"] = docs
    return detected


def _script_files(path: Path, report: DiscoveryReport) -> dict[str, Path]:
    found: dict[str, Path] = {}
    try:
        with os.scandir(path) as listing:  # file types come with the listing: no stat per file
            entries = sorted(listing, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return found  # as Path.glob: nothing to list
    for entry in entries:
        name = entry.name
        if not name.endswith(".py") or name.startswith(("_", ".")):
            continue
        if entry.is_symlink() or not entry.is_file():
            continue
        if len(name) > MAX_FILENAME:
            report.errors.append(f"{path.name}/{name[:40]}...: file name too long")
            continue
        found[name] = path / name
    return found


def _number_new_rows(session: DbSession) -> None:
    """On PostgreSQL, give the new groups and scripts their ids from their sequences.

    With every id known, the flush sends the new rows with psycopg's ``executemany`` (one
    statement, pipelined) instead of one ``INSERT ... RETURNING`` holding every row, whose
    17,000 placeholders (1,000 new scripts) psycopg rewrites in Python: 0.2 s of a first
    scan. Ids follow the order the rows were added, as the flush would have given them.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in (ScriptGroup, Script):
        rows = [row for row in session.new if isinstance(row, model) and row.id is None]
        if not rows:
            continue
        sequence = func.pg_get_serial_sequence(model.__tablename__, "id")
        numbers = select(func.nextval(sequence)).select_from(func.generate_series(1, len(rows)))
        with session.no_autoflush:
            ids = sorted(session.scalars(numbers))
        for row, row_id in zip(rows, ids, strict=True):
            row.id = row_id


def _state(row: Script | ScriptGroup) -> tuple[Any, ...]:
    """What tells that a row was updated: its file's hash, merged metadata and invalid reason.

    Compared with ``==``, as SQLAlchemy compares a JSON column before writing it. Discovery
    replaces ``metadata_json`` and never changes it in place, so the state taken before keeps
    the old document.
    """
    return (getattr(row, "file_hash", None), row.metadata_json or {}, row.invalid_reason)
