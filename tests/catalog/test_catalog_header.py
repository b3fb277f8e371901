"""The header block parser: fields, multi-line JSON, exact reasons, broken files."""

from __future__ import annotations

from pathlib import Path

from catalog_support import script_source

from manager.catalog.header import parse_header, read_header

SEED_HEADER = '''"""
ScriptsManager Metadata:
@description: Creates a complete system backup with compression options
@description_long: docs/backup_system.md
@description_es: Crea una copia de seguridad completa del sistema con opciones de compresión
@description_long_es: docs/backup_system_es.md
@description_it: Crea un backup completo del sistema con opzioni di compressione
@description_long_it: docs/backup_system_it.md
@description_fr: Crée une sauvegarde complète du système avec options de compression
@description_long_fr: docs/backup_system_fr.md
@required_level: admin
@category: backup
@tags: system,maintenance,storage
@parameters: [
{
"name": "destination",
"type": "path",
"required": true,
"description": "Backup destination directory"
},
{
"name": "compression",
"type": "select",
"options": ["none", "gzip", "bzip2"],
"default": "gzip"
}
]
@execution_timeout: 3600
@flask_port: auto
"""
# Your script code here...
'''


def test_the_seeds_example_header_is_read_completely() -> None:
    result = parse_header(SEED_HEADER)

    assert result.found
    assert result.errors == []
    assert result.warnings == []
    fields = result.fields
    assert fields["description"] == {
        "en": "Creates a complete system backup with compression options",
        "es": "Crea una copia de seguridad completa del sistema con opciones de compresión",
        "it": "Crea un backup completo del sistema con opzioni di compressione",
        "fr": "Crée une sauvegarde complète du système avec options de compression",
    }
    assert fields["description_long"] == {
        "en": "docs/backup_system.md",
        "es": "docs/backup_system_es.md",
        "it": "docs/backup_system_it.md",
        "fr": "docs/backup_system_fr.md",
    }
    assert fields["required_level"] == "admin"
    assert fields["category"] == "backup"
    assert fields["tags"] == ["system", "maintenance", "storage"]
    assert fields["execution_timeout"] == 3600
    assert fields["flask_port"] == "auto"
    destination, compression = fields["parameters"]
    assert destination["name"] == "destination"
    assert destination["type"] == "path"
    assert destination["required"] is True
    assert destination["description"] == {"en": "Backup destination directory"}
    assert compression["options"] == ["none", "gzip", "bzip2"]
    assert compression["default"] == "gzip"
    assert compression["required"] is False


def test_optional_keys_and_indented_continuation_lines() -> None:
    source = script_source(
        """
        @display_name: Nightly backup
        @display_name_es: Copia nocturna
        @description: A description that is long
            and continues on an indented line
        @proxy_enabled: false
        @requires_parameters: yes
        @flask_port: 5005
        @tags: a, b,, a , c
        """
    )

    result = parse_header(source)

    assert result.errors == []
    assert result.fields["display_name"] == {"en": "Nightly backup", "es": "Copia nocturna"}
    assert result.fields["description"] == {
        "en": "A description that is long and continues on an indented line"
    }
    assert result.fields["proxy_enabled"] is False
    assert result.fields["requires_parameters"] is True
    assert result.fields["flask_port"] == 5005
    assert result.fields["tags"] == ["a", "b", "c"]


def test_multi_line_parameters_stop_where_the_json_closes() -> None:
    source = script_source(
        """
        @parameters: [
            {"name": "steps", "type": "int", "min": 1, "max": 10, "default": 3,
             "label": {"en": "Steps", "es": "Pasos"}},
            {"name": "note", "type": "text",
             "description": "text with ] and } inside a string"}
        ]
        @execution_timeout: 60
        """
    )

    result = parse_header(source)

    assert result.errors == []
    steps, note = result.fields["parameters"]
    assert steps["label"] == {"en": "Steps", "es": "Pasos"}
    assert steps["default"] == 3
    assert note["description"] == {"en": "text with ] and } inside a string"}
    assert result.fields["execution_timeout"] == 60


def test_json_starting_on_the_line_after_the_key() -> None:
    source = script_source(
        """
        @parameters:
        [{"name": "flag", "type": "bool"}]
        @category: tools
        """
    )

    result = parse_header(source)

    assert result.errors == []
    assert result.fields["parameters"][0]["type"] == "bool"
    assert result.fields["category"] == "tools"


