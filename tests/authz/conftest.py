"""The authorization matrix's world: one app a module, two users a level, one object of each
kind a user (runs, sessions, projects, files, presets, log presets, schedules, tokens).

Objects are made through the API, as their owners would make them. Rows that change or delete
an object get fresh ones (``World.fresh``), so the order of the rows does not matter.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from manager.sessions.backend import LABEL_SCRIPT
from manager.sessions.fake import FakeBackend, FakeScript
from tests.conftest import REPO, TEST_PASSWORD, ApiClient, _empty_tables

LEVELS = ("viewer", "operator", "developer", "admin")
INTERACTIVE = ("calculator.py", "shift_notes.py")
BATCH_SCRIPT = "unit_converter.py"  # data_processing, operator level
SESSION_SCRIPT = "calculator.py"  # engineering_tools, operator level
SCHEDULE_SCRIPT = "progress_demo.py"
DATA_GROUP = "data_processing"
ADMIN_GROUP = "system_admin"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def quick_hash(password: str) -> str:
    """bcrypt at its lowest cost: the same checks on login, without seconds of hashing."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=4)).decode("ascii")


class Program:
    """Interactive examples serve until stopped; the others print a line and succeed."""

    def __init__(self) -> None:
        self.interactive_ids: set[str] = set()

    def __call__(self, spec: Any) -> FakeScript:
        if spec.labels[LABEL_SCRIPT] in self.interactive_ids:
            return FakeScript(output=("serving",), exit_code=None)
        return FakeScript(output=("hello", ("stderr", "warn")), exit_code=0)


@dataclass
class World:
    """Who is who, and what each of them owns."""

    app: Any
    users: dict[str, int] = field(default_factory=dict)  # name -> id
    clients: dict[str, ApiClient] = field(default_factory=dict)
    scripts: dict[str, int] = field(default_factory=dict)  # filename -> id
    groups: dict[str, int] = field(default_factory=dict)  # folder name -> id
    objects: dict[tuple[str, str], Any] = field(default_factory=dict)  # (kind, owner) -> id
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    names: dict[tuple[str, Any], str] = field(default_factory=dict)  # (kind, id) -> its name

    def client(self, name: str | None) -> ApiClient:
        """The logged-in client of ``name`` (None: an anonymous one, new each time)."""
        if name is None:  # with a CSRF token, so the cell is about logging in, not CSRF
            anonymous = ApiClient(self.app.test_client())
            anonymous.token = anonymous.get("/api/auth/csrf").get_json()["csrf_token"]
            return anonymous
        return self.clients[name]

    def login(self, name: str) -> ApiClient:
        client = ApiClient(self.app.test_client())
        answer = client.login(name, TEST_PASSWORD)
        assert answer.status_code == 200, answer.get_json()
        return client

    def add_user(self, name: str, level: str, login: bool = True) -> int:
        from manager.auth.service import create_user
        from manager.extensions import db

        with self.app.app_context():
            user = create_user(
                db.session, {"username": name, "password": TEST_PASSWORD, "user_level": level}
            )
            db.session.commit()
            self.users[name] = user.id
        if login:
            self.clients[name] = self.login(name)
        return self.users[name]

    def get(self, kind: str, owner: str) -> Any:
        """The module's object of ``kind`` owned by ``owner`` (made on first use)."""
        key = (kind, owner)
        if key not in self.objects:
            self.objects[key] = self.fresh(kind, owner)
        return self.objects[key]

    def can_own(self, kind: str, level: str) -> bool:
        """Can a user of ``level`` make an object of ``kind`` (a viewer runs nothing)?"""
        key = ("can own " + kind, level)
        if key not in self.objects:
            try:
                self.get(kind, level)
                self.objects[key] = True
            except AssertionError:
                self.objects[key] = False
        return bool(self.objects[key])

    def fresh(self, kind: str, owner: str) -> Any:
        """A new object of ``kind`` owned by ``owner``; its id (a path for files)."""
        maker = getattr(self, f"_make_{kind}")
        return maker(owner)

    # ------------------------------------------------------------------ makers

    def _ok(self, answer: Any, *codes: int) -> dict[str, Any]:
        assert answer.status_code in (codes or (200, 201)), (answer.status_code, answer.data)
        body: dict[str, Any] = answer.get_json()
        return body

    def project_of(self, owner: str) -> int:
        body = self._ok(self.client(owner).get("/api/projects/active"))
        return int(body["project"]["id"])

    def _make_project(self, owner: str) -> int:
        name = f"authz-project-{next(self.counter)}"
        body = self._ok(self.client(owner).post("/api/projects", json={"name": name}))
        self.names[("project", int(body["project"]["id"]))] = name
        return int(body["project"]["id"])

    def _make_run(self, owner: str) -> str:
        url = f"/api/scripts/{self.scripts[BATCH_SCRIPT]}/execute"
        body = self._ok(self.client(owner).post(url, json={"parameters": {}}))
        return str(body["execution_id"])

    def _make_session(self, owner: str) -> str:
        # One interactive session a (script, project): a fresh project gives a fresh session.
        project = self._make_project(owner)
        url = f"/api/scripts/{self.scripts[SESSION_SCRIPT]}/proxy-access"
        body = self._ok(self.client(owner).post(url, json={"project_id": project}))
        return str(body["execution_id"])

    def _make_file(self, owner: str) -> str:
        path = f"authz/file{next(self.counter)}.txt"
        url = f"/api/data/{self.groups[DATA_GROUP]}/{self.project_of(owner)}/{path}"
        self._ok(self.client(owner).post(url, data=b"secret of " + owner.encode(),
                                         content_type="text/plain"))  # fmt: skip
        return path

    def _make_preset(self, owner: str) -> int:
        url = f"/api/scripts/{self.scripts[BATCH_SCRIPT]}/presets"
        name = f"preset {next(self.counter)}"
        body = self._ok(self.client(owner).post(url, json={"name": name, "parameters": {}}))
        self.names[("preset", int(body.get("id") or body["preset"]["id"]))] = name
        return int(body.get("id") or body["preset"]["id"])

    def _make_log_preset(self, owner: str) -> int:
        name = f"log preset {next(self.counter)}"
        body = self._ok(
            self.client(owner).post(
                "/api/logs/presets", json={"name": name, "filters": {"status": "failed"}}
            )
        )
        self.names[("log_preset", int(body.get("id") or body["preset"]["id"]))] = name
        return int(body.get("id") or body["preset"]["id"])

    def _make_schedule(self, owner: str) -> int:
        body = {
            "name": f"schedule {next(self.counter)}",
            "script_id": self.scripts[SCHEDULE_SCRIPT],
            "project_id": self.project_of(owner),
            "cron": "30 6 * * 1-5",
            "timezone": "UTC",
            "parameters": {"steps": 2, "delay": 0},
        }
        answer = self._ok(self.client(owner).post("/api/schedules", json=body))
        self.names[("schedule", int(answer["id"]))] = body["name"]
        return int(answer["id"])

    def _make_share(self, owner: str) -> int:
        return int(self._share(owner)["id"])

    def _make_share_token(self, owner: str) -> str:
        return str(self._share(owner)["token"])

    def _share(self, owner: str) -> dict[str, Any]:
        url = f"/api/logs/execution/{self.get('run', owner)}/shares"
        return self._ok(self.client(owner).post(url, json={"expires_in_days": 7}))

    def _make_token(self, owner: str) -> int:
        body = self._ok(self.client(owner).post("/api/user/tokens", json={"name": "authz"}))
        return int(body["id"])

    def _make_user(self, owner: str) -> int:
        """A throwaway user for the admin routes that change or end one."""
        return self.add_user(f"target{next(self.counter)}", "operator", login=False)

    def _make_history(self, owner: str) -> int:
        """An edit of the batch script's long description; the id of its history event."""
        sid = self.scripts[BATCH_SCRIPT]
        client = self.client("developer")
        text = f"Edited for the authorization tests ({next(self.counter)})."
        self._ok(client.put(f"/api/scripts/{sid}/description-long", json={"markdown": text}))
        events = self._ok(client.get(f"/api/scripts/{sid}/history"))
        return int(events["history"][0]["id"])


