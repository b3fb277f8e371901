"""The README tells a new user what they need: host tools, PostgreSQL, parameters, the API."""

from __future__ import annotations

import re
from pathlib import Path

from manager.catalog.schema import PARAMETER_TYPES, TYPE_ALIASES
from manager.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_no_promise_of_a_backend_that_is_there():
    assert "arrives in its own change" not in README


def test_host_requirements_are_listed():
    needs = _section("Two commands")
    for tool in ("Python 3.11+", "npm", "Docker", "iptables", "debootstrap", "make"):
        assert tool in needs, tool


def test_every_command_is_documented():
    commands = _section("Command line")
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name in sub.choices:
        assert f"scriptsmanager {name}" in commands, name


def test_postgresql_set_up_is_explained():
    text = _section("PostgreSQL")
    for needed in ("createuser", "createdb", "DATABASE_URL=postgresql://", "init-db"):
        assert needed in text, needed


def test_every_parameter_type_and_alias_is_documented():
    scripts = _section("Scripts")
    for kind in PARAMETER_TYPES:
        assert f"| `{kind}` |" in scripts, kind
    for alias in TYPE_ALIASES:
        assert f"`{alias}`" in scripts, alias
    assert "@flask_port" in scripts and "`app`" in scripts and "@app.route" in scripts


def test_the_api_section_points_to_the_reference():
    assert "scriptsmanager api" in _section("API")
