"""Parameter definitions of a script, and the values submitted for them.

A definition is an object such as ``{"name": "compression", "type": "select",
"options": ["none", "gzip"], "default": "gzip"}``. :func:`validate_parameter_definitions`
checks and normalises a list of them (the header's ``@parameters``, ``script_metadata.json``,
an edit in the app); :func:`validate_parameter_values` converts what a user submitted (form
strings or JSON values) before a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from manager.catalog.errors import MetadataError
from manager.catalog.localize import normalize_localized

PARAMETER_TYPES: tuple[str, ...] = (
    "string",
    "text",
    "int",
    "float",
    "bool",
    "select",
    "multiselect",
    "date",
    "path",
    "secret",
    "file",
)
# Spellings people write from habit; normalised to the canonical type.
TYPE_ALIASES: dict[str, str] = {
    "str": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "textarea": "text",
    "password": "secret",
    "upload": "file",
}
TEXT_TYPES = frozenset({"string", "text", "path", "secret"})
CHOICE_TYPES = frozenset({"select", "multiselect"})
NUMBER_TYPES = frozenset({"int", "float"})
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
SECRET_MASK = "********"
# Where the runner mounts the workspace; a ``file`` parameter's value is a path under it.
WORKSPACE_MOUNT = "/workspace"


def validate_parameter_definitions(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Check a list of parameter definitions; return the valid ones normalised, and errors.

    Each error names the parameter (``parameter 'mode': unknown type 'dropdown' ...``).
    Normalised definitions carry ``name``, ``type`` (canonical), ``required`` (bool), localized
    ``description``/``label`` as ``{lang: text}``, and a converted ``default`` when given.
    Unknown keys (``step``, ``unit``, ...) are kept as they are, for the form.
    """
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], ["must be a list of parameter objects"]
    definitions: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        where = f"parameter #{index}"
        if not isinstance(item, Mapping):
            errors.append(f"{where}: must be an object")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}: 'name' is required")
            continue
        where = f"parameter {name!r}"
        if not NAME_RE.match(name):
            errors.append(
                f"{where}: name must start with a letter or '_' and hold only letters, "
                "digits or '_' (at most 64)"
            )
            continue
        if name in seen:
            errors.append(f"{where}: name is used twice")
            continue
        seen.add(name)
        try:
            definitions.append(_definition(item))
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
    return definitions, errors


