"""The four translation files agree, and every string the pages ask for exists."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from manager.models.user import LEVELS

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "manager" / "i18n" / "translations"
TEMPLATES = ROOT / "manager" / "templates"
JS_DIR = ROOT / "manager" / "static" / "js"
LANGUAGES = ("en", "es", "it", "fr")

# A literal key only: `_('level.' ~ level)` is checked by test_every_level_has_a_name.
TEMPLATE_KEY = re.compile(r"""\b_\(\s*['"]([^'"]+)['"]\s*[,)]""")
JS_KEY = re.compile(r"""\bt\(\s*"([^"]+)"\s*[,)]""")
JS_KEY_LIST = re.compile(r"set js_keys = \[(.*?)\]", re.S)
PYTHON_KEY = re.compile(r"""\btranslate\(\s*['"]([^'"]+)['"]""")


def load(language: str) -> dict[str, str]:
    return json.loads((TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def english() -> dict[str, str]:
    return load("en")


def template_keys() -> set[str]:
    keys = set()
    for path in TEMPLATES.rglob("*.html"):
        keys.update(TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def js_declared_keys() -> set[str]:
    match = JS_KEY_LIST.search((TEMPLATES / "base.html").read_text(encoding="utf-8"))
    assert match, "base.html no longer declares js_keys for app.js"
    return set(re.findall(r"'([^']+)'", match.group(1)))


@pytest.mark.parametrize("language", LANGUAGES)
def test_file_is_a_flat_map_of_non_empty_strings(language):
    data = load(language)
    assert data, f"{language}.json is empty"
    for key, value in data.items():
        assert isinstance(value, str), f"{language}.json: {key} is not a string"
        assert value.strip(), f"{language}.json: {key} is empty"


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_same_keys_as_english(language):
    en, other = set(english()), set(load(language))
    assert sorted(en - other) == [], f"missing in {language}.json"
    assert sorted(other - en) == [], f"only in {language}.json, not in en.json"


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_same_placeholders_as_english(language):
    en, other = english(), load(language)
    wrong = {
        key: (sorted(placeholders(text)), sorted(placeholders(other.get(key, ""))))
        for key, text in en.items()
        if placeholders(text) != placeholders(other.get(key, ""))
    }
    assert wrong == {}, f"{language}.json: placeholders differ (english, {language})"


def test_no_placeholder_shadows_a_parameter_of_translate():
    # translate(key, language, **values): a {key} or {language} placeholder could not be filled.
    clashes = {key for key, text in english().items() if placeholders(text) & {"key", "language"}}
    assert clashes == set()


def test_every_template_key_exists_in_english():
    keys = template_keys()
    assert len(keys) > 50, "the template scan found suspiciously few keys"
    assert sorted(keys - set(english())) == []


def test_every_level_has_a_name():
    # Templates build these keys as 'level.' ~ level.
    assert sorted(f"level.{level}" for level in LEVELS if f"level.{level}" not in english()) == []


def test_page_script_strings_are_rendered_for_it():
    used = {
        key
        for path in sorted(JS_DIR.glob("*.js"))
        for key in JS_KEY.findall(path.read_text(encoding="utf-8"))
    }
    declared = js_declared_keys()
    assert used, "the app.js scan found no t(...) call"
    assert sorted(used - declared) == [], "app.js uses keys that base.html does not render"
    assert sorted(declared - set(english())) == [], "base.html renders keys missing from en.json"


def test_python_keys_exist_in_english():
    keys = set()
    for path in (ROOT / "manager").rglob("*.py"):
        keys.update(PYTHON_KEY.findall(path.read_text(encoding="utf-8")))
    assert {"login.rate_limited", "login.wrong_credentials"} <= set(english())
    assert sorted(keys - set(english())) == []
