"""Every setting with the value this manager uses and where it came from; secrets masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from manager.settings import SETTINGS, ConfigError, resolve_settings

MASK = "••••••••"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|(^|_)KEY$|CREDENTIAL", re.I)
URL_WITH_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]*)(@)", re.I)


@dataclass
class ConfigRow:
    env: str
    key: str
    value: str
    source: str  # env:NAME, file:json.path, default, or "set by the application"
    default: str
    masked: bool
    help: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def mask_url(text: str) -> str:
    """A URL with its password replaced by the mask (other text unchanged)."""
    return URL_WITH_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)


def is_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def effective_configuration(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[ConfigRow]:
    """One row per setting of the settings table, in its order."""
    try:
        _values, sources = resolve_settings(environ)
    except ConfigError:
        sources = {}
    rows = []
    for setting in SETTINGS:
        value = config.get(setting.key)
        source = sources.get(setting.key, "default")
        if source == "default" and shown(value) != shown(setting.default):
            source = "application"  # derived at start (paths made absolute, the SQLite default)
        masked = False
        text = shown(value)
        if is_secret(setting.key) or is_secret(setting.env):
            masked = bool(text)
            text = MASK if text else ""
        elif "://" in text:
            masked_text = mask_url(text)
            masked = masked_text != text
            text = masked_text
        rows.append(
            ConfigRow(
                setting.env,
                setting.key,
                text,
                source,
                shown(setting.default),
                masked,
                setting.help,
            )
        )
    return rows
