"""Parameter definitions and the values submitted for them, type by type."""

from __future__ import annotations

from typing import Any

import pytest

from manager.catalog.schema import (
    mask_secrets,
    validate_parameter_definitions,
    validate_parameter_values,
)

EVERY_TYPE: list[dict[str, Any]] = [
    {"name": "title", "type": "string", "default": "Report", "max_length": 10},
    {"name": "notes", "type": "text"},
    {"name": "count", "type": "int", "min": 1, "max": 10, "default": 3},
    {"name": "ratio", "type": "float", "min": 0.5, "max": 2.5},
    {"name": "verbose", "type": "bool"},
    {"name": "mode", "type": "select", "options": ["fast", "slow"], "default": "fast"},
    {"name": "stats", "type": "multiselect", "options": ["mean", "max", "min"]},
    {"name": "since", "type": "date", "min": "2024-01-01"},
    {"name": "source", "type": "path", "required": True},
    {"name": "token", "type": "secret"},
]


def definitions() -> list[dict[str, Any]]:
    valid, errors = validate_parameter_definitions(EVERY_TYPE)
    assert errors == []
    return valid


def test_every_type_is_accepted_and_normalised() -> None:
    valid, errors = validate_parameter_definitions(
        EVERY_TYPE
        + [
            {
                "name": "lang",
                "type": "string",
                "description": {"en": "Language", "es": "Idioma"},
                "display_name": "Shown label",
                "step": 2,
            }
        ]
    )

    assert errors == []
    assert [d["type"] for d in valid][:10] == [
        "string", "text", "int", "float", "bool", "select", "multiselect", "date", "path", "secret",
    ]  # fmt: skip
    assert all(isinstance(d["required"], bool) for d in valid)
    extra = valid[-1]
    assert extra["description"] == {"en": "Language", "es": "Idioma"}
    assert extra["label"] == {"en": "Shown label"}
    assert extra["step"] == 2  # unknown keys are kept for the form
    assert "display_name" not in extra


def test_type_aliases_are_normalised() -> None:
    valid, errors = validate_parameter_definitions(
        [{"name": "a", "type": "integer"}, {"name": "b", "type": "Boolean"}, {"name": "c"}]
    )

    assert errors == []
    assert [d["type"] for d in valid] == ["int", "bool", "string"]


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        ({"type": "int"}, "parameter #1: 'name' is required"),
        ({"name": "2fast"}, "parameter '2fast': name must start with a letter or '_'"),
        ({"name": "a b"}, "parameter 'a b': name must start with a letter or '_'"),
        (
            {"name": "x", "type": "dropdown"},
            "parameter 'x': unknown type 'dropdown' (expected one of string, text, int, "
            "float, bool, select, multiselect, date, path, secret, file)",
        ),
        ({"name": "x", "type": "select"}, "parameter 'x': a select needs a non-empty 'options'"),
        ({"name": "x", "type": "multiselect", "options": []}, "a multiselect needs a non-empty"),
        ({"name": "x", "type": "select", "options": ["a", "a"]}, "option 'a' appears twice"),
        ({"name": "x", "type": "select", "options": [{"v": 1}]}, "must be text or a number"),
        ({"name": "x", "type": "int", "options": ["a"]}, "'options' only applies to select"),
        ({"name": "x", "type": "int", "min": 5, "max": 1}, "'min' is greater than 'max'"),
        ({"name": "x", "type": "int", "min": 1.5}, "'min' must be a whole number"),
        ({"name": "x", "type": "float", "max": "big"}, "'max' must be a number"),
        ({"name": "x", "type": "string", "min": 1}, "'min' and 'max' only apply to int"),
        ({"name": "x", "type": "date", "min": "01/02/2024"}, "'min' must be a date as YYYY"),
        ({"name": "x", "type": "int", "default": 11, "max": 10}, "default 11 must be at most 10"),
        ({"name": "x", "type": "int", "default": "many"}, "default 'many' must be a whole"),
        ({"name": "x", "type": "float", "default": 0.1, "min": 1}, "must be at least 1"),
        ({"name": "x", "type": "bool", "default": "maybe"}, "must be true or false"),
        ({"name": "x", "type": "select", "options": ["a"], "default": "b"}, "must be one of: a"),
        (
            {"name": "x", "type": "multiselect", "options": ["a", "b"], "default": ["a", "z"]},
            "must be one of: a, b",
        ),
        ({"name": "x", "type": "date", "default": "2024-02-30"}, "must be a date as YYYY-MM-DD"),
        ({"name": "x", "type": "secret", "default": "hunter2"}, "a secret cannot have a default"),
        ({"name": "x", "required": "yes"}, "'required' must be true or false"),
        ({"name": "x", "description": {"de": "Text"}}, "unknown language 'de'"),
        ({"name": "x", "type": "string", "pattern": "("}, "'pattern' is not a valid regular"),
        ({"name": "x", "type": "int", "max_length": 3}, "'max_length' only applies"),
        ({"name": "x", "type": "string", "default": "a" * 5, "max_length": 3}, "at most 3 char"),
    ],
)
def test_bad_definitions_have_exact_reasons(definition: dict[str, Any], reason: str) -> None:
    valid, errors = validate_parameter_definitions([definition])

    assert valid == []
    assert len(errors) == 1
    assert reason in errors[0]


