"""Translations from ``translations/{en,es,it,fr}.json`` with English fallback."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
LANGUAGE_NAMES = {"en": "English", "es": "Español", "it": "Italiano", "fr": "Français"}
FALLBACK = "en"


@lru_cache(maxsize=8)
def catalog(language: str) -> dict[str, str]:
    """All strings of one language; an unknown language gives an empty catalog."""
    if language not in LANGUAGE_NAMES:
        return {}
    path = TRANSLATIONS_DIR / f"{language}.json"
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def translate(key: str, language: str, /, **values: Any) -> str:
    """The string for ``key`` in ``language``, else English, else the key itself."""
    text = catalog(language).get(key) or catalog(FALLBACK).get(key) or key
    if values:
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def merged(language: str) -> dict[str, str]:
    """Every key in ``language`` with English filling the gaps."""
    return {**catalog(FALLBACK), **catalog(language)}


def localized(value: Any, language: str) -> str:
    """Pick ``language`` from a ``{lang: text}`` value (English fallback); strings pass through."""
    if value is None:
        return ""
    if isinstance(value, dict):
        for lang in (language, FALLBACK):
            if value.get(lang):
                return str(value[lang])
        for text in value.values():
            if text:
                return str(text)
        return ""
    return str(value)
