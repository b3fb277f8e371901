"""Normalisers for the fields of a script's and a group's metadata, wherever they come from.

The header parser, ``script_metadata.json``, ``metadata.json`` and edits made in the app all
go through the same functions, so a value is valid or invalid the same way in every source.
Each normaliser takes ``(field, value)`` and returns the normalised value or raises
:class:`MetadataError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from manager.catalog.errors import MetadataError
from manager.catalog.localize import normalize_localized
from manager.catalog.schema import validate_parameter_definitions
from manager.models.user import LANGUAGES, LEVELS

Normaliser = Callable[[str, Any], Any]

LOCALIZED_FIELDS: tuple[str, ...] = ("display_name", "description", "description_long")
# Longest first, so ``description_long_es`` is not read as ``description`` + ``long_es``.
LOCALIZED_BY_LENGTH: tuple[str, ...] = tuple(sorted(LOCALIZED_FIELDS, key=len, reverse=True))
# What a developer may change from the app (stored in Script.overrides).
EDITABLE_SCRIPT_FIELDS: tuple[str, ...] = (
    "display_name",
    "description",
    "description_long",
    "required_level",
    "category",
    "tags",
    "parameters",
    "execution_timeout",
    "flask_port",
    "proxy_enabled",
)
# What an admin may change on a group from the app (stored in ScriptGroup.overrides).
EDITABLE_GROUP_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "icon",
    "required_level",
    "category",
    "conda_environment",
    "execution_timeout",
    "limits",
)
NETWORK_POLICIES: tuple[str, ...] = ("none", "internal", "egress")
MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$", re.IGNORECASE)
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # Docker refuses less than 6 MiB
ICON_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Names a file (conda-envs/NAME.yml) and an image (scriptsmanager-env-NAME): lowercase only.
ENV_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MAX_TIMEOUT = 7 * 24 * 3600


def normalize_level(field: str, value: Any) -> str:
    """A user level: viewer, operator, developer or admin."""
    if not isinstance(value, str) or value.strip().lower() not in LEVELS:
        raise MetadataError(field, f"unknown level {value!r} (expected one of {', '.join(LEVELS)})")
    return value.strip().lower()


def normalize_positive_int(field: str, value: Any, maximum: int | None = None) -> int:
    """A whole number of at least 1 (digits in a string are accepted)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise MetadataError(field, f"must be a whole number of at least 1, got {value!r}")
    if maximum is not None and number > maximum:
        raise MetadataError(field, f"must be at most {maximum}, got {value!r}")
    return number


def normalize_timeout(field: str, value: Any) -> int:
    """Seconds, 1 to one week."""
    return normalize_positive_int(field, value, MAX_TIMEOUT)


def normalize_bool(field: str, value: Any) -> bool:
    """True or false (``"yes"``, ``"on"``, ``"1"`` and their opposites in text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
        return False
    raise MetadataError(field, f"must be true or false, got {value!r}")


def normalize_text(field: str, value: Any) -> str:
    """A non-empty single line of at most 100 characters."""
    if not isinstance(value, str) or not value.strip():
        raise MetadataError(field, "must be non-empty text")
    text = value.strip()
    if len(text) > 100 or "\n" in text:
        raise MetadataError(field, "must be a single line of at most 100 characters")
    return text


def normalize_tags(field: str, value: Any) -> list[str]:
    """A list of tags, or a comma-separated string; blanks and repeats are dropped."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise MetadataError(field, "must be a list of text or a comma-separated text")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise MetadataError(field, f"tag {item!r} must be text")
        tag = item.strip()
        if "," in tag or len(tag) > 50:
            raise MetadataError(field, f"tag {tag!r} must hold no comma and at most 50 characters")
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def normalize_parameters(field: str, value: Any) -> list[dict[str, Any]]:
    """A list of parameter definitions (see :mod:`manager.catalog.schema`)."""
    definitions, errors = validate_parameter_definitions(value)
    if errors:
        raise MetadataError(field, "; ".join(errors))
    return definitions


