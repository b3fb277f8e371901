"""Shared fixtures: an app on a freshly migrated database (SQLite, or PostgreSQL via DATABASE_URL).

Set DATABASE_URL to a PostgreSQL database whose name contains "test" to run the whole suite on
PostgreSQL; the suite empties that database. SM_TEST_POSTGRES_URL serves tests marked ``postgres``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from manager.config import normalise_database_url
from manager.sessions.fake import FakeBackend, FakeScript
from tests.support.localnames import resolve_localhost_names

REPO = Path(__file__).resolve().parent.parent
TEST_PASSWORD = "password123"


resolve_localhost_names()


def _require(kind: str) -> bool:
    return os.environ.get(f"REQUIRE_{kind.upper()}") == "1"


def missing(kind: str, reason: str) -> None:
    """Skip with ``reason``, or fail when CI says the thing must be there."""
    if _require(kind):
        pytest.fail(f"{kind} is required (REQUIRE_{kind.upper()}=1) but {reason}")
    pytest.skip(reason)


def reset_database(url: str) -> None:
    """Empty a throwaway database; refuses any database whose name lacks 'test'."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists():
            path.unlink()
        return
    name = url.rsplit("/", 1)[-1].split("?")[0]
    if "test" not in name:
        raise RuntimeError(f"refusing to empty database {name!r}: its name must contain 'test'")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from manager.db import upgrade

    url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db')}/scriptsmanager-test.db"
    )
    url = normalise_database_url(url)
    reset_database(url)
    upgrade(url)
    return url


def _empty_tables(app) -> None:
    from manager.extensions import Base, db

    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def groups_dir(tmp_path: Path) -> Path:
    """A copy of the shipped example groups, so tests may change files freely."""
    target = tmp_path / "script_groups"
    shutil.copytree(REPO / "script_groups", target)
    return target


@pytest.fixture
def app_config(tmp_path: Path, database_url: str, groups_dir: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SM_DATA_DIR": str(tmp_path / "data"),
        "SM_LOG_DIR": str(tmp_path / "logs"),
        "SM_BACKUP_DIR": str(tmp_path / "backup"),
        "SM_SCRIPT_GROUPS_DIR": str(groups_dir),
        "SM_CONDA_ENVS_DIR": str(REPO / "conda-envs"),
        "SM_WATCH_SCRIPTS": False,
        # Unit tests run sessions on the in-memory FakeBackend; Docker tests bring their own.
        "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
        "SM_TEST_BACKEND": FakeBackend(),
        "SM_PROXY_START_WAIT": 0.2,
    }


@pytest.fixture
def app(app_config: dict) -> Iterator:
    from manager import create_app
    from manager.extensions import db

    application = create_app(app_config)
    _empty_tables(application)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    from manager.auth.service import create_user
    from manager.extensions import db

    def make(username: str, level: str = "operator", password: str = TEST_PASSWORD, **extra):
        with app.app_context():
            user = create_user(
                db.session,
                {"username": username, "password": password, "user_level": level, **extra},
            )
            db.session.commit()
            return user.id

    return make


class ApiClient:
    """A test client logged in through the JSON API that sends the CSRF header."""

    def __init__(self, client) -> None:
        self.client = client
        self.token: str | None = None

    def login(self, username: str, password: str = TEST_PASSWORD):
        response = self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        self.token = self.client.get("/api/auth/csrf").get_json()["csrf_token"]
        return response

    def _headers(self, headers: dict | None) -> dict:
        merged = dict(headers or {})
        if self.token:
            merged.setdefault("X-CSRFToken", self.token)
        return merged

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, headers: dict | None = None, **kwargs):
        return self.client.post(url, headers=self._headers(headers), **kwargs)

    def put(self, url: str, headers: dict | None = None, **kwargs):
        return self.client.put(url, headers=self._headers(headers), **kwargs)

    def delete(self, url: str, headers: dict | None = None, **kwargs):
        return self.client.delete(url, headers=self._headers(headers), **kwargs)


@pytest.fixture
def api(app):
    """Factory: ``api("alice")`` gives an ApiClient logged in as alice."""

    def make(username: str | None = None, password: str = TEST_PASSWORD) -> ApiClient:
        wrapper = ApiClient(app.test_client())
        if username:
            response = wrapper.login(username, password)
            assert response.status_code == 200, response.get_json()
        return wrapper

    return make


@pytest.fixture
def fake(app_config) -> FakeBackend:
    """The app's engine: a FakeBackend whose runs print two lines and succeed."""
    backend = FakeBackend(FakeScript(output=("hello", ("stderr", "warn")), exit_code=0))
    app_config["SM_TEST_BACKEND"] = backend
    return backend


@pytest.fixture
def ready_app(fake, app):
    """The app with the example catalog discovered; the fake answers health checks."""
    from manager.catalog_app import run_discovery

    run_discovery(app)
    app.extensions["sm_sessions"].monitor.health_check = lambda host, port: True
    return app
