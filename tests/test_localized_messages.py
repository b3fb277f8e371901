"""Server messages, categories and script names in the user's language, not English everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manager.catalog.schema import coerce_value, validate_parameter_values
from manager.i18n import catalog, category_label, localize_message
from tests.support.catalog import script_id

GROUPS = Path(__file__).resolve().parent.parent / "script_groups"
LANGUAGES = ("es", "it", "fr")

# One definition and value for each way a submitted parameter can be wrong.
WRONG = [
    ({"name": "n", "type": "int"}, "x"),
    ({"name": "n", "type": "float"}, "x"),
    ({"name": "n", "type": "bool"}, "maybe"),
    ({"name": "n", "type": "string"}, 5),
    ({"name": "n", "type": "string"}, "a\nb"),
    ({"name": "n", "type": "string"}, "a\x00"),
    ({"name": "n", "type": "string", "pattern": "[a-z]+"}, "123"),
    ({"name": "n", "type": "string", "max_length": 2}, "abc"),
    ({"name": "n", "type": "int", "min": 3}, 1),
    ({"name": "n", "type": "int", "max": 3}, 9),
    ({"name": "n", "type": "select", "options": ["mm", "in"]}, "ft"),
    ({"name": "n", "type": "date"}, "tomorrow"),
]


@pytest.mark.parametrize("definition, value", WRONG)
def test_every_parameter_error_has_a_translation(definition, value):
    with pytest.raises(ValueError) as caught:
        coerce_value(definition, value)
    english = str(caught.value)
    for language in LANGUAGES:
        assert localize_message(english, language) != english, (language, english)
    assert localize_message(english, "en") == english


def test_required_and_unknown_parameters_are_translated():
    _, errors = validate_parameter_values([{"name": "a", "type": "int", "required": True}],
                                          {"b": 1})  # fmt: skip
    assert localize_message(errors["a"], "es") == "es obligatorio"
    assert localize_message(errors["b"], "fr") == "n'est pas un paramètre de ce script"


def test_the_most_specific_message_wins_and_values_are_kept():
    assert localize_message("must be at most 5 characters", "es") == (
        "debe tener como máximo 5 caracteres"
    )
    assert localize_message("must be at most 5", "it") == "deve essere al massimo 5"
    assert localize_message("An unknown sentence.", "es") == "An unknown sentence."


def test_run_with_bad_parameters_answers_in_the_users_language(ready_app, make_user, api, fake):
    make_user("lucia", "operator", preferred_language="es")
    lucia = api("lucia")
    sid = script_id(ready_app, "csv_summary.py")
    bad = lucia.post(f"/api/scripts/{sid}/execute",
                     json={"parameters": {"delimiter": "pipe", "nonsense": 1}})  # fmt: skip
    assert bad.status_code == 400
    body = bad.get_json()
    assert body["message"].startswith("Algunos parámetros no son válidos: ")
    assert body["errors"]["nonsense"] == "no es un parámetro de este script"
    assert body["errors"]["delimiter"].startswith("debe ser uno de: ")
    assert not fake.started


def _shipped_categories() -> set[str]:
    found = set()
    for group in GROUPS.iterdir():
        if (group / "metadata.json").exists():
            found.add(json.loads((group / "metadata.json").read_text())["category"])
        for script in group.glob("[!_]*.py"):
            for line in script.read_text(encoding="utf-8").splitlines():
                if line.startswith("@category:"):
                    found.add(line.split(":", 1)[1].strip())
    return found


def test_every_shipped_category_has_a_name_in_every_language():
    categories = _shipped_categories()
    assert {"engineering", "maintenance", "data"} <= categories
    for language in ("en", *LANGUAGES):
        for category in categories:
            assert f"category.{category}" in catalog(language), (language, category)
    assert category_label("engineering", "es") == "Ingeniería"
    assert category_label("Made Up", "es") == "Made Up"  # unknown: as written


def test_every_shipped_script_has_a_name_in_every_language():
    for group in GROUPS.iterdir():
        scripts = {p.name for p in group.glob("[!_]*.py")}
        if not scripts:
            continue
        names = json.loads((group / "scripts" / "script_metadata.json").read_text())
        for script in scripts:
            shown = names[script]["display_name"]
            assert set(shown) == {"en", "es", "it", "fr"}, script
            assert len(set(shown.values())) > 1, f"{script}: the same name in every language"


def test_group_page_shows_names_and_categories_in_spanish(ready_app, make_user, api):
    make_user("lucia", "operator", preferred_language="es")
    lucia = api("lucia")
    from manager.extensions import db
    from manager.models import ScriptGroup

    with ready_app.app_context():
        group = db.session.query(ScriptGroup).filter_by(directory_path="engineering_tools").one()
        group_id = group.id
    page = lucia.get(f"/groups/{group_id}").get_data(as_text=True)
    assert "Calculadora" in page and "Demostración de progreso" in page
    assert "Ingeniería" in page
    dashboard = lucia.get("/").get_data(as_text=True)
    assert "Ingeniería" in dashboard and "Datos" in dashboard
