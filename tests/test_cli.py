"""The ``scriptsmanager`` command as a person runs it: a separate process, next to ``make run``."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from manager.cli import stored_secret_key
from manager.config import normalise_database_url
from tests.conftest import missing, reset_database

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "manager.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _clean_env(data_dir: Path) -> dict[str, str]:
    """The environment of a shell where `make run` ran: no SECRET_KEY exported, no debug."""
    dropped = {"SECRET_KEY", "DEBUG", "DATABASE_URL"}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SM_") and key not in dropped}  # fmt: skip
    env["SM_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(REPO)
    return env


def test_create_admin_and_token_use_the_key_make_run_made(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _clean_env(data)
    refused = _cli("create-admin", "--username", "root2", "--password", "x", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "SECRET_KEY is not set" in refused.stderr and ".secret_key" in refused.stderr

    data.mkdir()  # what the Makefile's $(DATA_DIR)/.secret_key rule writes
    (data / ".secret_key").write_text(secrets.token_hex(32) + "\n")
    password = "Correct-Horse-42-battery"
    created = _cli("create-admin", "--username", "root2", "--password", password,
                   cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "Admin 'root2' created." in created.stdout

    token = _cli("create-token", "root2", "--name", "ci", cwd=tmp_path, env=env)
    assert token.returncode == 0, token.stderr
    plain = token.stdout.strip()
    assert len(plain) > 30 and "\n" not in plain
    with sqlite3.connect(data / "scriptsmanager.db") as db:
        [(level,)] = db.execute("SELECT user_level FROM users WHERE username = 'root2'")
        [(name,)] = db.execute("SELECT name FROM api_tokens")
    assert (level, name) == ("admin", "ci")


def test_an_exported_secret_key_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / ".secret_key").write_text("from-the-file\n")
    environ = {"SM_DATA_DIR": str(tmp_path)}
    assert stored_secret_key(environ) == "from-the-file"
    assert stored_secret_key({**environ, "SECRET_KEY": "exported"}) is None
    assert stored_secret_key({"SM_DATA_DIR": str(tmp_path / "nowhere")}) is None


def test_api_prints_the_reference(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".secret_key").write_text(secrets.token_hex(32))
    result = _cli("api", cwd=tmp_path, env=_clean_env(data))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.split()[1].startswith("/api/") for line in lines)
    execute = next(line for line in lines if "/api/scripts/<int:script_id>/execute" in line)
    assert execute.startswith("POST")
    assert any("/api/logs/search" in line and "Full-text search" in line for line in lines)


@pytest.mark.postgres
def test_the_commands_on_postgresql_as_the_readme_shows(tmp_path: Path) -> None:
    """README "PostgreSQL": DATABASE_URL, init-db (migrations), then create-admin/create-token."""
    url = os.environ.get("SM_TEST_POSTGRES_URL")
    if not url:
        missing("postgres", "SM_TEST_POSTGRES_URL is not set")
    try:
        reset_database(url)
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not available"
        missing("postgres", f"cannot use {url.split('@')[-1]}: {exc}")
    data = tmp_path / "data"
    data.mkdir()
    (data / ".secret_key").write_text(secrets.token_hex(32))
    env = {**_clean_env(data), "DATABASE_URL": url}
    ready = _cli("init-db", cwd=tmp_path, env=env)
    assert ready.returncode == 0 and "Database ready" in ready.stdout, ready.stderr
    created = _cli("create-admin", "--username", "pgadmin", "--password", "Correct-Horse-42-pg",
                   cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = _cli("create-token", "pgadmin", cwd=tmp_path, env=env)
    assert token.returncode == 0 and token.stdout.strip(), token.stderr
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        level = conn.execute(text("SELECT user_level FROM users WHERE username = 'pgadmin'"))
        assert level.scalar_one() == "admin"
    engine.dispose()
    reset_database(url)
