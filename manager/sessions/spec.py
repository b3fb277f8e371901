"""Pure builders for one session: the container spec and the runner's context document.

No I/O here: the caller creates the workspace, writes the context file, and hands the paths in.
Both are plain functions, so every rule (mounts, labels, network) is tested without an engine.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from manager.sessions.backend import (
    LABEL_EXECUTION,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_SCRIPT,
    LABEL_USER,
    Mount,
    SessionSpec,
)
from manager.sessions.limits import Limits

SESSION_NAME_PREFIX = "sm-session-"
SCRIPTS_DIR = "/scripts"
WORKSPACE_DIR = "/workspace"
CONTEXT_FILE = "/run/sm/context.json"
RUNNER_PORT = 8080
RUNNER_USER = "10001:10001"
LOG_MAX_SIZE = "10m"
# A pooled container waits for its context in a folder of its own (the file comes at hand-over).
POOL_CONTEXT_DIR = "/run/sm/slot"
POOL_CONTEXT_FILE = f"{POOL_CONTEXT_DIR}/context.json"
POOL_EXECUTION_PREFIX = "pool-"  # its execution label, capture folder and name: pool-<slot>
LABEL_POOL_SLOT = "io.scriptsmanager.pool-slot"
LABEL_POOL_GROUP = "io.scriptsmanager.pool-group"
_CORE_LABELS = frozenset(
    {LABEL_MANAGED, LABEL_EXECUTION, LABEL_USER, LABEL_SCRIPT, LABEL_PROJECT, LABEL_INSTANCE}
)


def session_name(execution_uuid: str) -> str:
    """The container name of an execution: ``sm-session-<uuid without dashes>``."""
    compact = execution_uuid.replace("-", "").lower()
    if not compact or not compact.isalnum():
        raise ValueError(f"execution_uuid: {execution_uuid!r} is not a UUID")
    return f"{SESSION_NAME_PREFIX}{compact}"


def script_path_in_container(script_filename: str) -> str:
    """Where the runner finds the script: ``/scripts/<file>``; the file must stay in the folder."""
    path = PurePosixPath(script_filename)
    if not script_filename or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"script_filename: {script_filename!r} must be a path inside the group")
    return posixpath.join(SCRIPTS_DIR, path.as_posix())


def session_network(limits: Limits, *, interactive: bool) -> str:
    """The network policy a session runs with.

    "none" means no egress. A batch run then gets no network at all; an interactive one still
    needs the manager to reach its web server, so it joins the internal network, where it can
    reach nothing else either.
    """
    if limits.network == "none" and interactive:
        return "internal"
    return limits.network


def _absolute(field: str, path: str) -> str:
    if not PurePosixPath(path).is_absolute():
        raise ValueError(f"{field}: {path!r} must be an absolute host path")
    return str(path)


def build_spec(
    *,
    execution_uuid: str,
    image: str,
    script_host_dir: str,
    script_filename: str,
    workspace_host_dir: str,
    context_host_file: str,
    limits: Limits,
    user_id: int | str,
    script_id: int | str,
    project_id: int | str,
    interactive: bool = True,
    labels_extra: Mapping[str, str] | None = None,
    instance: str = "default",
    run_timeout: int | None = None,
) -> SessionSpec:
    """Build the container spec of one session.

    Mounts the group's script folder read-only at ``/scripts``, the user's own project folder
    read-write at ``/workspace`` and the context file read-only at ``/run/sm/context.json``;
    nothing else from the host. Raises ValueError naming the bad argument.
    """
    script_path_in_container(script_filename)  # validates the name
    extra = dict(labels_extra or {})
    clash = sorted(_CORE_LABELS & set(extra))
    if clash:
        raise ValueError(f"labels_extra: {', '.join(clash)} are set by the manager")
    labels = {
        **extra,
        LABEL_MANAGED: "true",
        LABEL_EXECUTION: execution_uuid,
        LABEL_USER: str(user_id),
        LABEL_SCRIPT: str(script_id),
        LABEL_PROJECT: str(project_id),
        LABEL_INSTANCE: instance,
    }
    mounts = (
        Mount(_absolute("script_host_dir", script_host_dir), SCRIPTS_DIR, read_only=True),
        Mount(_absolute("workspace_host_dir", workspace_host_dir), WORKSPACE_DIR, read_only=False),
        Mount(_absolute("context_host_file", context_host_file), CONTEXT_FILE, read_only=True),
    )
    return SessionSpec(
        name=session_name(execution_uuid),
        image=image,
        execution_uuid=execution_uuid,
        labels=labels,
        mounts=mounts,
        environment={"SM_CONTEXT_FILE": CONTEXT_FILE},
        user=RUNNER_USER,
        memory=limits.memory,
        cpus=limits.cpus,
        pids=limits.pids,
        tmpfs_size=limits.tmpfs,
        network=session_network(limits, interactive=interactive),
        port=RUNNER_PORT,
        log_max_size=LOG_MAX_SIZE,
        run_timeout=run_timeout,
    )


def context_document(
    *,
    script_filename: str,
    parameters: Mapping[str, Any],
    user_id: int | str,
    user_level: str,
    project_id: int | str,
    project_name: str,
    user_theme: str = "light",
    user_language: str = "en",
    brand: Mapping[str, Any] | None = None,
    prefix: str = "",
    port: int = RUNNER_PORT,
    session: str = "",
) -> dict[str, Any]:
    """The runner's context JSON (see ``runner-image/smrunner/context.py``).

    ``ENVIRONMENT`` values are strings, as the seed's environment variables were; parameters
    keep their JSON types, so scripts get them typed. ``session`` (the execution uuid) is what
    the runner checks the proxy's ``X-SM-Session`` header against.
    """
    environment = {
        "USER_ID": user_id,
        "USER_LEVEL": user_level,
        "PROJECT_ID": project_id,
        "PROJECT_NAME": project_name,
        "USER_THEME": user_theme,
        "USER_LANGUAGE": user_language,
    }
    return {
        "script_path": script_path_in_container(script_filename),
        "workspace_path": WORKSPACE_DIR,
        "parameters": dict(parameters),
        "environment": {key: str(value) for key, value in environment.items()},
        "brand": dict(brand or {}),
        "prefix": prefix.rstrip("/"),
        "port": port,
        "session": session,
    }


def pool_execution_id(slot: str) -> str:
    """The execution label of a pooled container: ``pool-<slot>`` (fixed at creation)."""
    if not slot or not slot.isalnum():
        raise ValueError(f"slot: {slot!r} must be letters and digits")
    return f"{POOL_EXECUTION_PREFIX}{slot}"


def build_pool_spec(
    *,
    slot: str,
    image: str,
    script_host_dir: str,
    workspace_host_dir: str,
    slot_host_dir: str,
    limits: Limits,
    user_id: int | str,
    group_id: int | str,
    project_id: int | str,
    interactive: bool,
    instance: str = "default",
) -> SessionSpec:
    """The spec of a standby container for one (group, user, project): ``build_spec``'s.

    Same image, mounts, limits and network as a cold session of that group for that user and
    project, except the context: the slot's own folder is mounted read-only at
    ``/run/sm/slot``, where the manager writes ``context.json`` at hand-over, and the runner
    waits for it (``SM_CONTEXT_WAIT=1``). Labelled with the slot (the run is not known yet).
    """
    execution_id = pool_execution_id(slot)
    cold = build_spec(
        execution_uuid=execution_id,
        image=image,
        script_host_dir=script_host_dir,
        script_filename="pool",
        workspace_host_dir=workspace_host_dir,
        context_host_file=_absolute("slot_host_dir", slot_host_dir),
        limits=limits,
        user_id=user_id,
        script_id="",
        project_id=project_id,
        interactive=interactive,
        labels_extra={LABEL_POOL_SLOT: slot, LABEL_POOL_GROUP: str(group_id)},
        instance=instance,
    )
    mounts = tuple(
        dataclasses.replace(mount, target=POOL_CONTEXT_DIR)
        if mount.target == CONTEXT_FILE
        else mount
        for mount in cold.mounts
    )
    environment = {"SM_CONTEXT_FILE": POOL_CONTEXT_FILE, "SM_CONTEXT_WAIT": "1"}
    return dataclasses.replace(cold, mounts=mounts, environment=environment)