def validate_parameter_values(
    definitions: list[dict[str, Any]],
    values: Mapping[str, Any] | None,
    *,
    allow_unknown: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Convert submitted values; return ``(clean_values, errors_by_field)``.

    Missing or empty values take the definition's default; a bool without one is False; a
    required value without one is an error. Optional values without a default are left out.
    Names no definition knows are errors unless ``allow_unknown``.
    """
    values = values or {}
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for definition in definitions:
        name = definition["name"]
        raw = values.get(name)
        if _is_empty(raw):
            if "default" in definition:
                default = definition["default"]
                clean[name] = list(default) if isinstance(default, list) else default
            elif definition["type"] == "bool":
                clean[name] = False
            elif definition.get("required"):
                errors[name] = "is required"
            continue
        try:
            clean[name] = coerce_value(definition, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if not allow_unknown:
        known = {definition["name"] for definition in definitions}
        for name in values:
            if name not in known:
                errors[name] = "is not a parameter of this script"
    return clean, errors


def mask_secrets(definitions: list[dict[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``values`` with every ``secret`` parameter replaced by a mask, for logs."""
    secret = {d["name"] for d in definitions if d.get("type") == "secret"}
    return {key: (SECRET_MASK if key in secret else value) for key, value in values.items()}


def coerce_value(definition: Mapping[str, Any], raw: Any) -> Any:
    """Convert one non-empty value to the definition's type; raise ``ValueError`` saying why."""
    kind = definition["type"]
    if kind in TEXT_TYPES:
        value: Any = _text(definition, raw)
    elif kind == "int":
        value = _int(raw)
    elif kind == "float":
        value = _float(raw)
    elif kind == "bool":
        value = _bool(raw)
    elif kind == "select":
        value = _option(definition["options"], raw)
    elif kind == "multiselect":
        items = raw if isinstance(raw, list | tuple) else _split_choices(definition, raw)
        value = []
        for item in items:
            option = _option(definition["options"], item)
            if option not in value:
                value.append(option)
    elif kind == "date":
        value = _date(raw).isoformat()
    elif kind == "file":
        value = _workspace_file(raw)
    else:  # pragma: no cover - definitions are validated first
        raise ValueError(f"unknown type {kind!r}")
    _check_bounds(definition, value)
    return value


def _definition(item: Mapping[str, Any]) -> dict[str, Any]:
    raw_type = item.get("type", "string")
    kind = TYPE_ALIASES.get(str(raw_type).lower(), str(raw_type).lower())
    if not isinstance(raw_type, str) or kind not in PARAMETER_TYPES:
        raise ValueError(
            f"unknown type {raw_type!r} (expected one of {', '.join(PARAMETER_TYPES)})"
        )
    definition = {key: value for key, value in item.items() if key != "display_name"}
    definition["type"] = kind
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise ValueError("'required' must be true or false")
    definition["required"] = required
    try:
        for key, value in (
            ("description", item.get("description")),
            ("label", item.get("label", item.get("display_name"))),
        ):
            if value is not None:
                definition[key] = normalize_localized(key, value)
    except MetadataError as exc:
        raise ValueError(str(exc)) from exc
    _check_options(kind, item)
    _check_bound_keys(kind, item)
    if "max_length" in item:
        limit = item["max_length"]
        if kind not in TEXT_TYPES:
            raise ValueError("'max_length' only applies to string, text, path and secret")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("'max_length' must be a whole number of at least 1")
    if "pattern" in item:
        if kind not in ("string", "text") or not isinstance(item["pattern"], str):
            raise ValueError("'pattern' must be text and only applies to string and text")
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from exc
    definition.pop("default", None)
    default = item.get("default")
    if not _is_empty(default):
        if kind == "secret":
            raise ValueError("a secret cannot have a default (it would be stored in the script)")
        try:
            definition["default"] = coerce_value(definition, default)
        except ValueError as exc:
            raise ValueError(f"default {default!r} {exc}") from exc
    return definition


def _check_options(kind: str, item: Mapping[str, Any]) -> None:
    options = item.get("options")
    if kind not in CHOICE_TYPES:
        if options is not None:
            raise ValueError("'options' only applies to select and multiselect")
        return
    if not isinstance(options, list) or not options:
        raise ValueError(f"a {kind} needs a non-empty 'options' list")
    seen: set[str] = set()
    for option in options:
        if isinstance(option, bool) or not isinstance(option, str | int | float):
            raise ValueError(f"option {option!r} must be text or a number")
        if str(option) in seen:
            raise ValueError(f"option {option!r} appears twice")
        seen.add(str(option))


def _check_bound_keys(kind: str, item: Mapping[str, Any]) -> None:
    bounds = {key: item[key] for key in ("min", "max") if item.get(key) is not None}
    if not bounds:
        return
    if kind not in NUMBER_TYPES and kind != "date":
        raise ValueError("'min' and 'max' only apply to int, float and date")
    converted: dict[str, Any] = {}
    for key, bound in bounds.items():
        try:
            converted[key] = _date(bound) if kind == "date" else _number(kind, bound)
        except ValueError as exc:
            raise ValueError(f"'{key}' {exc}") from exc
    if len(converted) == 2 and converted["min"] > converted["max"]:
        raise ValueError("'min' is greater than 'max'")


def _number(kind: str, bound: Any) -> float:
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise ValueError("must be a number")
    if kind == "int" and not float(bound).is_integer():
        raise ValueError("must be a whole number")
    return bound


def _check_bounds(definition: Mapping[str, Any], value: Any) -> None:
    kind = definition["type"]
    if kind in NUMBER_TYPES or kind == "date":
        compared = date.fromisoformat(value) if kind == "date" else value
        low, high = definition.get("min"), definition.get("max")
        if low is not None and compared < (_date(low) if kind == "date" else low):
            raise ValueError(f"must be at least {low}")
        if high is not None and compared > (_date(high) if kind == "date" else high):
            raise ValueError(f"must be at most {high}")
    limit = definition.get("max_length")
    if kind in TEXT_TYPES and limit is not None and len(value) > limit:
        raise ValueError(f"must be at most {limit} characters")


def _is_empty(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    return isinstance(raw, list | tuple) and not raw


def _text(definition: Mapping[str, Any], raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be text")
    if "\x00" in raw:
        raise ValueError("must not contain NUL characters")
    kind = definition["type"]
    value = raw.strip() if kind in ("string", "path") else raw
    if kind in ("string", "path") and ("\n" in value or "\r" in value):
        raise ValueError("must be a single line")
    pattern = definition.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueError(f"does not match the expected format {pattern}")
    return value


def _workspace_file(raw: Any) -> str:
    """A file in the workspace (``uploads/…`` or ``/workspace/uploads/…``) as the path the
    script opens; the upload API gives this value."""
    from manager.workspace.safefs import UnsafePath, split_path

    if not isinstance(raw, str):
        raise ValueError("must be the path of an uploaded file")
    text = raw.strip()
    if text == WORKSPACE_MOUNT or text.startswith(WORKSPACE_MOUNT + "/"):
        text = text[len(WORKSPACE_MOUNT) :].lstrip("/")
    try:
        parts = split_path(text)
    except UnsafePath as exc:
        raise ValueError(f"must be a file in your workspace ({exc.message})") from None
    return f"{WORKSPACE_MOUNT}/{'/'.join(parts)}"


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise ValueError("must be a whole number")


def _float(raw: Any) -> float:
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        # A decimal comma, as typed by Spanish, Italian and French users.
        if "," in text and "." not in text and text.count(",") == 1:
            text = text.replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        raise ValueError("must be a number")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError("must be true or false")


def _option(options: list[Any], raw: Any) -> Any:
    if not isinstance(raw, bool):
        for option in options:
            if raw == option or (isinstance(raw, str) and raw.strip() == str(option)):
                return option
    raise ValueError(f"must be one of: {', '.join(str(option) for option in options)}")


def _split_choices(definition: Mapping[str, Any], raw: Any) -> list[Any]:
    if isinstance(raw, str) and raw.strip() not in {str(o) for o in definition["options"]}:
        return [part for part in raw.split(",") if part.strip()]
    return [raw]


def _date(raw: Any) -> date:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and DATE_RE.match(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValueError("must be a date as YYYY-MM-DD")