def test_duplicate_names_and_non_objects_are_reported_but_the_rest_is_kept() -> None:
    valid, errors = validate_parameter_definitions(
        [{"name": "a"}, {"name": "a"}, "b", {"name": "c", "type": "int"}]
    )

    assert [d["name"] for d in valid] == ["a", "c"]
    assert errors == ["parameter 'a': name is used twice", "parameter #3: must be an object"]


def test_a_non_list_is_rejected() -> None:
    assert validate_parameter_definitions({"name": "a"}) == (
        [],
        ["must be a list of parameter objects"],
    )
    assert validate_parameter_definitions(None) == ([], [])


def test_form_strings_are_converted_to_their_types() -> None:
    clean, errors = validate_parameter_values(
        definitions(),
        {
            "title": "  Weekly ",
            "notes": "line one\nline two",
            "count": "7",
            "ratio": "1,5",
            "verbose": "on",
            "mode": "slow",
            "stats": ["max", "mean", "max"],
            "since": "2024-03-01",
            "source": "data/in.csv",
            "token": " s3cret ",
        },
    )

    assert errors == {}
    assert clean == {
        "title": "Weekly",
        "notes": "line one\nline two",
        "count": 7,
        "ratio": 1.5,
        "verbose": True,
        "mode": "slow",
        "stats": ["max", "mean"],
        "since": "2024-03-01",
        "source": "data/in.csv",
        "token": " s3cret ",
    }


def test_json_values_are_accepted_as_they_are() -> None:
    clean, errors = validate_parameter_values(
        definitions(),
        {"count": 4.0, "ratio": 2, "verbose": False, "stats": "mean,min", "source": "x"},
    )

    assert errors == {}
    assert clean["count"] == 4 and isinstance(clean["count"], int)
    assert clean["ratio"] == 2.0 and isinstance(clean["ratio"], float)
    assert clean["verbose"] is False
    assert clean["stats"] == ["mean", "min"]


def test_missing_values_take_defaults_and_required_ones_are_errors() -> None:
    clean, errors = validate_parameter_values(definitions(), {"notes": "", "stats": []})

    assert errors == {"source": "is required"}
    assert clean == {"title": "Report", "count": 3, "verbose": False, "mode": "fast"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "a" * 11, "must be at most 10 characters"),
        ("title", "two\nlines", "must be a single line"),
        ("title", 12, "must be text"),
        ("count", "3.5", "must be a whole number"),
        ("count", True, "must be a whole number"),
        ("count", "0", "must be at least 1"),
        ("count", 11, "must be at most 10"),
        ("ratio", "abc", "must be a number"),
        ("ratio", "nan", "must be a number"),
        ("ratio", "0.4", "must be at least 0.5"),
        ("ratio", 3, "must be at most 2.5"),
        ("verbose", "perhaps", "must be true or false"),
        ("verbose", 2, "must be true or false"),
        ("mode", "medium", "must be one of: fast, slow"),
        ("stats", ["mean", "avg"], "must be one of: mean, max, min"),
        ("since", "2023-12-31", "must be at least 2024-01-01"),
        ("since", "tomorrow", "must be a date as YYYY-MM-DD"),
        ("source", "a\x00b", "must not contain NUL characters"),
        ("unknown", "x", "is not a parameter of this script"),
    ],
)
def test_bad_values_give_a_message_per_field(field: str, value: Any, message: str) -> None:
    _clean, errors = validate_parameter_values(definitions(), {"source": "in.csv", field: value})

    assert errors == {field: message}


def test_unknown_values_may_be_allowed() -> None:
    clean, errors = validate_parameter_values(
        definitions(), {"source": "x", "csrf_token": "abc"}, allow_unknown=True
    )

    assert errors == {}
    assert "csrf_token" not in clean


def test_pattern_is_checked_on_strings() -> None:
    valid, _ = validate_parameter_definitions(
        [{"name": "code", "type": "string", "pattern": "[A-Z]{3}-\\d+"}]
    )

    assert validate_parameter_values(valid, {"code": "ABC-12"}) == ({"code": "ABC-12"}, {})
    assert validate_parameter_values(valid, {"code": "abc"})[1] == {
        "code": "does not match the expected format [A-Z]{3}-\\d+"
    }


def test_numeric_select_options_match_form_strings() -> None:
    valid, _ = validate_parameter_definitions(
        [{"name": "size", "type": "select", "options": [8, 16, 32]}]
    )

    assert validate_parameter_values(valid, {"size": "16"}) == ({"size": 16}, {})


def test_secrets_are_masked_for_logs() -> None:
    masked = mask_secrets(definitions(), {"token": "s3cret", "title": "Report"})

    assert masked == {"token": "********", "title": "Report"}