def test_broken_parameters_json_gives_the_exact_reason() -> None:
    source = script_source(
        """
        @description: Broken parameters
        @required_level: operator
        @category: test
        @tags: a
        @parameters: [
          {"name": "a", "type": "int"}
            {"name": "b"}
        ]
        @execution_timeout: 30
        """
    )

    result = parse_header(source)

    assert result.errors == [
        "line 7: @parameters is not valid JSON: Expecting ',' delimiter (line 3 column 5)"
    ]
    assert "parameters" not in result.fields
    # The rest of the header still counts.
    assert result.fields["description"] == {"en": "Broken parameters"}
    assert result.fields["execution_timeout"] == 30


def test_unclosed_json_stops_at_the_next_key() -> None:
    source = script_source(
        """
        @parameters: [
          {"name": "a", "type": "int"}
        @execution_timeout: 30
        """
    )

    result = parse_header(source)

    assert len(result.errors) == 1
    assert result.errors[0].startswith("line 3: @parameters is not valid JSON: ")
    assert result.fields["execution_timeout"] == 30


def test_unknown_level_type_and_bad_values_have_exact_reasons() -> None:
    source = script_source(
        """
        @required_level: superuser
        @parameters: [{"name": "mode", "type": "dropdown"}]
        @execution_timeout: soon
        @flask_port: maybe
        """
    )

    result = parse_header(source)

    assert result.errors == [
        "line 3: @required_level: unknown level 'superuser' "
        "(expected one of viewer, operator, developer, admin)",
        "line 4: @parameters: parameter 'mode': unknown type 'dropdown' (expected one of "
        "string, text, int, float, bool, select, multiselect, date, path, secret, file)",
        "line 5: @execution_timeout: must be a whole number of at least 1, got 'soon'",
        "line 6: @flask_port: must be 'auto' or a port number, got 'maybe'",
    ]
    assert result.rejected == {"required_level", "parameters", "execution_timeout", "flask_port"}


def test_unknown_keys_and_repeats_are_warnings() -> None:
    source = script_source(
        """
        @category: one
        @category: two
        @author: someone
        @description_de: Beschreibung
        """
    )

    result = parse_header(source)

    assert result.errors == []
    assert result.fields["category"] == "two"
    assert result.warnings == [
        "line 4: @category is given twice; the later value is used",
        "line 5: unknown key @author ignored",
        "line 6: unknown key @description_de ignored",
    ]


def test_a_file_with_a_syntax_error_is_reported_and_its_header_still_read() -> None:
    source = script_source(
        """
        @description: Half written
        @required_level: developer
        """,
        body="def broken(:\n    pass\n",
    )

    result = parse_header(source)

    assert result.syntax_error is not None
    assert result.syntax_error.startswith("line 7: ")
    assert result.errors[0] == f"syntax error: {result.syntax_error}"
    assert result.fields["description"] == {"en": "Half written"}
    assert result.fields["required_level"] == "developer"


def test_text_scan_finds_a_single_quoted_docstring_after_comments() -> None:
    source = (
        "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"
        "'''\nScriptsManager Metadata:\n@category: scan\n@required_level: admin\n'''\n"
        "x = = 1\n"
    )

    result = parse_header(source)

    assert result.fields == {"category": "scan", "required_level": "admin"}
    assert result.syntax_error is not None


def test_without_a_header_block_defaults_apply() -> None:
    result = parse_header('"""Just a module docstring."""\nprint(1)\n')

    assert not result.found
    assert result.fields == {}
    assert result.errors == []
    assert result.warnings == ["no 'ScriptsManager Metadata:' header; defaults are used"]


def test_route_registration_is_detected() -> None:
    interactive = script_source(
        "@category: web",
        body="""
        @app.route("/")
        def index():
            return "hi"

        app.add_url_rule("/x", view_func=index)
        """,
    )
    batch = script_source("@category: batch", body="print(PARAMETERS)\n")

    assert parse_header(interactive).registers_routes
    assert not parse_header(batch).registers_routes


def test_read_header_reports_files_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes(b'"""\nScriptsManager Metadata:\n@description: caf\xe9\n"""\n')

    result = read_header(path)

    assert result.errors == ["file is not valid UTF-8: invalid continuation byte at byte 46"]


def test_read_header_of_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = read_header(tmp_path / "gone.py")

    assert result.errors == ["cannot read the file: No such file or directory"]
