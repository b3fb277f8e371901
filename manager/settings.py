"""Every configuration option: its environment variable, seed aliases, JSON path and default.

The table is the single source for ``Config`` loading, the README's table and its test.
Precedence: environment variable > JSON configuration file (``SM_CONFIG_FILE``) > default.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _list(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(item) for item in raw]
    return [item.strip() for item in str(raw).split(",") if item.strip()]


CASTS: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _bool,
    "list": _list,
}


@dataclass(frozen=True)
class Setting:
    key: str  # Flask config key
    env: str  # environment variable
    kind: str  # a key of CASTS
    default: Any
    help: str
    json_path: str | None = None  # dotted path in the JSON configuration file
    aliases: tuple[str, ...] = field(default=())  # the seed's names


SETTINGS: tuple[Setting, ...] = (
    # Core
    Setting(
        "SECRET_KEY",
        "SECRET_KEY",
        "str",
        None,
        "Session signing key. Required outside debug mode (the app refuses to start).",
    ),
    Setting(
        "DEBUG",
        "SM_DEBUG",
        "bool",
        False,
        "Debug mode: allows a generated SECRET_KEY, verbose errors.",
        aliases=("DEBUG",),
    ),
    Setting(
        "SQLALCHEMY_DATABASE_URI",
        "DATABASE_URL",
        "str",
        None,
        "Database URL; default SQLite file `<SM_DATA_DIR>/scriptsmanager.db`. "
        "PostgreSQL: `postgresql://user:pass@host/db`.",
    ),
    Setting(
        "SM_DB_POOL_SIZE",
        "SM_DB_POOL_SIZE",
        "str",
        None,
        "Database connections each manager process keeps open; default 20 on SQLite, 10 on "
        "PostgreSQL (mind the server's `max_connections` across replicas).",
    ),
    Setting(
        "SM_DB_MAX_OVERFLOW",
        "SM_DB_MAX_OVERFLOW",
        "str",
        None,
        "Connections a process may open beyond the pool under load; default 80 on SQLite, "
        "30 on PostgreSQL.",
    ),
    Setting("SM_HOST", "SM_HOST", "str", "127.0.0.1", "Address `serve` binds to."),
    Setting("SM_PORT", "SM_PORT", "int", 5002, "Port `serve` listens on."),
    Setting(
        "SM_DATA_DIR",
        "SM_DATA_DIR",
        "str",
        "data",
        "Data folder (SQLite file, workspaces, system files).",
        "data_management.base_data_path",
        ("BASE_DATA_PATH",),
    ),
    Setting("SM_LOG_DIR", "SM_LOG_DIR", "str", "logs", "Log folder (system, audit, executions)."),
    Setting(
        "SM_BACKUP_DIR", "SM_BACKUP_DIR", "str", "backup", "Backup folder.", "backup.backup_path"
    ),
    Setting(
        "SM_SCRIPT_GROUPS_DIR",
        "SM_SCRIPT_GROUPS_DIR",
        "str",
        "script_groups",
        "Folder scanned for script groups.",
    ),
    Setting(
        "SM_CONDA_ENVS_DIR",
        "SM_CONDA_ENVS_DIR",
        "str",
        "conda-envs",
        "Folder of environment specs (`NAME.yml`).",
    ),
    Setting(
        "SM_ADMIN_PASSWORD",
        "SM_ADMIN_PASSWORD",
        "str",
        None,
        "Password of the first admin; if unset a random one is generated and printed once.",
    ),
    Setting("SM_ADMIN_USERNAME", "SM_ADMIN_USERNAME", "str", "admin", "Name of the first admin."),
    Setting(
        "SM_CONFIG_FILE",
        "SM_CONFIG_FILE",
        "str",
        None,
        "JSON configuration file in the seed's layout (`proxy_system`, `data_management`, ...).",
    ),
    Setting("SM_BRAND_NAME", "SM_BRAND_NAME", "str", "SIDEL", "Brand shown in the navigation bar."),
    Setting(
        "SM_BRAND_LOGO",
        "SM_BRAND_LOGO",
        "str",
        None,
        "Path to a logo image file; default the bundled SIDEL logo.",
    ),
    Setting(
        "SM_WATCH_SCRIPTS",
        "SM_WATCH_SCRIPTS",
        "bool",
        True,
        "Hot-reload script groups when files change on disk.",
    ),
    # Accounts and security
    Setting(
        "SM_LOGIN_TIMEOUT_MINUTES",
        "SM_LOGIN_TIMEOUT_MINUTES",
        "int",
        480,
        "Idle minutes before a browser login expires.",
    ),
    Setting(
        "SM_LOGIN_MAX_ATTEMPTS",
        "SM_LOGIN_MAX_ATTEMPTS",
        "int",
        5,
        "Failed logins for one account from one client address before delays start "
        '(never a lock: see README "Login throttling").',
    ),
    Setting(
        "SM_LOGIN_DELAY_SECONDS",
        "SM_LOGIN_DELAY_SECONDS",
        "int",
        1,
        "First delay after the free attempts; it doubles with each further failure.",
    ),
    Setting(
        "SM_LOGIN_MAX_DELAY_SECONDS",
        "SM_LOGIN_MAX_DELAY_SECONDS",
        "int",
        60,
        "Longest delay between two login attempts for one account from one address.",
    ),
    Setting(
        "SM_LOGIN_WINDOW_SECONDS",
        "SM_LOGIN_WINDOW_SECONDS",
        "int",
        900,
        "Failed logins older than this are forgotten.",
    ),
    Setting(
        "SM_PASSWORD_MIN_LENGTH",
        "SM_PASSWORD_MIN_LENGTH",
        "int",
        8,
        "Shortest password accepted (the longest is 72 bytes, bcrypt's limit).",
    ),
    Setting(
        "SM_TRUSTED_PROXIES",
        "SM_TRUSTED_PROXIES",
        "str",
        "0",
        "Reverse proxies in front of the manager whose `X-Forwarded-For`/`X-Forwarded-Proto` "
        "are believed: a number of hops (`1` for one nginx) or a comma-separated list of "
        "addresses/CIDRs (`10.0.0.0/8,127.0.0.1`). `0`: none, the socket's address is the client.",
    ),
    Setting(
        "SM_DATA_DIRECTORY_PERMISSIONS",
        "SM_DATA_DIRECTORY_PERMISSIONS",
        "str",
        "755",
        "Mode of data folders.",
        "security.data_directory_permissions",
    ),
    Setting(
        "SM_CONFIG_FILE_PERMISSIONS",
        "SM_CONFIG_FILE_PERMISSIONS",
        "str",
        "644",
        "Mode of configuration files written for users.",
        "security.config_file_permissions",
    ),
    Setting(
        "SM_ENABLE_PROJECT_SHARING",
        "SM_ENABLE_PROJECT_SHARING",
        "bool",
        False,
        "Allow projects to be shared between users.",
        "security.enable_project_sharing",
    ),
    Setting(
        "SM_ADMIN_CAN_ACCESS_ALL_DATA",
        "SM_ADMIN_CAN_ACCESS_ALL_DATA",
        "bool",
        True,
        "Admins may inspect every user's data and sessions.",
        "security.admin_can_access_all_data",
    ),
    # Proxy system / sessions
    Setting(
        "SM_SESSION_TIMEOUT",
        "SM_SESSION_TIMEOUT",
        "int",
        1800,
        "Seconds an interactive session may stay idle.",
        "proxy_system.session_timeout",
        ("PROXY_SESSION_TIMEOUT",),
    ),
    Setting(
        "SM_CONTEXT_CLEANUP_INTERVAL",
        "SM_CONTEXT_CLEANUP_INTERVAL",
        "int",
        300,
        "Seconds between clean-ups of ended sessions.",
        "proxy_system.context_cleanup_interval",
        ("CONTEXT_CLEANUP_INTERVAL",),
    ),
    Setting(
        "SM_MAX_CONCURRENT_SESSIONS",
        "SM_MAX_CONCURRENT_SESSIONS",
        "int",
        20,
        "Sessions running at once, all users.",
        "proxy_system.max_concurrent_sessions",
        ("MAX_CONCURRENT_SESSIONS",),
    ),
    Setting(
        "SM_MAX_SESSIONS_PER_USER",
        "SM_MAX_SESSIONS_PER_USER",
        "int",
        5,
        "Sessions running at once per user.",
        "proxy_system.max_sessions_per_user",
        ("MAX_SESSIONS_PER_USER",),
    ),
    Setting(
        "SM_POOL_IDLE_SECONDS",
        "SM_POOL_IDLE_SECONDS",
        "int",
        300,
        "Seconds a warm-pool standby container waits for a run before it is removed.",
        "proxy_system.pool_idle_seconds",
    ),
    Setting(
        "SM_SESSION_ACTIVITY_CHECK",
        "SM_SESSION_ACTIVITY_CHECK",
        "bool",
        True,
        "Check sessions for activity.",
        "proxy_system.session_activity_check",
    ),
    Setting(
        "SM_SESSION_CHECK_RETRIES",
        "SM_SESSION_CHECK_RETRIES",
        "int",
        3,
        "Failed checks before a session counts as gone.",
        "proxy_system.session_check_retries",
    ),
    Setting(
        "SM_EXECUTION_TIMEOUT",
        "SM_EXECUTION_TIMEOUT",
        "int",
        300,
        "Default run timeout in seconds when neither group nor script sets one.",
    ),
    Setting(
        "SM_SESSION_BACKEND",
        "SM_SESSION_BACKEND",
        "str",
        "docker",
        "Where sessions run: `docker` (this host's engine) or `kubernetes` (a Pod, Service and "
        'NetworkPolicy per session; see README "Deploying with Helm").',
    ),
    Setting(
        "SM_KUBE_NAMESPACE",
        "SM_KUBE_NAMESPACE",
        "str",
        "",
        "Kubernetes: namespace of the session pods (it must hold the claims of SM_KUBE_VOLUMES); "
        "default the manager's own.",
    ),
    Setting(
        "SM_KUBE_VOLUMES",
        "SM_KUBE_VOLUMES",
        "list",
        [],
        "Kubernetes: the PersistentVolumeClaims the manager has mounted, as comma-separated "
        "`<path>=<claim>` (e.g. `/srv/data=sm-data,/srv/logs=sm-logs`); session pods mount "
        "their workspace, scripts, context and capture folder from them with a subPath.",
    ),
    Setting(
        "SM_KUBE_IMAGE_REGISTRY",
        "SM_KUBE_IMAGE_REGISTRY",
        "str",
        "",
        "Kubernetes: registry prefix of the runner images CI pushes "
        "(`registry.example.com/sm` gives `registry.example.com/sm/scriptsmanager-env-NAME:HASH`).",
    ),
    Setting(
        "SM_KUBE_IMAGE_PULL_SECRETS",
        "SM_KUBE_IMAGE_PULL_SECRETS",
        "list",
        [],
        "Kubernetes: names of the image pull secrets session pods use (comma-separated).",
    ),
    Setting(
        "SM_KUBE_MANAGER_NAMESPACE",
        "SM_KUBE_MANAGER_NAMESPACE",
        "str",
        "",
        "Kubernetes: the manager's namespace, the only one whose manager pods a session admits; "
        "default the namespace of the manager's service account.",
    ),
    Setting(
        "SM_KUBE_MANAGER_LABELS",
        "SM_KUBE_MANAGER_LABELS",
        "str",
        "app.kubernetes.io/name=scriptsmanager,app.kubernetes.io/component=manager",
        "Kubernetes: labels of the manager's pods (key=value,...), the only pods a session's "
        "NetworkPolicy admits.",
    ),
    Setting(
        "SM_KUBE_CLUSTER_CIDRS",
        "SM_KUBE_CLUSTER_CIDRS",
        "list",
        [],
        "Kubernetes: the cluster's pod and service ranges (comma-separated CIDRs); sessions "
        "allowed egress never reach them (nor link-local), even through SM_EGRESS_ALLOW.",
    ),
    Setting(
        "SM_BASE_IMAGE",
        "SM_BASE_IMAGE",
        "str",
        "auto",
        "Base of the runner images. `auto`: `python:3.11-slim-bookworm` when present or "
        "pullable, else a Debian base built with debootstrap (`scriptsmanager-base:bookworm`).",
    ),
    Setting(
        "SM_RUNNER_DIR",
        "SM_RUNNER_DIR",
        "str",
        None,
        "The runner's folder (Dockerfile + package); default `runner-image/` of this checkout.",
    ),
    Setting(
        "SM_WHEELHOUSE_DIR",
        "SM_WHEELHOUSE_DIR",
        "str",
        None,
        "Where the host downloads wheels for image builds; "
        "default `<SM_DATA_DIR>/cache/wheelhouse`.",
    ),
    Setting(
        "SM_INSTANCE",
        "SM_INSTANCE",
        "str",
        "default",
        "Name of this installation, put on its containers' labels (several may share an engine).",
    ),
    Setting(
        "SM_NETWORK_PREFIX",
        "SM_NETWORK_PREFIX",
        "str",
        "sm-sessions",
        "Prefix of the Docker networks sessions join.",
    ),
    Setting(
        "SM_DEFAULT_MEMORY",
        "SM_DEFAULT_MEMORY",
        "str",
        "512m",
        "Memory limit of a session when its group sets none.",
    ),
    Setting(
        "SM_DEFAULT_WORKSPACE_QUOTA",
        "SM_DEFAULT_WORKSPACE_QUOTA",
        "str",
        "5g",
        "Disk space one user's workspaces in a group may take, when the group sets no "
        "limits.workspace_quota (e.g. 1g).",
    ),
    Setting(
        "SM_MAX_UPLOAD_MB",
        "SM_MAX_UPLOAD_MB",
        "int",
        100,
        "Largest file (MiB) one upload to a workspace may bring (file browser, file parameters).",
    ),
    Setting(
        "SM_DEFAULT_CPUS",
        "SM_DEFAULT_CPUS",
        "float",
        1.0,
        "CPU limit of a session when its group sets none.",
    ),
    Setting(
        "SM_DEFAULT_PIDS",
        "SM_DEFAULT_PIDS",
        "int",
        128,
        "Process limit of a session when its group sets none.",
    ),
    Setting(
        "SM_DEFAULT_NETWORK",
        "SM_DEFAULT_NETWORK",
        "str",
        "none",
        "Network of a session when its group sets none: none, internal or egress.",
    ),
    Setting(
        "SM_EGRESS_ALLOW",
        "SM_EGRESS_ALLOW",
        "list",
        [],
        "Private address ranges (comma-separated CIDRs) that sessions with `network: egress` may "
        "reach; every other private, link-local (cloud metadata) and CGNAT address is blocked.",
    ),
    Setting(
        "SM_MONITOR_INTERVAL",
        "SM_MONITOR_INTERVAL",
        "float",
        1.0,
        "Seconds between two passes of the session monitor (state, timeouts, reaping).",
    ),
    Setting(
        "SM_SESSION_START_TIMEOUT",
        "SM_SESSION_START_TIMEOUT",
        "float",
        60.0,
        "Seconds an interactive session may take to answer its health check; past it the run "
        "is stopped and marked failed, saying so in its log.",
    ),
    Setting(
        "SM_PROXY_START_WAIT",
        "SM_PROXY_START_WAIT",
        "float",
        5.0,
        "Seconds a request to a starting session waits for it before the 'starting' page.",
    ),
    # Several replicas
    Setting(
        "SM_REDIS_URL",
        "SM_REDIS_URL",
        "str",
        "",
        "Redis URL (redis://host:6379/0) shared by several manager processes: Socket.IO "
        "messages and live log lines reach browsers connected to any of them. Empty: one "
        "process.",
    ),
    Setting(
        "SM_LEADER_LEASE_SECONDS",
        "SM_LEADER_LEASE_SECONDS",
        "float",
        10.0,
        "Seconds the process running the session monitor and log pumps holds its lease; "
        "another process takes over this long after it dies.",
    ),
    Setting(
        "SM_METRICS_TOKEN",
        "SM_METRICS_TOKEN",
        "str",
        "",
        "Bearer token a Prometheus scraper sends to /metrics (admins may read it logged in).",
    ),
    Setting(
        "SM_MIGRATIONS_DIR",
        "SM_MIGRATIONS_DIR",
        "str",
        "",
        "Folder of the Alembic migrations; default migrations/ of this checkout (the manager "
        "image sets it).",
    ),
    Setting(
        "SM_PROXY_AUTHZ",
        "SM_PROXY_AUTHZ",
        "bool",
        False,
        "Answer /__sm/authz on session hosts: nginx (auth_request) or an ingress (auth-url) "
        "then carries the bytes to sessions and asks the manager only for the decision.",
    ),
    # Session hosts: where script interfaces are served (see README "Session hosts")
    Setting(
        "SM_SESSION_HOST_MODE",
        "SM_SESSION_HOST_MODE",
        "str",
        "per-session",
        "Where script interfaces are served: per-session (a host name of its own per user, "
        "script and project), shared (one host for all sessions, apart from the manager only) "
        "or manager (the manager's own origin: unsafe, warned about).",
    ),
    Setting(
        "SM_SESSION_DOMAIN",
        "SM_SESSION_DOMAIN",
        "str",
        "",
        "Domain under which session hosts are named (<label>.<domain>, wildcard DNS and "
        "certificate). Empty: subdomains of localhost when the manager is reached as "
        "localhost or 127.0.0.1; refused under any other name.",
    ),
    Setting(
        "SM_SESSION_SHARED_HOST",
        "SM_SESSION_SHARED_HOST",
        "str",
        "",
        "Host name of all sessions in shared mode; default sessions.<session domain>.",
    ),
    Setting(
        "SM_PUBLIC_URL",
        "SM_PUBLIC_URL",
        "str",
        "",
        "The manager's own URL as browsers reach it (https://sm.example.com); session hosts "
        "send visitors there to log in. Needed with SM_SESSION_DOMAIN; derived for localhost.",
    ),
    Setting(
        "SM_SESSION_TICKET_TTL",
        "SM_SESSION_TICKET_TTL",
        "float",
        30.0,
        "Seconds a single-use ticket into a session host stays valid.",
    ),
    # Data management and backup
    Setting(
        "SM_AUTO_BACKUP",
        "SM_AUTO_BACKUP",
        "bool",
        True,
        "Daily automatic backup.",
        "data_management.auto_backup",
        ("BACKUP_ENABLED",),
    ),
    Setting(
        "SM_BACKUP_INTERVAL_HOURS",
        "SM_BACKUP_INTERVAL_HOURS",
        "int",
        24,
        "Hours between automatic backups.",
        "data_management.backup_interval_hours",
    ),
    Setting(
        "SM_MAX_BACKUP_VERSIONS",
        "SM_MAX_BACKUP_VERSIONS",
        "int",
        30,
        "Backups kept.",
        "data_management.max_backup_versions",
    ),
    Setting(
        "SM_COMPRESS_BACKUPS",
        "SM_COMPRESS_BACKUPS",
        "bool",
        True,
        "Compress backups.",
        "data_management.compress_backups",
    ),
    Setting(
        "SM_BACKUP_SCHEDULE_TIME",
        "SM_BACKUP_SCHEDULE_TIME",
        "str",
        "02:00",
        "Time of day (HH:MM) of the daily backup.",
        "data_management.backup_schedule_time",
        ("BACKUP_SCHEDULE_TIME",),
    ),
    Setting(
        "SM_BACKUP_RETENTION_DAYS",
        "SM_BACKUP_RETENTION_DAYS",
        "int",
        30,
        "Days backups are kept.",
        "backup.retention_days",
        ("BACKUP_RETENTION_DAYS",),
    ),
    Setting(
        "SM_BACKUP_COMPRESSION",
        "SM_BACKUP_COMPRESSION",
        "str",
        "gzip",
        "Backup compression (gzip).",
        "backup.compression",
    ),
    Setting(
        "SM_BACKUP_EXCLUDE_PATTERNS",
        "SM_BACKUP_EXCLUDE_PATTERNS",
        "list",
        ["*.tmp", "*.log", "__pycache__"],
        "Patterns left out of backups (comma-separated).",
        "backup.exclude_patterns",
    ),
    Setting(
        "SM_MAX_BACKUP_SIZE_GB",
        "SM_MAX_BACKUP_SIZE_GB",
        "float",
        10.0,
        "Largest backup in GiB.",
        "backup.max_backup_size_gb",
    ),
    # Documentation
    Setting(
        "SM_MARKDOWN_EXTENSIONS",
        "SM_MARKDOWN_EXTENSIONS",
        "list",
        ["codehilite", "tables", "toc", "math"],
        "Markdown extensions for documentation.",
        "documentation.markdown_extensions",
    ),
    Setting(
        "SM_SUPPORTED_LANGUAGES",
        "SM_SUPPORTED_LANGUAGES",
        "list",
        ["en", "es", "it", "fr"],
        "Languages offered.",
        "documentation.supported_languages",
    ),
    Setting(
        "SM_DEFAULT_LANGUAGE",
        "SM_DEFAULT_LANGUAGE",
        "str",
        "en",
        "Language of new users and the login page.",
        "documentation.default_language",
        ("DEFAULT_LANGUAGE",),
    ),
    Setting(
        "SM_ENABLE_MATH_RENDERING",
        "SM_ENABLE_MATH_RENDERING",
        "bool",
        True,
        "Render math in documentation.",
        "documentation.enable_math_rendering",
    ),
    Setting(
        "SM_ENABLE_DIAGRAM_RENDERING",
        "SM_ENABLE_DIAGRAM_RENDERING",
        "bool",
        False,
        "Render diagrams in documentation.",
        "documentation.enable_diagram_rendering",
    ),
    # Tagging
    Setting(
        "SM_MAX_TAGS_PER_SCRIPT",
        "SM_MAX_TAGS_PER_SCRIPT",
        "int",
        20,
        "Tags a user may put on one script.",
        "tagging.max_tags_per_script",
    ),
    Setting(
        "SM_MAX_TAG_LENGTH",
        "SM_MAX_TAG_LENGTH",
        "int",
        30,
        "Longest tag.",
        "tagging.max_tag_length",
    ),
    Setting(
        "SM_ALLOWED_TAG_CHARS",
        "SM_ALLOWED_TAG_CHARS",
        "str",
        "alphanumeric_underscore_dash",
        "Characters allowed in tags.",
        "tagging.allowed_tag_chars",
    ),
    Setting(
        "SM_ENABLE_TAG_SUGGESTIONS",
        "SM_ENABLE_TAG_SUGGESTIONS",
        "bool",
        True,
        "Suggest existing tags.",
        "tagging.enable_tag_suggestions",
    ),
    # Scheduled runs
    Setting(
        "SM_SCHEDULER_INTERVAL",
        "SM_SCHEDULER_INTERVAL",
        "float",
        5.0,
        "Seconds between two looks for due scheduled runs (0 turns scheduled runs off).",
    ),
    Setting(
        "SM_MAX_SCHEDULES_PER_USER",
        "SM_MAX_SCHEDULES_PER_USER",
        "int",
        20,
        "Scheduled runs one user may have.",
    ),
    # Multi-user
    Setting(
        "SM_MAX_PROJECTS_PER_USER",
        "SM_MAX_PROJECTS_PER_USER",
        "int",
        50,
        "Projects a user may own.",
        "multi_user.max_projects_per_user",
        ("MAX_PROJECTS_PER_USER",),
    ),
    Setting(
        "SM_DEFAULT_PROJECT_NAME",
        "SM_DEFAULT_PROJECT_NAME",
        "str",
        "project_default",
        "Name of every user's first project.",
        "multi_user.default_project_name",
    ),
    Setting(
        "SM_AUTO_CREATE_DEFAULT_PROJECT",
        "SM_AUTO_CREATE_DEFAULT_PROJECT",
        "bool",
        True,
        "Create the default project on first use.",
        "multi_user.auto_create_default_project",
    ),
    Setting(
        "SM_USER_DATA_ISOLATION",
        "SM_USER_DATA_ISOLATION",
        "bool",
        True,
        "Keep each user's data apart.",
        "multi_user.user_data_isolation",
    ),
    # Log retention by role
    Setting(
        "SM_LOG_MAX_BYTES",
        "SM_LOG_MAX_BYTES",
        "int",
        52428800,
        "Most bytes of one run's output, in its capture file and in its log file; past it a "
        "'[log truncated]' note ends the stored output (in the log, as log_truncated in the API, "
        "on the log page) and further output is read and dropped (the session goes on).",
    ),
    Setting(
        "SM_LOG_MAX_LINE",
        "SM_LOG_MAX_LINE",
        "int",
        16384,
        "Longest output line kept, in bytes; a longer line keeps its head and a '[line cut: ...]' "
        "marker, the rest up to its newline is dropped as it comes (never held in memory).",
    ),
    Setting(
        "SM_LOG_ROW_MAX_BYTES",
        "SM_LOG_ROW_MAX_BYTES",
        "int",
        2097152,
        "Bytes of stdout and of stderr kept on the execution row (previews, search); the log "
        "file keeps everything.",
    ),
    Setting(
        "SM_LOG_BATCH_INTERVAL",
        "SM_LOG_BATCH_INTERVAL",
        "float",
        0.05,
        "Seconds between two log batches: files flushed, new lines sent to live watchers.",
    ),
    Setting(
        "SM_LOG_READ_PACE",
        "SM_LOG_READ_PACE",
        "float",
        0.01,
        "Seconds a log pump lets trickling output gather before reading on (less CPU per line).",
    ),
    Setting(
        "SM_LOG_DRAIN_TIMEOUT",
        "SM_LOG_DRAIN_TIMEOUT",
        "float",
        10.0,
        "Seconds an ended session's pump may go without progress before the session is removed "
        "anyway (a long backlog is read to its end while it progresses).",
    ),
    Setting(
        "SM_SOCKETIO_CORS_ORIGINS",
        "SM_SOCKETIO_CORS_ORIGINS",
        "list",
        [],
        "Other origins allowed to open Socket.IO connections (empty: same origin only).",
    ),
    Setting(
        "SM_LOG_QUOTA_MB",
        "SM_LOG_QUOTA_MB",
        "int",
        500,
        "Execution log storage per user in MB (log files + output kept in the database); at it "
        "new runs are refused (507) until old ones are deleted; 0: no quota.",
        "logs.quota_mb",
    ),
    Setting(
        "SM_LOG_QUOTA_WARN_PERCENT",
        "SM_LOG_QUOTA_WARN_PERCENT",
        "int",
        80,
        "Share of the log quota at which a user is warned.",
        "logs.quota_warn_percent",
    ),
    Setting(
        "SM_RETENTION_TIME",
        "SM_RETENTION_TIME",
        "str",
        "03:00",
        "Local time (HH:MM) of the daily log retention job; empty disables it.",
        "logs.retention_time",
    ),
    Setting(
        "SM_RETENTION_DAYS_VIEWER",
        "SM_RETENTION_DAYS_VIEWER",
        "int",
        7,
        "Days a viewer's execution logs are kept.",
        "logs.retention_days.viewer",
    ),
    Setting(
        "SM_RETENTION_DAYS_OPERATOR",
        "SM_RETENTION_DAYS_OPERATOR",
        "int",
        30,
        "Days an operator's execution logs are kept.",
        "logs.retention_days.operator",
    ),
    Setting(
        "SM_RETENTION_DAYS_DEVELOPER",
        "SM_RETENTION_DAYS_DEVELOPER",
        "int",
        90,
        "Days a developer's execution logs are kept.",
        "logs.retention_days.developer",
    ),
    Setting(
        "SM_RETENTION_DAYS_ADMIN",
        "SM_RETENTION_DAYS_ADMIN",
        "int",
        365,
        "Days an admin's execution logs are kept.",
        "logs.retention_days.admin",
    ),
)


def _from_json(document: Mapping[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every setting from the environment, the JSON file and the defaults.

    Raises ConfigError naming the variable when a value cannot be used.
    """
    return resolve_settings(environ)[0]


