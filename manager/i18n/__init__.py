"""Translations from ``translations/{en,es,it,fr}.json`` with English fallback."""

from __future__ import annotations

import json
import re
import string
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


def category_label(category: str | None, language: str) -> str:
    """A script category's name in ``language`` (key ``category.<name>``), else as written."""
    if not category:
        return ""
    key = f"category.{category.strip().lower()}"
    return catalog(language).get(key) or catalog(FALLBACK).get(key) or category


MESSAGE_PREFIX = "msg."  # English sentences the server builds, translated after the fact


@lru_cache(maxsize=1)
def _message_patterns() -> list[tuple[re.Pattern[str], str]]:
    """Each ``msg.*`` English text as a pattern whose ``{name}`` parts match anything.

    The most specific first (the most literal text): "must be at most {limit} characters"
    is tried before "must be at most {high}".
    """
    found = []
    for key, text in catalog(FALLBACK).items():
        if not key.startswith(MESSAGE_PREFIX):
            continue
        regex, names, literal_length = "", set(), 0
        for literal, name, _, _ in string.Formatter().parse(text):
            regex += re.escape(literal)
            literal_length += len(literal)
            if name is not None:
                regex += f"(?P={name})" if name in names else f"(?P<{name}>.+?)"
                names.add(name)
        found.append((literal_length, re.compile(f"^{regex}$", re.S), key))
    found.sort(key=lambda item: -item[0])
    return [(pattern, key) for _, pattern, key in found]


def localize_message(text: str, language: str) -> str:
    """``text`` (an English message of the server) in ``language`` when the catalog knows it.

    Messages are written in English where they are raised (services, validators); the
    catalog's ``msg.*`` keys hold the same sentences with ``{name}`` placeholders and their
    translations. A message no key matches is returned unchanged.
    """
    if language == FALLBACK or not text:
        return text
    for pattern, key in _message_patterns():
        found = pattern.match(text)
        if found:
            return translate(key, language, **found.groupdict())
    return text
