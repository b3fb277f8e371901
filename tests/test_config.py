"""Configuration: environment, seed aliases, JSON file, and refusal of unsafe defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from manager.config import build_config
from manager.settings import SETTINGS, ConfigError, load_settings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_match_the_seed():
    values = load_settings({})
    assert values["SM_PORT"] == 5002
    assert values["SM_SESSION_TIMEOUT"] == 1800
    assert values["SM_MAX_CONCURRENT_SESSIONS"] == 20
    assert values["SM_MAX_SESSIONS_PER_USER"] == 5
    assert values["SM_MAX_PROJECTS_PER_USER"] == 50
    assert values["SM_BACKUP_SCHEDULE_TIME"] == "02:00"
    assert values["SM_DEFAULT_PROJECT_NAME"] == "project_default"
    assert values["SM_RETENTION_DAYS_VIEWER"] == 7
    assert values["SM_RETENTION_DAYS_ADMIN"] == 365


def test_environment_then_alias_then_json_file(tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text(
        json.dumps(
            {
                "proxy_system": {"max_sessions_per_user": 9, "session_timeout": 60},
                "tagging": {"max_tag_length": 12},
            }
        )
    )
    values = load_settings(
        {
            "SM_CONFIG_FILE": str(config_file),
            "SM_SESSION_TIMEOUT": "120",  # env beats the file
            "MAX_PROJECTS_PER_USER": "7",  # the seed's name still works
        }
    )
    assert values["SM_SESSION_TIMEOUT"] == 120
    assert values["SM_MAX_SESSIONS_PER_USER"] == 9
    assert values["SM_MAX_TAG_LENGTH"] == 12
    assert values["SM_MAX_PROJECTS_PER_USER"] == 7


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"SM_PORT": "abc"}, "SM_PORT"),
        ({"SM_AUTO_BACKUP": "maybe"}, "SM_AUTO_BACKUP"),
        ({"SM_CONFIG_FILE": "/nonexistent/config.json"}, "SM_CONFIG_FILE"),
    ],
)
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(env)


def test_secret_key_is_required_outside_debug():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config({})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config({"SECRET_KEY": "your-secret-key-change-in-production"})
    debug = build_config({"SM_DEBUG": "1"})
    assert len(debug["SECRET_KEY"]) >= 32
    assert build_config({"SECRET_KEY": "x" * 40})["SECRET_KEY"] == "x" * 40


def test_serve_refuses_to_start_without_secret_key(monkeypatch, capsys, tmp_path):
    from manager.cli import main

    monkeypatch.setenv("SM_DATA_DIR", str(tmp_path))  # no .secret_key from `make run` there
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SM_DEBUG", raising=False)
    monkeypatch.delenv("DEBUG", raising=False)
    assert main(["init-db"]) == 2
    assert "SECRET_KEY" in capsys.readouterr().err


def test_default_database_is_sqlite_under_the_data_dir(tmp_path):
    values = build_config({"SECRET_KEY": "k" * 40, "SM_DATA_DIR": str(tmp_path)})
    assert values["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/scriptsmanager.db"
    pg = build_config({"SECRET_KEY": "k" * 40, "DATABASE_URL": "postgresql://u:p@h/db"})
    assert pg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@h/db"


def test_readme_lists_every_variable():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([A-Z_]+)`", readme, flags=re.MULTILINE))
    missing = {s.env for s in SETTINGS} - listed
    assert not missing, f"README.md's configuration table lacks {sorted(missing)}"