def resolve_settings(
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every setting's value, and where it came from: ``env:NAME``, ``file:json.path`` or
    ``default`` (the admin panel's effective configuration shows both)."""
    env = os.environ if environ is None else environ
    document: Mapping[str, Any] = {}
    config_file = env.get("SM_CONFIG_FILE")
    if config_file:
        try:
            document = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"SM_CONFIG_FILE {config_file!r} cannot be read: {exc}") from exc
        if not isinstance(document, Mapping):
            raise ConfigError(f"SM_CONFIG_FILE {config_file!r} must hold a JSON object")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        raw: Any = None
        source = ""
        for name in (setting.env, *setting.aliases):
            if name in env:
                raw, source = env[name], name
                break
        if source == "" and setting.json_path:
            with contextlib.suppress(KeyError):
                raw, source = _from_json(document, setting.json_path), setting.json_path
        if source == "":
            values[setting.key] = setting.default
            sources[setting.key] = "default"
            continue
        try:
            values[setting.key] = CASTS[setting.kind](raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        sources[setting.key] = f"env:{source}" if source in env else f"file:{source}"
    return values, sources


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | seed alias / JSON key | what |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, list):
            default = ",".join(default) or None
        shown = "—" if default is None else f"`{default}`"
        names = [f"`{alias}`" for alias in setting.aliases]
        if setting.json_path:
            names.append(f"`{setting.json_path}`")
        rows.append(f"| `{setting.env}` | {shown} | {', '.join(names) or '—'} | {setting.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
