"""Start and stop sessions: checks, quotas, the execution record, the container.

The request side of the lifecycle. ``monitor.py`` watches what this starts.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text, update

from manager import metrics
from manager.catalog.discovery import is_runnable
from manager.catalog.schema import mask_secrets, validate_parameter_values
from manager.extensions import DbSession
from manager.logs import LogHub, record_debug
from manager.logs.quota import check_log_quota
from manager.models import Execution, Script, ScriptProcess, User, UserProject, utcnow
from manager.projects import active_project
from manager.sessions.backend import BackendError, ImageMissing, SessionBackend
from manager.sessions.images import env_image_tag
from manager.sessions.limits import Limits, merge
from manager.sessions.spec import build_spec, context_document, session_network
from manager.sessions.workspace import (
    disk_usage,
    human_size,
    prepare_workspace,
    user_group_dir,
    workspace_dir,
    write_context_file,
)

if TYPE_CHECKING:
    from manager.sessions.backend import Handle
    from manager.sessions.pool import WarmPool

log = logging.getLogger("scriptsmanager")

LIVE_STATES = ("starting", "running", "stopping")
# What counts against quotas and may be reused: a session being stopped is neither.
COUNTED_STATES = ("starting", "running")
ON_CONFLICT = ("open", "restart")
LOG_DISK_RESERVE = 1024 * 1024  # free bytes under which the log disk counts as full
SLOT_LOCK_KEY = 0x534D_5354  # pg_advisory_xact_lock key of session starts ("SMST")
FINAL_STATES = ("completed", "failed", "terminated", "timed_out", "killed", "lost")
ROUTE_RE = re.compile(r"@app\.(route|get|post|put|patch|delete)\(|app\.add_url_rule\(")


class SessionError(Exception):
    """A run cannot start; ``status`` is the HTTP status, ``message`` is for the user.

    ``running`` is the live session a 409 conflict is about (the API shows it like any run).
    """

    def __init__(
        self,
        status: int,
        message: str,
        running: tuple[Execution, ScriptProcess] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.running = running
        self.extra = extra


@dataclass(frozen=True)
class SessionConfig:
    """The settings the lifecycle needs, read once from the app's configuration."""

    data_dir: Path
    groups_dir: Path
    envs_dir: Path
    runner_dir: Path
    base_image: str
    instance: str
    max_concurrent: int
    max_per_user: int
    default_limits: Limits
    default_run_timeout: int
    idle_timeout: int
    default_project: str
    admin_inspect: bool
    brand: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_app_config(cls, config: Any) -> SessionConfig:
        return cls(
            data_dir=Path(config["SM_DATA_DIR"]),
            groups_dir=Path(config["SM_SCRIPT_GROUPS_DIR"]),
            envs_dir=Path(config["SM_CONDA_ENVS_DIR"]),
            runner_dir=Path(config["SM_RUNNER_DIR"]),
            base_image=config.get("SM_RESOLVED_BASE_IMAGE") or config["SM_BASE_IMAGE"],
            instance=config["SM_INSTANCE"],
            max_concurrent=config["SM_MAX_CONCURRENT_SESSIONS"],
            max_per_user=config["SM_MAX_SESSIONS_PER_USER"],
            default_limits=Limits(
                memory=config["SM_DEFAULT_MEMORY"],
                cpus=config["SM_DEFAULT_CPUS"],
                pids=config["SM_DEFAULT_PIDS"],
                network=config["SM_DEFAULT_NETWORK"],
                idle_timeout=config["SM_SESSION_TIMEOUT"],
                max_sessions_per_user=config["SM_MAX_SESSIONS_PER_USER"],
                workspace_quota=config.get("SM_DEFAULT_WORKSPACE_QUOTA") or "5g",
            ),
            default_run_timeout=config["SM_EXECUTION_TIMEOUT"],
            idle_timeout=config["SM_SESSION_TIMEOUT"],
            default_project=config["SM_DEFAULT_PROJECT_NAME"],
            admin_inspect=config["SM_ADMIN_CAN_ACCESS_ALL_DATA"],
            brand={"name": config["SM_BRAND_NAME"], "logo_url": "/brand/logo"},
        )


@dataclass
class Started:
    execution: Execution
    process: ScriptProcess | None
    reused: bool = False


