"""Localized texts: a string or a ``{lang: text}`` object, read with English fallback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manager.catalog.errors import MetadataError
from manager.models.user import LANGUAGES

FALLBACK_LANGUAGE = "en"


def normalize_localized(field: str, value: Any) -> dict[str, str]:
    """Return ``value`` as ``{lang: text}``; a plain string is English.

    Empty texts are dropped. Raises :class:`MetadataError` for an unknown language or a
    value that is neither a string nor an object of strings.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        return {FALLBACK_LANGUAGE: text} if text else {}
    if not isinstance(value, Mapping):
        raise MetadataError(field, "must be text or an object of language: text")
    result: dict[str, str] = {}
    for lang, text in value.items():
        if lang not in LANGUAGES:
            raise MetadataError(
                field, f"unknown language {lang!r} (expected one of {', '.join(LANGUAGES)})"
            )
        if not isinstance(text, str):
            raise MetadataError(field, f"{lang}: must be text")
        if text.strip():
            result[lang] = text.strip()
    return result


def localized(value: Any, lang: str = FALLBACK_LANGUAGE, default: str = "") -> str:
    """Pick ``lang`` from a localized value, else English, else any language, else ``default``."""
    if value is None:
        return default
    if isinstance(value, str):
        return value or default
    if not isinstance(value, Mapping):
        return default
    for candidate in (lang, FALLBACK_LANGUAGE, *LANGUAGES, *value.keys()):
        text = value.get(candidate)
        if isinstance(text, str) and text:
            return text
    return default
