"""Precedence of the four sources, localization fallback, and edits made in the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_support import script_source
from conftest import WriteFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.catalog.discovery import discover, refresh_script
from manager.catalog.errors import MetadataError
from manager.catalog.localize import localized, normalize_localized
from manager.catalog.metadata import merge_layers, update_group_metadata, update_script_metadata
from manager.models import Script


def only_script(session: Session) -> Script:
    script = session.scalar(select(Script))
    assert script is not None
    return script


@pytest.fixture
def layered(session: Session, groups: Path, write: WriteFile) -> Script:
    """One script whose fields come from every layer."""
    write(
        "g/metadata.json",
        {
            "required_level": "viewer",
            "execution_timeout": 100,
            "conda_environment": "base",
        },
    )
    write(
        "g/tool.py",
        script_source(
            """
            @description: Header description
            @description_es: Descripción de la cabecera
            @required_level: operator
            @execution_timeout: 200
            @category: header-category
            """
        ),
    )
    write(
        "g/scripts/script_metadata.json",
        {
            "tool.py": {
                "description": {"en": "Entry description"},
                "required_level": "developer",
                "execution_timeout": 300,
            }
        },
    )
    discover(session, groups)
    script = only_script(session)
    update_script_metadata(
        session, script, {"required_level": "admin", "description": {"it": "Modificata"}}
    )
    session.commit()
    return script


def test_each_field_comes_from_the_highest_source_that_has_it(layered: Script) -> None:
    meta = layered.metadata_json

    assert layered.required_level == "admin"  # app edit > entry > header > group
    assert layered.execution_timeout == 300  # entry > header > group
    assert layered.category == "header-category"  # header only
    assert meta["conda_environment"] == "base"  # group only
    assert layered.display_name == "Tool"  # detected from the file name
    # Localized texts merge per language.
    assert meta["description"] == {
        "en": "Entry description",
        "es": "Descripción de la cabecera",
        "it": "Modificata",
    }
    assert layered.description == "Entry description"
    assert meta["sources"]["required_level"] == "overrides"
    assert meta["sources"]["execution_timeout"] == "script_metadata"
    assert meta["sources"]["category"] == "header"
    assert meta["sources"]["conda_environment"] == "group"
    assert meta["sources"]["display_name"] == "detected"


def test_removing_a_layer_uncovers_the_next_one(
    session: Session, groups: Path, layered: Script
) -> None:
    update_script_metadata(session, layered, {"required_level": None})
    assert layered.required_level == "developer"

    (groups / "g" / "scripts" / "script_metadata.json").unlink()
    refresh_script(session, layered, groups)
    assert layered.required_level == "operator"
    assert layered.execution_timeout == 200

    (groups / "g" / "tool.py").write_text("print('no header')\n")
    refresh_script(session, layered, groups)
    assert layered.required_level == "viewer"
    assert layered.execution_timeout == 100
    assert layered.metadata_json["description"] == {"it": "Modificata"}
    assert layered.description == "Modificata"  # no English text: any language will do


def test_group_edits_reach_the_scripts_that_inherit(
    session: Session, groups: Path, write: WriteFile
) -> None:
    write("g/metadata.json", {"required_level": "operator", "limits": {"memory": "1g"}})
    write("g/inherits.py", script_source("@description: inherits"))
    write("g/own.py", script_source("@required_level: viewer"))
    discover(session, groups)
    group = only_script(session).group

    update_group_metadata(
        session, group, {"required_level": "developer", "limits": {"cpus": 2, "memory": "2g"}}
    )

    levels = {s.filename: s.required_level for s in group.scripts}
    assert levels == {"inherits.py": "developer", "own.py": "viewer"}
    assert group.required_level == "developer"
    assert group.metadata_json["limits"] == {"memory": "2g", "cpus": 2.0}
    assert group.metadata_json["sources"]["limits"] == "overrides"

    discover(session, groups)  # a rescan keeps the admin's values
    assert group.required_level == "developer"
    assert group.metadata_json["limits"]["memory"] == "2g"

    with pytest.raises(MetadataError) as caught:
        update_group_metadata(session, group, {"limits": {"network": "open"}})
    assert caught.value.field == "limits.network"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"required_level": "root"},
            "required_level",
            "unknown level 'root' (expected one of viewer, operator, developer, admin)",
        ),
        ({"execution_timeout": 0}, "execution_timeout", "must be a whole number of at least 1"),
        ({"description": {"de": "x"}}, "description", "unknown language 'de'"),
        ({"parameters": [{"name": "p", "type": "colour"}]}, "parameters", "unknown type"),
        ({"description_long": "/etc/passwd"}, "description_long", "relative .md path"),
        ({"file_hash": "abc"}, "file_hash", "cannot be edited"),
        ({"tags": 5}, "tags", "must be a list of text"),
    ],
)
def test_bad_edits_raise_metadata_error_and_store_nothing(
    session: Session, layered: Script, changes: dict, field: str, message: str
) -> None:
    before = dict(layered.overrides)

    with pytest.raises(MetadataError) as caught:
        update_script_metadata(session, layered, {"category": "changed", **changes})

    assert caught.value.field == field
    assert message in caught.value.message
    assert layered.overrides == before


def test_edits_are_normalised(session: Session, layered: Script) -> None:
    update_script_metadata(
        session,
        layered,
        {
            "tags": " b, a ,b",
            "execution_timeout": "45",
            "parameters": [{"name": "n", "type": "integer", "default": "3"}],
            "display_name": {"en": "Shown", "fr": "Affiché"},
        },
    )

    assert layered.tags == "b,a"
    assert layered.execution_timeout == 45
    assert layered.parameters == [{"name": "n", "type": "int", "required": False, "default": 3}]
    assert layered.metadata_json["requires_parameters"] is False
    assert layered.display_name == "Shown"
    assert layered.overrides["display_name"] == {"en": "Shown", "fr": "Affiché"}


def test_localized_falls_back_to_english_then_any_language() -> None:
    texts = {"en": "Hello", "es": "Hola"}

    assert localized(texts, "es") == "Hola"
    assert localized(texts, "fr") == "Hello"
    assert localized({"it": "Ciao", "fr": "Salut"}, "es") == "Ciao"
    assert localized("Plain", "fr") == "Plain"
    assert localized({"en": ""}, "en", default="none") == "none"
    assert localized(None, "en") == ""


def test_normalize_localized() -> None:
    assert normalize_localized("f", " text ") == {"en": "text"}
    assert normalize_localized("f", {"es": "uno", "fr": " "}) == {"es": "uno"}
    with pytest.raises(MetadataError, match="f: it: must be text"):
        normalize_localized("f", {"it": 3})
    with pytest.raises(MetadataError, match="must be text or an object"):
        normalize_localized("f", ["en"])


def test_merge_layers_merges_objects_and_replaces_the_rest() -> None:
    merged, sources = merge_layers(
        {
            "group": {"limits": {"memory": "1g", "cpus": 1}, "tags": ["a"]},
            "header": {"limits": {"cpus": 2}, "tags": ["b"]},
        }
    )

    assert merged == {"limits": {"memory": "1g", "cpus": 2}, "tags": ["b"]}
    assert sources == {"limits": "header", "tags": "header"}