def normalize_flask_port(field: str, value: Any) -> str | int:
    """``auto`` or a port number (kept for the seed's compatibility; the runner decides)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return normalize_positive_int(field, value, 65535)
    except MetadataError:
        raise MetadataError(field, f"must be 'auto' or a port number, got {value!r}") from None


def normalize_doc_paths(field: str, value: Any) -> dict[str, str]:
    """Localized paths of Markdown files inside the group folder (``docs/name_es.md``)."""
    paths = normalize_localized(field, value)
    for lang, path in paths.items():
        pure = PurePosixPath(path.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or not path.endswith(".md"):
            raise MetadataError(
                field, f"{lang}: {path!r} must be a relative .md path inside the group folder"
            )
        paths[lang] = str(pure)
    return paths


INTERFACES: tuple[str, ...] = ("runner", "legacy")


def normalize_interface(field: str, value: Any) -> str:
    """How the script is run: ``runner`` (the default: names injected, routes on ``app``) or
    ``legacy`` (the seed's port-based interface: ``--data-dir --port ...``, its own server)."""
    if not isinstance(value, str) or value.strip().lower() not in INTERFACES:
        raise MetadataError(field, f"must be one of {', '.join(INTERFACES)}, got {value!r}")
    return value.strip().lower()


def normalize_icon(field: str, value: Any) -> str:
    """A Bootstrap Icons name such as ``calculator``; a leading ``bi-`` is dropped."""
    if isinstance(value, str):
        name = value.strip().removeprefix("bi-")
        if ICON_RE.match(name):
            return name
    raise MetadataError(field, f"{value!r} is not a Bootstrap Icons name such as 'gear'")


def normalize_env_name(field: str, value: Any) -> str:
    """An environment name: the ``NAME`` of ``conda-envs/NAME.yml``."""
    if not isinstance(value, str) or not ENV_NAME_RE.match(value.strip()):
        raise MetadataError(
            field,
            f"{value!r} must be lowercase letters, digits, '.', '_' or '-' "
            "(it names a spec file and an image)",
        )
    return value.strip()


def parse_memory(text: str) -> int:
    """Bytes in a Docker memory size such as ``512m`` or ``2g``; raises ``ValueError``."""
    match = MEMORY_RE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a memory size such as '512m' or '2g'")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()])


def normalize_memory(field: str, value: Any) -> str:
    """A Docker memory size of at least 6m, returned lowercase without spaces."""
    try:
        size = parse_memory(str(value)) if isinstance(value, str | int) else None
    except ValueError as exc:
        raise MetadataError(field, str(exc)) from None
    if size is None:
        raise MetadataError(field, f"{value!r} is not a memory size such as '512m'")
    if size < MIN_MEMORY:
        raise MetadataError(field, f"{value!r} is below Docker's minimum of 6m")
    return str(value).strip().lower().replace(" ", "")


def normalize_cpus(field: str, value: Any) -> float:
    """CPUs as a positive number, such as 0.5 or 2."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1024:
        raise MetadataError(field, f"must be a number above 0 such as 0.5 or 2, got {value!r}")
    return float(value)


def normalize_network(field: str, value: Any) -> str:
    """A network policy: none, internal or egress."""
    if value not in NETWORK_POLICIES:
        raise MetadataError(
            field,
            f"unknown network policy {value!r} (expected one of {', '.join(NETWORK_POLICIES)})",
        )
    return str(value)


LIMIT_FIELDS: dict[str, Normaliser] = {
    "memory": normalize_memory,
    "cpus": normalize_cpus,
    "pids": lambda field, value: normalize_positive_int(field, value, 1_000_000),
    "run_timeout": normalize_timeout,
    "idle_timeout": normalize_timeout,
    "network": normalize_network,
    "max_sessions_per_user": lambda field, value: normalize_positive_int(field, value, 1000),
    "workspace_quota": normalize_memory,  # a size, like memory: "1g"
}


def normalize_limits(field: str, value: Any) -> dict[str, Any]:
    """A group's resource limits; unknown keys are errors (a typo must not go unnoticed)."""
    if not isinstance(value, Mapping):
        raise MetadataError(field, "must be an object")
    limits: dict[str, Any] = {}
    for key, item in value.items():
        if key not in LIMIT_FIELDS:
            raise MetadataError(
                field, f"unknown limit {key!r} (expected one of {', '.join(LIMIT_FIELDS)})"
            )
        limits[key] = LIMIT_FIELDS[key](f"{field}.{key}", item)
    return limits


SCRIPT_FIELDS: dict[str, Normaliser] = {
    "display_name": normalize_localized,
    "description": normalize_localized,
    "description_long": normalize_doc_paths,
    "required_level": normalize_level,
    "category": normalize_text,
    "tags": normalize_tags,
    "parameters": normalize_parameters,
    "execution_timeout": normalize_timeout,
    "flask_port": normalize_flask_port,
    "proxy_enabled": normalize_bool,
    "requires_parameters": normalize_bool,
    "interface": normalize_interface,
}

GROUP_FIELDS: dict[str, Normaliser] = {
    "name": normalize_localized,
    "description": normalize_localized,
    "icon": normalize_icon,
    "required_level": normalize_level,
    "category": normalize_text,
    "conda_environment": normalize_env_name,
    "auto_discovery": normalize_bool,
    "execution_timeout": normalize_timeout,
    "limits": normalize_limits,
}


def normalize_fields(
    raw: Mapping[str, Any], known: Mapping[str, Normaliser], where: str
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Normalise every known field of ``raw``; return ``(fields, errors, warnings)``.

    Invalid fields are left out and reported as ``"<where>: <field>: <reason>"``; unknown
    keys are left out with a warning. ``fields`` keeps only the valid values.
    """
    fields: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for key, value in raw.items():
        normaliser = known.get(key)
        if normaliser is None:
            warnings.append(f"{where}: unknown field {key!r} ignored")
            continue
        try:
            fields[key] = normaliser(key, value)
        except MetadataError as exc:
            errors.append(f"{where}: {exc}")
    return fields, errors, warnings


def language_suffix(key: str) -> tuple[str, str] | None:
    """Split ``description_long_es`` into ``("description_long", "es")``; None if not localized."""
    for base in LOCALIZED_BY_LENGTH:
        if key == base:
            return base, "en"
        suffix = key.removeprefix(f"{base}_")
        if suffix != key and suffix in LANGUAGES:
            return base, suffix
    return None
