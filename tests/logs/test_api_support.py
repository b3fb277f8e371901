"""Helpers of the log API tests: a small catalog, users, projects and runs made in the database.

Runs are rows written directly (as the pump leaves them) plus, when asked, their log file
written with the store's own writer. Imported by the other ``tests/logs/test_*`` modules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from manager.logs.store import LogWriter, log_path
from manager.models import Execution, Script, ScriptGroup, User, UserProject, utcnow


@dataclass
class World:
    """Ids of what the fixtures made."""

    app: Any
    users: dict[str, int]
    scripts: dict[str, int]
    projects: dict[str, int]

    def run(
        self,
        username: str,
        *,
        script: str = "report",
        project: str | None = None,
        status: str = "completed",
        start: datetime | None = None,
        duration: int | None = 5,
        output: str = "",
        errors: str = "",
        debug: str = "",
        parameters: dict[str, Any] | None = None,
        exit_code: int | None = 0,
        with_file: bool = True,
        lines: list[tuple[str, str]] | None = None,
    ) -> str:
        """Make one run of ``username``; return its execution id (uuid)."""
        from manager.extensions import db

        start = start or utcnow() - timedelta(minutes=10)
        execution_uuid = str(uuid.uuid4())
        ended = status not in ("starting", "running", "stopping")
        with self.app.app_context():
            execution = Execution(
                script_id=self.scripts[script],
                user_id=self.users[username],
                project_id=self.projects[project or f"{username}_default"],
                execution_uuid=execution_uuid,
                session_id=execution_uuid,
                status=status,
                start_time=start,
                end_time=start + timedelta(seconds=duration or 0) if ended else None,
                duration_seconds=duration if ended else None,
                output=output,
                error_output=errors,
                debug_output=debug,
                exit_code=exit_code if ended else None,
                parameters=parameters or {},
                environment={"USER_ID": self.users[username]},
                conda_environment="base",
                image="scriptsmanager-env-base:test",
                limits={"memory": "512m"},
            )
            db.session.add(execution)
            db.session.commit()
        if with_file:
            path = log_path(
                self.app.config["SM_LOG_DIR"], self.users[username], start, execution_uuid
            )
            writer = LogWriter(path)
            if lines is None:
                lines = [
                    (stream, line)
                    for stream, text in (("stdout", output), ("stderr", errors), ("debug", debug))
                    for line in text.splitlines()
                ]
            for offset, (stream, text) in enumerate(lines):
                moment = start + timedelta(milliseconds=offset)
                writer.append(stream, text, moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            writer.close()
        return execution_uuid

    def file_of(self, execution_id: str):
        """The log file path of a run."""
        from manager.extensions import db

        with self.app.app_context():
            execution = db.session.query(Execution).filter_by(execution_uuid=execution_id).one()
            user = db.session.get(User, execution.user_id)
            return log_path(
                self.app.config["SM_LOG_DIR"], user.id, execution.start_time, execution_id
            )

    def exists(self, execution_id: str) -> bool:
        from manager.extensions import db

        with self.app.app_context():
            found = db.session.query(Execution).filter_by(execution_uuid=execution_id).first()
            return found is not None


def register_log_blueprints(app) -> None:
    """Register the log blueprints if manager.blueprints does not (yet) do it."""
    from manager.api import admin_logs, logs

    for module in (logs, admin_logs):
        if module.bp.name not in app.blueprints:
            app.register_blueprint(module.bp)


def build_world(app, make_user) -> World:
    """Users olga (operator), ivan (operator), vera (viewer), dora (developer), root (admin)."""
    from manager.extensions import db

    register_log_blueprints(app)

    users = {"olga": make_user("olga", "operator")}
    with app.app_context():
        # Hashing a password takes a while: the others share olga's (the same test password).
        password_hash = db.session.get(User, users["olga"]).password_hash
        for username, level in (
            ("ivan", "operator"),
            ("vera", "viewer"),
            ("dora", "developer"),
            ("root", "admin"),
        ):
            user = User(
                username=username,
                email=f"{username}@example.com",
                password_hash=password_hash,
                user_level=level,
            )
            db.session.add(user)
            db.session.flush()
            users[username] = user.id
        group = ScriptGroup(name="Reports", directory_path="reports")
        db.session.add(group)
        db.session.flush()
        scripts = {}
        for filename, name, parameters in (
            ("report.py", "Monthly report", [{"name": "token", "type": "secret"}]),
            ("cleanup.py", "Disk cleanup", []),
        ):
            script = Script(
                group_id=group.id, filename=filename, display_name=name, parameters=parameters
            )
            db.session.add(script)
            db.session.flush()
            scripts[filename.removesuffix(".py")] = script.id
        projects = {}
        for username, user_id in users.items():
            for name in ("default", "alpha"):
                project = UserProject(user_id=user_id, project_name=f"project_{name}")
                db.session.add(project)
                db.session.flush()
                projects[f"{username}_{name}"] = project.id
        db.session.commit()
    return World(app, users, scripts, projects)


def audit_actions(app, action: str) -> list[dict[str, Any]]:
    """Audit events of ``action``, oldest first."""
    from manager.extensions import db
    from manager.models import AuditEvent

    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)
        return [event.to_dict() | {"admin": event.is_admin_action} for event in events]
