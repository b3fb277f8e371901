"""Per-group resource limits: defaults, parsing with field-named errors, and merging.

A group's ``metadata.json`` may carry a ``limits`` object; admins may override any field in the UI.
``parse_limits`` validates the first, ``merge`` lays the second over it (the admin's value wins).
Every error is a ``ValueError`` whose message starts with the field name, fit for a form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

NETWORK_POLICIES = ("none", "internal", "egress")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg])b?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"k": 1024, "m": 1024**2, "g": 1024**3}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_DURATION_FACTORS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_WEEK = 7 * 86400


@dataclass(frozen=True)
class Limits:
    """What one session of a group may use. Sizes in Docker notation, timeouts in seconds."""

    memory: str = "512m"
    cpus: float = 1.0
    pids: int = 128
    run_timeout: int = 4 * 3600  # a session of any kind ends after this long
    idle_timeout: int = 30 * 60  # an interactive session nobody uses ends after this long
    network: str = "none"  # none | internal | egress
    max_sessions_per_user: int = 5
    tmpfs: str = "64m"  # size of the writable /tmp
    workspace_quota: str = "5g"  # disk one user's workspaces of the group may take

    @property
    def workspace_quota_bytes(self) -> int:
        return parse_size(self.workspace_quota)

    def to_dict(self) -> dict[str, Any]:
        """The limits as a JSON-able dict, in the shape ``parse_limits`` reads."""
        return asdict(self)

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def tmpfs_bytes(self) -> int:
        return parse_size(self.tmpfs)


def parse_size(text: str) -> int:
    """Bytes in a size like ``256m``, ``1g``, ``512MB``; raise ValueError otherwise."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 256m or 1g")
    return int(float(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()])


def _size(field: str, value: Any, low: str, high: str) -> str:
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{field}: {value!r} is not a size like 256m or 1g")
    number, unit = match.groups()
    size = parse_size(value)
    if not parse_size(low) <= size <= parse_size(high):
        raise ValueError(f"{field}: {value!r} must be between {low} and {high}")
    # Docker takes integers only: "1.5g" becomes "1536m".
    if "." in number:
        return f"{size // _SIZE_FACTORS['k']}k"
    return f"{number}{unit.lower()}"


def _number(field: str, value: Any, low: float, high: float, *, integer: bool) -> Any:
    kind = "a whole number" if integer else "a number"
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not {kind}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: {value!r} is not {kind}")
    if integer:
        if value != int(value):
            raise ValueError(f"{field}: {value!r} is not {kind}")
        value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{field}: {value!r} must be between {low:g} and {high:g}")
    return value if integer else float(value)


def _duration(field: str, value: Any) -> int:
    """Seconds from an int or a string like ``90``, ``30m``, ``2h``, ``1d``."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(f"{field}: {value!r} is not a duration like 90, 30m or 2h")
        value = int(match.group(1)) * _DURATION_FACTORS[match.group(2).lower()]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: {value!r} is not a duration like 90, 30m or 2h")
    if not 1 <= value <= _WEEK:
        raise ValueError(f"{field}: {value} seconds must be between 1 second and 7 days")
    return value


def _network(field: str, value: Any) -> str:
    if value not in NETWORK_POLICIES:
        raise ValueError(f"{field}: {value!r} must be one of {', '.join(NETWORK_POLICIES)}")
    return str(value)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "memory": lambda f, v: _size(f, v, "32m", "256g"),
    "cpus": lambda f, v: _number(f, v, 0.05, 64, integer=False),
    "pids": lambda f, v: _number(f, v, 16, 4096, integer=True),
    "run_timeout": _duration,
    "idle_timeout": _duration,
    "network": _network,
    "max_sessions_per_user": lambda f, v: _number(f, v, 1, 100, integer=True),
    "tmpfs": lambda f, v: _size(f, v, "1m", "64g"),
    "workspace_quota": lambda f, v: _size(f, v, "1m", "16384g"),
}


def _validated(limits: Limits) -> Limits:
    """Check what involves more than one field."""
    # The tmpfs lives in the session's memory: a bigger one could never be filled.
    if limits.tmpfs_bytes > limits.memory_bytes:
        raise ValueError(
            f"tmpfs: {limits.tmpfs!r} is larger than the memory limit {limits.memory!r}"
        )
    return limits


def _parse_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(_PARSERS))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown limit (known: {', '.join(_PARSERS)})"
            if len(unknown) == 1
            else f"{', '.join(unknown)}: unknown limits (known: {', '.join(_PARSERS)})"
        )
    return {key: _PARSERS[key](key, value) for key, value in data.items() if value is not None}


def parse_limits(data: Mapping[str, Any] | None) -> Limits:
    """Read a ``limits`` object (metadata.json); missing or null fields take the defaults.

    Raises ValueError naming the field, e.g. ``memory: '12x' is not a size like 256m or 1g``.
    """
    if data is None:
        return Limits()
    if not isinstance(data, Mapping):
        raise ValueError(f"limits: {data!r} must be an object")
    return _validated(Limits(**_parse_fields(data)))


def merge(group_limits: Limits, admin_overrides: Mapping[str, Any] | None) -> Limits:
    """Lay the admin's overrides (only the fields set, None = not set) over a group's limits.

    The admin's value wins field by field. Raises ValueError naming the field.
    """
    if not admin_overrides:
        return group_limits
    return _validated(replace(group_limits, **_parse_fields(admin_overrides)))