def proxy_prefix(project_id: int, script_id: int, user_id: int) -> str:
    return f"/project/{project_id}/script/{script_id}/user/{user_id}"


def is_interactive(script: Script, groups_dir: Path | None = None) -> bool:
    """A script that registers routes serves a web interface, unless ``proxy_enabled`` is false.

    Discovery records whether the code registers routes; without that, read the source.
    """
    meta = script.metadata_json or {}
    if meta.get("interface") == "legacy":  # the seed's port-based scripts serve their own app
        return True
    if meta.get("proxy_enabled") is False:
        return False
    if "registers_routes" in meta or groups_dir is None:
        return bool(meta.get("registers_routes"))
    path = groups_dir / script.group.directory_path / script.filename
    try:
        return bool(ROUTE_RE.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def run_timeout(script: Script, limits: Limits, default: int, interactive: bool) -> int:
    """The script's own timeout, capped by the group's; the global default when neither is set."""
    own = script.execution_timeout
    group_default = (script.group.metadata_json or {}).get("execution_timeout")
    cap = limits.run_timeout
    if interactive:
        # An interactive session lives until stopped or idle; only an admin cap bounds it.
        return cap or 8 * 3600
    chosen = own or group_default or default
    return min(chosen, cap) if cap else int(chosen)


def effective_limits(defaults: Limits, group: Any) -> Limits:
    """The installation's defaults under the group's limits (metadata.json + admin edits)."""
    group_limits = (group.metadata_json or {}).get("limits") or {}
    try:
        return merge(defaults, group_limits)
    except ValueError as exc:
        raise SessionError(409, f"The group's limits are not valid: {exc}") from exc


def empty_required(
    definitions: list[dict[str, Any]], raw_parameters: dict[str, Any]
) -> dict[str, str]:
    """Required parameters sent empty (null, "" or blanks) that do not allow it, by name.

    Left out, a parameter takes its default; sent empty, it is a mistake to report, not to
    paper over with the default. ``allow_empty: true`` on a definition accepts it.
    """
    errors: dict[str, str] = {}
    for definition in definitions:
        name = definition["name"]
        if not definition.get("required") or definition.get("allow_empty"):
            continue
        if name in raw_parameters and (
            raw_parameters[name] is None
            or (isinstance(raw_parameters[name], str) and not raw_parameters[name].strip())
        ):
            errors[name] = "is required and cannot be empty (leave it out to use its default)"
    return errors


def lock_slots(db: DbSession, user: User) -> None:
    """Take the database lock that serialises session starts, until the transaction ends.

    The quota counts and the rows that make a new session count must not interleave, not
    even across manager processes: PostgreSQL takes a transaction-scoped advisory lock; SQLite
    takes its single write lock now (a no-op write begins the transaction), so the counts read
    afterwards are the latest.
    """
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SLOT_LOCK_KEY})
    else:
        db.execute(update(User).where(User.id == user.id).values(id=User.id))


def append_debug(execution: Execution, message: str) -> None:
    """Record a lifecycle event: a ``debug`` line in the run's log (streamed) and on the row."""
    moment = utcnow()
    record_debug(execution, message, moment)
    stamp = moment.isoformat(timespec="milliseconds")
    execution.debug_output = (execution.debug_output or "") + f"[{stamp}] {message}\n"


