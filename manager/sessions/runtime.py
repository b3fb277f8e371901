"""Wire the session machinery into the app: backend, service, monitor, proxy resolver."""

from __future__ import annotations

import atexit
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from flask import Flask, current_app

from manager import logs
from manager.logs.locks import default_holder
from manager.sessions.backend import SessionBackend
from manager.sessions.environments import Environments, EnvPaths, docker_client, resolve_base_image
from manager.sessions.monitor import START_DEADLINE, Activity, Monitor, SessionMonitor
from manager.sessions.pool import DEFAULT_IDLE_SECONDS, WarmPool
from manager.sessions.resolver import SessionResolver
from manager.sessions.service import SessionConfig, SessionService

log = logging.getLogger("scriptsmanager")


@dataclass
class Runtime:
    backend: SessionBackend
    service: SessionService
    activity: Activity
    monitor: Monitor
    environments: Environments
    background: SessionMonitor | None = None


def make_backend(app: Flask) -> SessionBackend:
    kind = app.config["SM_SESSION_BACKEND"]
    if kind == "docker":
        from manager.sessions.capture import CaptureLimits
        from manager.sessions.docker import DockerBackend

        log_settings = logs.LogSettings.from_config(app.config)
        return DockerBackend(
            instance=app.config["SM_INSTANCE"],
            network_prefix=app.config["SM_NETWORK_PREFIX"],
            egress_allow=app.config.get("SM_EGRESS_ALLOW", []),
            # Each run's output is captured into <SM_LOG_DIR>/capture/<uuid>/ (capture.py).
            capture_dir=log_settings.log_dir / "capture",
            capture_limits=CaptureLimits(log_settings.max_bytes, log_settings.max_line),
        )
    if kind == "kubernetes":  # the client is imported only here: an optional dependency
        from manager.sessions.capture import CaptureLimits
        from manager.sessions.kubernetes import KubernetesBackend

        log_settings = logs.LogSettings.from_config(app.config)
        return KubernetesBackend.from_config(
            app.config,
            capture_dir=log_settings.log_dir / "capture",  # on a claim of SM_KUBE_VOLUMES
            capture_limits=CaptureLimits(log_settings.max_bytes, log_settings.max_line),
        )
    raise ValueError(f"SM_SESSION_BACKEND={kind!r} is not known (use docker or kubernetes)")


def init_app(app: Flask, backend: SessionBackend | None = None) -> Runtime:
    """Attach the runtime; ``backend`` (tests) replaces the configured one."""
    if not app.config.get("SM_RESOLVED_BASE_IMAGE"):
        setting = app.config["SM_BASE_IMAGE"]
        client = docker_client() if setting == "auto" else None
        app.config["SM_RESOLVED_BASE_IMAGE"] = resolve_base_image(setting, client)
    config = SessionConfig.from_app_config(app.config)
    chosen = backend if backend is not None else app.config.get("SM_TEST_BACKEND")
    if chosen is None:
        chosen = make_backend(app)
    service = SessionService(chosen, config, logs.init_app(app))
    activity = Activity()
    environments = Environments(
        EnvPaths(
            envs_dir=config.envs_dir,
            runner_dir=config.runner_dir,
            wheelhouse=Path(app.config["SM_WHEELHOUSE_DIR"]),
            base_image=config.base_image,
        )
    )
    runtime = Runtime(
        chosen,
        service,
        activity,
        Monitor(
            service,
            activity,
            start_deadline=float(app.config.get("SM_SESSION_START_TIMEOUT", START_DEADLINE)),
        ),
        environments,
    )
    app.extensions["sm_sessions"] = runtime
    app.extensions["sm_proxy_resolver"] = SessionResolver(
        app,
        activity,
        config.admin_inspect,
        backend=chosen,
        start_wait=app.config.get("SM_PROXY_START_WAIT", 5.0),
    )
    background = None
    if app.config.get("SM_START_BACKGROUND"):
        background = SessionMonitor(
            app,
            runtime.monitor,
            app.config["SM_MONITOR_INTERVAL"],
            lease=float(app.config.get("SM_LEADER_LEASE_SECONDS", 10.0)),
        )
    # The warm pool: filled by the monitor's leader, under the leader's name (pool.py); a
    # group's pool size is 0 (no pool) until an admin sets it.
    service.pool = WarmPool(
        service,
        owner=background.holder if background else f"{default_holder()}:{uuid4().hex[:8]}",
        idle_seconds=int(app.config.get("SM_POOL_IDLE_SECONDS", DEFAULT_IDLE_SECONDS)),
    )
    if background is not None:
        runtime.background = background
        background.start()
        atexit.register(_release_pool, app, background)
    return runtime


def _release_pool(app: Flask, background: SessionMonitor) -> None:
    """At exit: stop the monitor and remove the standbys this process filled."""
    from manager.extensions import db

    background.stop()
    pool = background.monitor.service.pool
    if pool is None or not background.leader:
        return
    try:
        with app.app_context():
            pool.release_all(db.session)
            db.session.remove()
    except Exception:  # at exit: the database or engine may be gone already
        log.warning("could not remove the warm pool's standbys at exit", exc_info=True)


def runtime() -> Runtime:
    found: Any = current_app.extensions["sm_sessions"]
    return found
