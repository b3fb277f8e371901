"""Build the Flask configuration from the settings table."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from manager.db import engine_options
from manager.settings import ConfigError, load_settings

INSECURE_SECRETS = {"", "changeme", "change-me", "secret", "your-secret-key-change-in-production"}


def build_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the app's configuration; raise ConfigError when it is unsafe or unusable."""
    values = load_settings(environ)
    if overrides:
        values.update(overrides)
    for key in (
        "SM_DATA_DIR",
        "SM_LOG_DIR",
        "SM_BACKUP_DIR",
        "SM_SCRIPT_GROUPS_DIR",
        "SM_CONDA_ENVS_DIR",
    ):
        values[key] = str(Path(values[key]).resolve())
    if not values.get("SM_RUNNER_DIR"):
        values["SM_RUNNER_DIR"] = str(Path(__file__).resolve().parent.parent / "runner-image")
    if not values.get("SM_WHEELHOUSE_DIR"):
        values["SM_WHEELHOUSE_DIR"] = str(Path(values["SM_DATA_DIR"]) / "cache" / "wheelhouse")
    if not values.get("SQLALCHEMY_DATABASE_URI"):
        values["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{values['SM_DATA_DIR']}/scriptsmanager.db"
    values["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(values["SQLALCHEMY_DATABASE_URI"])

    secret = values.get("SECRET_KEY")
    if not secret or secret in INSECURE_SECRETS:
        if not (values.get("DEBUG") or values.get("TESTING")):
            raise ConfigError(
                "SECRET_KEY is not set (or is a well-known placeholder). Set SECRET_KEY to a long "
                "random value, e.g. `export SECRET_KEY=$(python -c 'import secrets; "
                "print(secrets.token_hex(32))')`, or run with SM_DEBUG=1 for development."
            )
        values["SECRET_KEY"] = secrets.token_hex(32)
        values["SM_SECRET_KEY_GENERATED"] = True
    if values.get("SM_DEFAULT_LANGUAGE") not in values["SM_SUPPORTED_LANGUAGES"]:
        raise ConfigError("SM_DEFAULT_LANGUAGE must be one of SM_SUPPORTED_LANGUAGES")

    if "SQLALCHEMY_ENGINE_OPTIONS" not in values:
        try:
            values["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                values["SQLALCHEMY_DATABASE_URI"], os.environ if environ is None else environ
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    values["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=values["SM_LOGIN_TIMEOUT_MINUTES"])
    values["SESSION_COOKIE_HTTPONLY"] = True
    values["SESSION_COOKIE_SAMESITE"] = "Lax"
    values["SESSION_COOKIE_NAME"] = "sm_session"
    values["REMEMBER_COOKIE_DURATION"] = timedelta(seconds=0)
    # CSRF is checked in our own before_request so that bearer-token requests can skip it.
    values["WTF_CSRF_CHECK_DEFAULT"] = False
    values["WTF_CSRF_TIME_LIMIT"] = None
    values["BOOTSTRAP_SERVE_LOCAL"] = True
    values["MAX_CONTENT_LENGTH"] = values.get("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
    values["JSON_SORT_KEYS"] = False
    return values


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