class SessionService:
    """Start, reuse and stop sessions; shared by the API, the proxy resolver and the monitor."""

    def __init__(self, backend: SessionBackend, config: SessionConfig, logs: LogHub | None = None):
        self.backend = backend
        self.config = config
        self.logs = logs  # the log pumps; None: output is collected when a session ends
        # Quota checks and the row that makes a session count must not interleave.
        self._start_lock = threading.Lock()
        self.pool: WarmPool | None = None  # the warm pool (runtime.init_app); None: cold only
        # Runs whose container a request of this process is starting right now: the monitor
        # does not judge them, however long the engine takes (see ``_start_container``).
        self.starting: set[str] = set()

    # ---------------------------------------------------------------- queries

    def live_processes(self, db: DbSession, user: User | None = None) -> list[ScriptProcess]:
        query = select(ScriptProcess).where(ScriptProcess.status.in_(LIVE_STATES))
        if user is not None:
            query = query.where(ScriptProcess.user_id == user.id)
        return list(db.execute(query.order_by(ScriptProcess.id)).scalars())

    def find_interactive(
        self, db: DbSession, user_id: int, script_id: int, project_id: int
    ) -> ScriptProcess | None:
        return (
            db.execute(
                select(ScriptProcess)
                .where(
                    ScriptProcess.user_id == user_id,
                    ScriptProcess.script_id == script_id,
                    ScriptProcess.project_id == project_id,
                    ScriptProcess.interactive.is_(True),
                    ScriptProcess.status.in_(COUNTED_STATES),
                )
                .order_by(ScriptProcess.id.desc())
            )
            .scalars()
            .first()
        )

    def process_for(self, db: DbSession, execution: Execution) -> ScriptProcess | None:
        return (
            db.execute(select(ScriptProcess).where(ScriptProcess.execution_id == execution.id))
            .scalars()
            .first()
        )

    # ---------------------------------------------------------------- start

    def project_for(self, db: DbSession, user: User, project_id: Any) -> UserProject:
        if project_id in (None, ""):
            project = active_project(db, user, self.config.default_project)
            assert project is not None
            return project
        try:
            project = db.get(UserProject, int(project_id))
        except (TypeError, ValueError):
            project = None
        if project is None or project.user_id != user.id:
            raise SessionError(404, f"You have no project with id {project_id}.")
        return project

    def execute(
        self,
        db: DbSession,
        user: User,
        script: Script,
        raw_parameters: Any,
        project_id: Any = None,
        on_conflict: str | None = None,
    ) -> Started:
        """Validate and start a run (or reuse the user's live interactive session).

        An interactive script already running in the project with other parameters is a
        conflict: ``on_conflict`` says what to do ("open" the running one, "restart" it with
        the new parameters); without it, SessionError 409 carries the running session and
        both options. Raises SessionError with the HTTP status and a message naming what is
        wrong.
        """
        if not user.reaches("operator"):
            raise SessionError(
                403, "Viewers can read logs and documentation but cannot run scripts."
            )
        if not user.reaches(script.required_level):
            raise SessionError(403, f"This script needs the {script.required_level} level.")
        if not is_runnable(script):
            reason = script.invalid_reason or script.group.invalid_reason or "it is inactive"
            raise SessionError(409, f"This script cannot run: {reason}")
        if on_conflict not in (None, *ON_CONFLICT):
            raise SessionError(
                400, f"'on_conflict' must be one of {', '.join(ON_CONFLICT)}, not {on_conflict!r}."
            )
        parameters_given = raw_parameters is not None
        if raw_parameters is None:
            raw_parameters = {}
        if not isinstance(raw_parameters, dict):
            raise SessionError(400, "'parameters' must be a JSON object of name: value.")
        definitions = list(script.parameters or [])
        values, errors = validate_parameter_values(definitions, raw_parameters)
        errors.update(empty_required(definitions, raw_parameters))
        if errors:
            names = ", ".join(sorted(errors))
            raise SessionError(400, f"Some parameters are not valid: {names}.", errors=errors)
        interactive = is_interactive(script, self.config.groups_dir)
        group = script.group
        limits = effective_limits(self.config.default_limits, group)
        self.check_workspace_quota(group, user.id, limits)
        check_log_quota(db, user)  # SM_LOG_QUOTA_MB: 507 when the user's logs fill it
        self.check_log_disk()

        replaced: ScriptProcess | None = None
        with self._start_lock:
            # Serialises starts across manager processes too; held until the commit below.
            lock_slots(db, user)
            project = self.project_for(db, user, project_id)
            if interactive:
                existing = self.find_interactive(db, user.id, script.id, project.id)
                execution = db.get(Execution, existing.execution_id) if existing else None
                if existing is not None and execution is not None:
                    same = not parameters_given or self._same_parameters(
                        execution, definitions, values
                    )
                    if same or on_conflict == "open":
                        db.commit()  # releases the slot lock
                        return Started(execution, existing, reused=True)
                    if on_conflict != "restart":
                        raise self._conflict(execution, existing, definitions, values)
                    replaced = existing
                    self._mark_stopping(db, existing, "user")
                    append_debug(execution, "restarted with other parameters by its user")
            self._check_quotas(db, user, group, limits)
            execution, process = self._create_rows(
                db, user, script, project, definitions, values, interactive, limits
            )
            db.commit()
        if replaced is not None:
            self._stop_container(self._handle_of(db, replaced), now=False, timeout=5.0)
        self._start_container(db, user, script, project, execution, process, values, limits)
        return Started(execution, process)

    def _same_parameters(
        self, execution: Execution, definitions: list[dict[str, Any]], values: dict[str, Any]
    ) -> bool:
        """Whether a live session runs with ``values`` (secrets compared from its context)."""
        try:
            context = json.loads(
                (self.session_dir(execution.execution_uuid) / "context.json").read_text("utf-8")
            )
            running = context.get("parameters")
        except (OSError, ValueError):
            running = None
        if isinstance(running, dict):
            return bool(running == values)
        return bool(execution.parameters == mask_secrets(definitions, values))

    def _conflict(
        self,
        execution: Execution,
        process: ScriptProcess,
        definitions: list[dict[str, Any]],
        values: dict[str, Any],
    ) -> SessionError:
        asked = mask_secrets(definitions, values)
        running = execution.parameters or {}
        changed = sorted(
            name for name in set(asked) | set(running) if asked.get(name) != running.get(name)
        ) or sorted(asked)  # only secrets differ: they are masked on both sides
        return SessionError(
            409,
            "This script is already open in this project with other parameters "
            f"({', '.join(changed)}). Open the running session, or restart it with the new "
            'parameters (send "on_conflict": "open" or "restart").',
            running=(execution, process),
            options=list(ON_CONFLICT),
            changed=changed,
        )

    def workspace_usage(self, group_dir: str, user_id: int) -> int:
        return disk_usage(user_group_dir(self.config.data_dir, group_dir, user_id))

    def quota_message(self, group: Any, used: int, limits: Limits) -> str:
        return (
            f"Your workspace in this group ({group.name}) takes {human_size(used)}, its quota "
            f"is {human_size(limits.workspace_quota_bytes)} (workspace_quota "
            f"{limits.workspace_quota}). Delete files from it (a run of the group's cleanup "
            "script, or ask an admin for more space)."
        )

    def check_workspace_quota(self, group: Any, user_id: int, limits: Limits) -> None:
        """Refuse a run when the user's workspaces in the group are at or over the quota.

        Raises SessionError 507 (insufficient storage); nothing is deleted.
        """
        used = self.workspace_usage(group.directory_path, user_id)
        if used >= limits.workspace_quota_bytes:
            raise SessionError(
                507, self.quota_message(group, used, limits), limit="workspace_quota"
            )

    def check_log_disk(self) -> None:
        """Refuse a run when the disk holding the logs is full: its output could not be kept.

        Raises SessionError 507 (insufficient storage).
        """
        if self.logs is None:
            return
        try:
            free = shutil.disk_usage(self.logs.settings.log_dir).free
        except OSError:
            return  # not created yet: the first log creates it
        if free < LOG_DISK_RESERVE:
            raise SessionError(
                507,
                f"The disk that holds the run logs is full ({human_size(free)} free): a run's "
                "output could not be kept, so runs are refused until an admin frees space "
                "there (SM_LOG_DIR).",
                limit="log_disk",
            )

    def _check_quotas(self, db: DbSession, user: User, group: Any, limits: Limits) -> None:
        """Refuse a start past the group's per-user limit, the global per-user cap or the
        server-wide cap. Sessions being stopped no longer count. Call under ``lock_slots``."""
        mine_here = db.execute(
            select(func.count(ScriptProcess.id))
            .join(Script, Script.id == ScriptProcess.script_id)
            .where(
                ScriptProcess.user_id == user.id,
                ScriptProcess.status.in_(COUNTED_STATES),
                Script.group_id == group.id,
            )
        ).scalar_one()
        in_group = limits.max_sessions_per_user or self.config.max_per_user
        if mine_here >= in_group:
            raise SessionError(
                429,
                f"Session limit reached: you have {mine_here} running in this group "
                f"({group.name}) and the most allowed in this group is {in_group} "
                "(max_sessions_per_user). Stop one and retry.",
                limit="max_sessions_per_user",
            )
        mine = db.execute(
            select(func.count(ScriptProcess.id)).where(
                ScriptProcess.user_id == user.id, ScriptProcess.status.in_(COUNTED_STATES)
            )
        ).scalar_one()
        if mine >= self.config.max_per_user:
            raise SessionError(
                429,
                f"Session limit reached: you have {mine} running in all groups and the most "
                f"allowed is {self.config.max_per_user} "
                f"(SM_MAX_SESSIONS_PER_USER={self.config.max_per_user}). Stop one and retry.",
                limit="max_sessions_per_user_global",
            )
        total = db.execute(
            select(func.count(ScriptProcess.id)).where(ScriptProcess.status.in_(COUNTED_STATES))
        ).scalar_one()
        if total >= self.config.max_concurrent:
            raise SessionError(
                429,
                f"The server already runs {total} sessions, the most allowed "
                f"(SM_MAX_CONCURRENT_SESSIONS={self.config.max_concurrent}). "
                "Retry in a moment.",
                limit="max_concurrent_sessions",
            )

    def _create_rows(
        self,
        db: DbSession,
        user: User,
        script: Script,
        project: UserProject,
        definitions: list[dict[str, Any]],
        values: dict[str, Any],
        interactive: bool,
        limits: Limits,
    ) -> tuple[Execution, ScriptProcess]:
        execution_uuid = str(uuid.uuid4())
        timeout = run_timeout(script, limits, self.config.default_run_timeout, interactive)
        execution = Execution(
            script_id=script.id,
            user_id=user.id,
            project_id=project.id,
            execution_uuid=execution_uuid,
            status="starting",
            parameters=mask_secrets(definitions, values),
            environment=self.environment(user, project),
            conda_environment=script.group.conda_environment or "base",
            interactive=interactive,
            limits={**limits.to_dict(), "run_timeout": timeout},
            proxy_url=(proxy_prefix(project.id, script.id, user.id) + "/") if interactive else None,
            session_id=execution_uuid,
        )
        db.add(execution)
        db.flush()
        process = ScriptProcess(
            script_id=script.id,
            user_id=user.id,
            project_id=project.id,
            execution_id=execution.id,
            status="starting",
            interactive=interactive,
            proxy_session_id=execution_uuid if interactive else None,
            last_ping=utcnow(),
        )
        db.add(process)
        project.last_accessed = utcnow()
        append_debug(execution, f"requested by {user.username} in project {project.project_name}")
        append_debug(execution, f"limits: {json.dumps(execution.limits, sort_keys=True)}")
        return execution, process

    def environment(self, user: User, project: UserProject) -> dict[str, Any]:
        return {
            "USER_ID": user.id,
            "USER_LEVEL": user.user_level,
            "PROJECT_ID": project.id,
            "PROJECT_NAME": project.project_name,
            "USER_THEME": user.preferred_theme,
            "USER_LANGUAGE": user.preferred_language,
        }

    def image_for(self, env_name: str) -> str:
        spec_path = self.config.envs_dir / f"{env_name}.yml"
        try:
            spec_text = spec_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ImageMissing(
                f"The environment {env_name!r} has no spec "
                f"(conda-envs/{env_name}.yml); an admin must add it."
            ) from exc
        return env_image_tag(env_name, spec_text, self.config.runner_dir, self.config.base_image)

    def session_dir(self, execution_uuid: str) -> Path:
        return self.config.data_dir / "system" / "sessions" / execution_uuid

    def _start_container(
        self,
        db: DbSession,
        user: User,
        script: Script,
        project: UserProject,
        execution: Execution,
        process: ScriptProcess,
        values: dict[str, Any],
        limits: Limits,
    ) -> None:
        """Start the run's container (or hand it a warm one) and record it.

        Marked in ``starting`` meanwhile: under load a start took longer than the monitor's
        START_DEADLINE, and the monitor declared the run lost and removed its folder while the
        engine was still creating its container (bench/load: "bind source path does not exist").
        """
        uuid = execution.execution_uuid
        self.starting.add(uuid)
        try:
            self._create_and_start(db, user, script, project, execution, process, values, limits)
        finally:
            self.starting.discard(uuid)

    def _create_and_start(
        self,
        db: DbSession,
        user: User,
        script: Script,
        project: UserProject,
        execution: Execution,
        process: ScriptProcess,
        values: dict[str, Any],
        limits: Limits,
    ) -> None:
        group = script.group
        try:
            image = self.image_for(group.conda_environment or "base")
            execution.image = image
            workspace = workspace_dir(
                self.config.data_dir, group.directory_path, user.id, project.id
            )
            prepare_workspace(workspace)
            context_file = self._write_context(execution, script, values)
            handle = self._from_pool(
                db, execution, user, group, project, image, limits, context_file
            )
            if handle is None:
                spec = build_spec(
                    execution_uuid=execution.execution_uuid,
                    image=image,
                    script_host_dir=str(self.config.groups_dir / group.directory_path),
                    script_filename=script.filename,
                    workspace_host_dir=str(workspace),
                    context_host_file=str(context_file),
                    limits=limits,
                    user_id=user.id,
                    script_id=script.id,
                    project_id=project.id,
                    interactive=execution.interactive,
                    instance=self.config.instance,
                    run_timeout=(execution.limits or {}).get("run_timeout"),
                )
                append_debug(execution, f"image {image}; starting container {spec.name}")
                # No transaction stays open across the engine call: on SQLite the run's
                # pending UPDATE would hold the one write lock for the seconds a container
                # start takes, and every other execute, login and monitor pass would wait.
                db.commit()
                handle = self.backend.start(spec)
        except (BackendError, OSError) as exc:
            message = exc.message if isinstance(exc, BackendError) else f"cannot prepare: {exc}"
            detail = exc.detail if isinstance(exc, BackendError) else ""
            log.error(
                "session %s failed to start: %s %s", execution.execution_uuid, message, detail
            )
            self._fail_start(db, execution, process, message)
            metrics.SESSION_FAILURES.inc()
            status = 503 if isinstance(exc, ImageMissing) else 502
            raise SessionError(
                status,
                f"The run could not start: {message}",
                execution_id=execution.execution_uuid,
                state="failed",
            ) from exc
        process.backend_state = self.backend.get_state(handle)
        metrics.SESSION_STARTS.labels("interactive" if execution.interactive else "batch").inc()
        if not execution.interactive and execution.start_time is not None:
            metrics.START_LATENCY.observe((utcnow() - execution.start_time).total_seconds())
        now_status = (
            db.execute(select(ScriptProcess.status).where(ScriptProcess.id == process.id))
            .scalars()
            .first()
        )
        if now_status in ("stopping", "ended"):
            # A restart or a stop came while the container was created ("stopping"), or another
            # manager process gave up waiting for this start ("ended": its orphan reaper removes
            # the container): it must not run.
            if now_status == "stopping":
                process.status = "stopping"
            db.commit()
            self._stop_container(self._handle_of(db, process), now=True, timeout=0)
            return
        process.status = "starting" if execution.interactive else "running"
        execution.status = process.status
        append_debug(execution, "container started")
        db.commit()
        if self.logs is not None:
            self.logs.ensure_pump(execution, self.backend, handle)

    def _from_pool(
        self,
        db: DbSession,
        execution: Execution,
        user: User,
        group: Any,
        project: UserProject,
        image: str,
        limits: Limits,
        context_file: Path,
    ) -> Handle | None:
        """Hand a matching standby to this run, or None (no pool, none ready: go cold).

        A standby that fails at hand-over is removed and the run goes cold.
        """
        pool = self.pool
        if pool is None or not pool.usable or not (group.pool_size or 0) > 0:
            return None
        from manager.sessions.pool import pool_key

        key = pool_key(image, limits, session_network(limits, interactive=execution.interactive))
        row = pool.claim(db, execution_uuid=execution.execution_uuid, group_id=group.id,
                         user_id=user.id, project_id=project.id, key=key)  # fmt: skip
        if row is None:
            return None
        try:
            handle = pool.hand_over(row, execution.execution_uuid, context_file)
        except (BackendError, OSError) as exc:
            log.warning("pool: hand-over of %s failed, starting cold: %s", row.slot, exc)
            pool.discard(db, row, execution.execution_uuid)
            return None
        append_debug(execution, f"image {image}; handed the warm standby {row.slot}")
        return handle

    def _write_context(self, execution: Execution, script: Script, values: dict[str, Any]) -> Path:
        directory = self.session_dir(execution.execution_uuid)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "context.json"
        prefix = proxy_prefix(execution.project_id or 0, script.id, execution.user_id)
        env = execution.environment
        document = context_document(
            script_filename=script.filename,
            parameters=values,
            user_id=env["USER_ID"],
            user_level=env["USER_LEVEL"],
            project_id=env["PROJECT_ID"],
            project_name=env["PROJECT_NAME"],
            user_theme=env["USER_THEME"],
            user_language=env["USER_LANGUAGE"],
            brand=self.config.brand,
            prefix=prefix if execution.interactive else "",
            session=execution.execution_uuid,
        )
        return write_context_file(path, document)

    def _fail_start(
        self, db: DbSession, execution: Execution, process: ScriptProcess, message: str
    ) -> None:
        now = utcnow()
        execution.status = "failed"
        execution.end_time = now
        execution.duration_seconds = 0
        execution.error_output = (execution.error_output or "") + message + "\n"
        append_debug(execution, f"start failed: {message}")
        process.status = "ended"
        process.ended_at = now
        process.stop_reason = "start_failed"
        db.commit()
        self.remove_session_dir(execution.execution_uuid)

    def remove_session_dir(self, execution_uuid: str) -> None:
        shutil.rmtree(self.session_dir(execution_uuid), ignore_errors=True)

    # ---------------------------------------------------------------- stop

    def stop(
        self,
        db: DbSession,
        process: ScriptProcess,
        *,
        reason: str = "user",
        now: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Ask the session to end; the monitor records how it ended.

        The session is marked "stopping" (committed) before the engine is asked, so from then
        on it is never reused and no longer counts against quotas.
        """
        engine_stop = self.request_stop(db, process, reason=reason, now=now, timeout=timeout)
        if engine_stop is not None:
            engine_stop()

    def request_stop(
        self,
        db: DbSession,
        process: ScriptProcess,
        *,
        reason: str,
        now: bool = False,
        timeout: float = 5.0,
    ) -> Callable[[], None] | None:
        """``stop``'s first half: mark the session "stopping" and commit; the engine's half is
        returned to be called later, e.g. beside other sessions' (the monitor's timeouts: a
        graceful stop waits for the runner, seconds per session).

        The returned call needs neither the database nor an app context (it may run on
        another thread); None if the session is not live.
        """
        if process.status not in LIVE_STATES:
            return None
        self._mark_stopping(db, process, reason)
        handle = self._handle_of(db, process)
        db.commit()
        _forget_routes(handle)
        return functools.partial(self._engine_stop, handle, now=now, timeout=timeout)

    def _mark_stopping(self, db: DbSession, process: ScriptProcess, reason: str) -> None:
        """The session and its run show "stopping" until the monitor records how it ended."""
        process.stop_reason = process.stop_reason or reason
        process.status = "stopping"
        execution = db.get(Execution, process.execution_id) if process.execution_id else None
        if execution is not None and execution.status in LIVE_STATES:
            execution.status = "stopping"

    def _stop_container(self, handle: Handle, *, now: bool, timeout: float) -> None:
        _forget_routes(handle)
        self._engine_stop(handle, now=now, timeout=timeout)

    def _engine_stop(self, handle: Handle, *, now: bool, timeout: float) -> None:
        try:
            self.backend.stop(handle, now=now, timeout=timeout)
        except BackendError as exc:
            log.warning("stopping %s: %s %s", handle.execution_uuid, exc.message, exc.detail)

    def _handle_of(self, db: DbSession, process: ScriptProcess) -> Handle:
        return self.backend.load_state(self._uuid(db, process), process.backend_state or {})

    def _uuid(self, db: DbSession, process: ScriptProcess) -> str:
        execution = db.get(Execution, process.execution_id) if process.execution_id else None
        return execution.execution_uuid if execution else f"process-{process.id}"


def _forget_routes(handle: Handle) -> None:
    """Drop the proxy's cached routes to a stopping session, before the engine frees its
    address for reuse (in the app context of the caller)."""
    from manager.proxy import forget_session

    forget_session(handle.execution_uuid)