def build_world(tmp: Path, database_url: str) -> Iterator[World]:
    from manager import create_app
    from manager.catalog_app import run_discovery
    from manager.extensions import db
    from manager.models import Script

    program = Program()
    groups_dir = tmp / "script_groups"
    shutil.copytree(REPO / "script_groups", groups_dir)
    for group in (DATA_GROUP, ADMIN_GROUP, "engineering_tools"):
        (groups_dir / group / "docs" / "authz.png").write_bytes(PNG)
        meta = groups_dir / group / "metadata.json"
        settings = json.loads(meta.read_text())
        settings["limits"]["max_sessions_per_user"] = 100  # the runs of the matrix stay live
        meta.write_text(json.dumps(settings))
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SM_DATA_DIR": str(tmp / "data"),
        "SM_LOG_DIR": str(tmp / "logs"),
        "SM_BACKUP_DIR": str(tmp / "backup"),
        "SM_SCRIPT_GROUPS_DIR": str(groups_dir),
        "SM_CONDA_ENVS_DIR": str(REPO / "conda-envs"),
        "SM_WATCH_SCRIPTS": False,
        "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
        "SM_TEST_BACKEND": FakeBackend(program),
        "SM_PROXY_START_WAIT": 0.2,
        "SM_MAX_SESSIONS_PER_USER": 500,
        "SM_MAX_CONCURRENT_SESSIONS": 1000,
        "SM_MAX_PROJECTS_PER_USER": 500,
        "RATELIMIT_ENABLED": False,
    }
    app = create_app(config)
    _empty_tables(app)
    run_discovery(app)
    app.extensions["sm_sessions"].monitor.health_check = lambda host, port: True
    world = World(app)
    for level in LEVELS:
        world.add_user(level, level)
        world.add_user(f"{level}2", level)  # another user of the same level
    with app.app_context():
        for script in db.session.query(Script).all():
            world.scripts[script.filename] = script.id
            world.groups[Path(script.group.directory_path).name] = script.group_id
            if script.filename in INTERACTIVE:
                program.interactive_ids.add(str(script.id))
    yield world
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("manager.auth.service.hash_password", quick_hash)
        yield from build_world(tmp_path_factory.mktemp("authz"), database_url)
