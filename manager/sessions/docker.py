"""``DockerBackend``: each session is one hardened container on the local Docker engine.

Hardening does not depend on the spec or the group: every container runs as uid 10001 with all
capabilities dropped, no-new-privileges, a read-only root filesystem, a small noexec ``/tmp``, an
init process, pids/memory/CPU limits (no swap), a capped log, a private IPC namespace, no published
port and no Docker socket. Containers are not auto-removed: the reaper reads the exit status and
the output first, then calls ``remove``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.types import LogConfig
from docker.types import Mount as DockerMount

from manager.sessions.backend import (
    LABEL_EXECUTION,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    BackendError,
    ExitStatus,
    Handle,
    ImageMissing,
    LogLine,
    SessionBackend,
    SessionSpec,
    Target,
)
from manager.sessions.capture import (
    CAPTURE_FILE,
    CAPTURE_MOUNT,
    NETWORK_READY_ENV,
    NETWORK_READY_FILE,
    CaptureLimits,
    read_capture,
)
from manager.sessions.egress import parse_allow_list
from manager.sessions.network import (
    DEFAULT_PREFIX,
    NetworkStatus,
    ensure_networks,
)
from manager.sessions.spec import LABEL_POOL_SLOT
from manager.sessions.workspace import prepare_workspace, write_context_file  # noqa: F401

log = logging.getLogger(__name__)

RUNNER_UID = 10001
LABEL_PORT = "io.scriptsmanager.port"
# Sessions are the first thing the host's OOM killer should pick, never the manager or database.
OOM_SCORE_ADJ = 500
# The CPU limit is the group's share (``cpus``) of each 500 ms, not of each 100 ms (the kernel's
# default period, what ``nano_cpus`` sets): the same share of the host, but the runner's start
# (Python and Flask, about 120 ms of CPU) runs in one go instead of being throttled at 50 ms per
# 100 ms under a 0.5-CPU limit (importing the runner's modules in a 0.5-CPU container took
# 218 ms p50 with the 100 ms period, 120 ms with this one and 112 ms with no limit, load 4).
# Over any whole period a session gets no more CPU than before.
CPU_PERIOD_US = 500_000
MIN_CPU_QUOTA_US = 1_000  # the kernel refuses less
NETWORK_RECHECK_SECONDS = 60.0  # re-assert the networks and firewall rule at most this often
_ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
_RUNNING = {"running", "paused", "restarting"}


def _engine_unreachable(exc: Exception) -> BackendError:
    message = "The container engine is not reachable; try again shortly."
    return BackendError(message, detail=str(exc))


def _is_conflict(exc: docker.errors.APIError) -> bool:
    return exc.status_code == 409


def _check_user(user: str) -> str:
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not gid.isdigit() or int(uid) == 0 or int(gid) == 0:
        raise BackendError("The session could not be started.", detail=f"refusing user {user!r}")
    return user


# --------------------------------------------------------------------------- log frames

_STREAMS = {1: "stdout", 2: "stderr"}


def parse_timestamp(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (the engine's ``...123456789Z``).

    Raises ValueError when ``stamp`` is not one. Python's datetime stops at microseconds, and two
    lines of one session are often less than a microsecond apart: hence integers.
    """
    whole, dot, rest = stamp.strip().partition(".")
    digits = ""
    if dot:  # split "123456789Z" into the fraction and the zone
        count = len(rest) - len(rest.lstrip("0123456789"))
        digits, whole = rest[:count], whole + rest[count:]
    seconds = int(datetime.fromisoformat(whole).timestamp())
    return seconds * 1_000_000_000 + int(digits[:9].ljust(9, "0") or "0")


def _read_exactly(raw: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _Unfinished:
    """A line still waiting for its newline: its head (up to the cap) and how much was dropped."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.kept = 0
        self.dropped = 0


def read_frames(raw: Any, max_line: int = 16 * 1024) -> Iterator[LogLine]:
    """Turn the engine's multiplexed log stream (``timestamps=1``) into LogLines, in order.

    Each frame is ``[stream, 0, 0, 0, size (4 bytes)]`` then ``<timestamp> <text>``. The engine
    splits lines over 16 KiB into several frames, only the last ending in a newline: those are
    joined up to ``max_line`` bytes; the rest is dropped as it comes, with a cut marker, so a
    line of any length costs at most ``max_line`` of memory and linear time. A line keeps its
    last part's timestamp, so resuming after it skips every part.
    """
    pending: dict[str, _Unfinished] = {}
    last_stamp: dict[str, str] = {}

    def add(stream: str, data: bytes) -> None:
        line = pending.setdefault(stream, _Unfinished())
        room = max(max_line - line.kept, 0)
        if room and data:
            line.parts.append(data[:room])
            line.kept += min(room, len(data))
        line.dropped += max(len(data) - room, 0)

    def finish(stream: str, tail: bytes) -> LogLine:
        add(stream, tail)
        line = pending.pop(stream)
        text = b"".join(line.parts).decode("utf-8", errors="replace")
        if line.dropped:
            total = line.kept + line.dropped
            text += f" [line cut: {total} bytes, SM_LOG_MAX_LINE={max_line}]"
        return LogLine(stream, text, last_stamp[stream])

    while True:
        header = _read_exactly(raw, 8)
        if len(header) < 8:
            break
        kind, size = struct.unpack(">BxxxL", header)
        payload = _read_exactly(raw, size)
        stream = _STREAMS.get(kind)
        if stream is None:
            continue
        stamp, _, text = payload.partition(b" ")
        last_stamp[stream] = stamp.decode("ascii", errors="replace")
        parts = text.split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield finish(stream, part)
        if rest:
            add(stream, rest)
    for stream in list(pending):  # a last line without a newline
        yield finish(stream, b"")


def cpu_quota(cpus: float) -> int:
    """Microseconds of CPU a session may use per ``CPU_PERIOD_US`` (``cpus`` CPUs' worth)."""
    return max(MIN_CPU_QUOTA_US, int(round(cpus * CPU_PERIOD_US)))


def container_options(spec: SessionSpec, network: str | None) -> dict[str, Any]:
    """The ``containers.create`` arguments for ``spec`` (pure; ``network`` None: no network)."""
    mounts = [
        DockerMount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
        for m in spec.mounts
    ]
    options: dict[str, Any] = {
        "name": spec.name,
        "labels": {**spec.labels, LABEL_PORT: str(spec.port)},
        "environment": dict(spec.environment),
        "mounts": mounts,
        "user": _check_user(spec.user),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        # noexec: nothing downloaded or written at run time can be executed directly.
        "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={spec.tmpfs_size}"},
        "init": True,  # forwards SIGTERM to the runner and reaps zombies
        "pids_limit": spec.pids,
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,  # equal: no swap
        "cpu_period": CPU_PERIOD_US,
        "cpu_quota": cpu_quota(spec.cpus),
        "oom_score_adj": OOM_SCORE_ADJ,
        "log_config": LogConfig(
            type="json-file", config={"max-size": spec.log_max_size, "max-file": "1"}
        ),
        "ipc_mode": "private",
        # The private /dev/shm is a tmpfs like /tmp (noexec by default): give it the same cap.
        "shm_size": spec.tmpfs_size,
        "privileged": False,
        "auto_remove": False,
        "stop_signal": "SIGTERM",
        "hostname": "session",
    }
    if spec.command:
        options["command"] = list(spec.command)
    if network is None:
        options["network_mode"] = "none"
    else:
        options["network"] = network
    return options


def prepare_capture_folder(folder: Path) -> Path:
    """A run's capture folder, writable by the session's uid (as ``prepare_workspace`` does)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, RUNNER_UID, RUNNER_UID)
        folder.chmod(0o700)
    elif os.geteuid() != RUNNER_UID:
        folder.chmod(0o777)
    return folder


class DockerBackend(SessionBackend):
    """Sessions as containers on the local Docker engine (see the module docstring)."""

    pool_capable = True  # standbys can be started ahead and handed over (sessions/pool.py)

    def __init__(
        self,
        client: Any = None,
        *,
        instance: str = "default",
        network_prefix: str = DEFAULT_PREFIX,
        bridge_prefix: str | None = None,
        egress_allow: Sequence[str] = (),
        capture_dir: str | Path | None = None,
        capture_limits: CaptureLimits | None = None,
    ) -> None:
        """``capture_dir``: where each run gets its capture folder (``<capture_dir>/<uuid>``,
        bind-mounted into the session); None reads the engine's own log, which drops output a
        slow reader has not read yet (for tests of the engine only)."""
        self._client = client
        self.capture_dir = Path(capture_dir).resolve() if capture_dir is not None else None
        self.capture_limits = capture_limits or CaptureLimits()
        self.instance = instance
        self.network_prefix = network_prefix
        self.bridge_prefix = bridge_prefix
        self.egress_allow = tuple(egress_allow)
        parse_allow_list(self.egress_allow)  # a wrong entry fails at start-up, not at a run
        self._networks: NetworkStatus | None = None
        self._networks_checked = 0.0
        self._networks_lock = threading.Lock()  # one re-check at a time; see network_status

    @property
    def client(self) -> Any:
        """The Docker client, connected on first use."""
        if self._client is None:
            try:
                self._client = docker.from_env()
            except _ENGINE_ERRORS as exc:
                raise _engine_unreachable(exc) from exc
        return self._client

    def network_status(self) -> NetworkStatus:
        """Ensure the session networks and host firewall rule (re-checked once a minute).

        One caller re-checks; the others go on with the last answer meanwhile. Every caller
        re-checking at once queued them all on the firewall's lock, a second or more each under
        load: dashboards and executes waited a minute and more (bench/load).
        """
        known = self._networks
        if (
            known is not None
            and time.monotonic() - self._networks_checked <= NETWORK_RECHECK_SECONDS
        ):
            return known
        # The first answer is waited for (everyone needs it); a re-check in progress is not.
        if not self._networks_lock.acquire(blocking=known is None):
            assert known is not None
            return known
        try:
            if self._networks is not None and (
                time.monotonic() - self._networks_checked <= NETWORK_RECHECK_SECONDS
            ):
                return self._networks  # re-checked while this caller waited
            try:
                self._networks = ensure_networks(
                    self.client, self.network_prefix, self.bridge_prefix, self.egress_allow
                )
            except _ENGINE_ERRORS as exc:
                raise _engine_unreachable(exc) from exc
            self._networks_checked = time.monotonic()
            return self._networks
        finally:
            self._networks_lock.release()

    # ------------------------------------------------------------------ lifecycle

    def start(self, spec: SessionSpec) -> Handle:
        """Create and start the session's container.

        A container with a network and a capture folder is started off its network and joined
        to it right after: the engine's network set-up (an endpoint, the embedded DNS, the
        ``libnetwork-setkey`` hook, ~80 ms here) then runs beside the runner's Python start
        rather than before it. The runner imports Flask meanwhile and runs the script only once
        the manager created ``network-ready`` in the capture folder, after the join.
        """
        network = None if spec.network == "none" else self.network_status().networks[spec.network]
        options = container_options(spec, network)
        capture = self._capture_folder(spec.execution_uuid)
        if capture is not None:
            try:
                prepare_capture_folder(capture)
            except OSError as exc:
                raise BackendError(
                    "The session's output folder could not be created.", detail=str(exc)
                ) from exc
            options["mounts"].append(
                DockerMount(target=CAPTURE_MOUNT, source=str(capture), type="bind", read_only=False)
            )
            options["environment"].update(self.capture_limits.environment())
            if network is not None:
                options["environment"][NETWORK_READY_ENV] = f"{CAPTURE_MOUNT}/{NETWORK_READY_FILE}"
        try:
            container = self.client.containers.create(spec.image, **options)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(
                f"The image {spec.image} is not built; an admin can build it under"
                " Admin → Environments.",
                detail=str(exc),
            ) from exc
        except docker.errors.APIError as exc:
            message = (
                "A session for this run already exists."
                if _is_conflict(exc)
                else "The session could not be created."
            )
            raise BackendError(message, detail=str(exc.explanation or exc)) from exc
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc
        # Created on its network (so its DNS settings are the network's), started off it.
        join_late = capture is not None and network is not None and self._leave(container, network)
        try:
            container.start()
            if join_late:
                self.client.api.connect_container_to_network(container.id, network)
            if capture is not None and network is not None:
                (capture / NETWORK_READY_FILE).touch()
        except (*_ENGINE_ERRORS, OSError) as exc:
            self._remove_quietly(container)
            self._remove_capture(spec.execution_uuid)
            detail = str(getattr(exc, "explanation", None) or exc)
            raise BackendError("The session could not be started.", detail=detail) from exc
        log.info("started %s (%s) for execution %s", spec.name, spec.image, spec.execution_uuid)
        state = {"container_id": container.id, "name": spec.name, "network": network,
                 "port": spec.port}  # fmt: skip
        return Handle(execution_uuid=spec.execution_uuid, state=state)

    def _leave(self, container: Any, network: str) -> bool:
        """Take a created container off its network before its start; False when the engine
        will not (it then starts on it, as before)."""
        try:
            self.client.api.disconnect_container_from_network(container.id, network)
        except _ENGINE_ERRORS as exc:
            log.info("starting %s on its network: %s", container.name, exc)
            return False
        return True

    def _container(self, handle: Handle) -> Any:
        """The container of ``handle``; raises docker.errors.NotFound, BackendError."""
        ref = handle.state.get("container_id") or handle.state.get("name")
        if not ref:
            raise docker.errors.NotFound(f"no container recorded for {handle.execution_uuid}")
        try:
            return self.client.containers.get(ref)
        except docker.errors.NotFound:
            raise
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc

    def address(self, handle: Handle) -> Target | None:
        try:
            container = self._container(handle)
        except docker.errors.NotFound:
            return None
        if container.attrs["State"]["Status"] != "running":
            return None
        networks = container.attrs["NetworkSettings"].get("Networks") or {}
        wanted = handle.state.get("network")
        candidates = [networks[wanted]] if wanted in networks else list(networks.values())
        for settings in candidates:
            if settings.get("IPAddress"):
                return Target(settings["IPAddress"], int(handle.state.get("port") or 8080))
        return None

    def poll(self, handle: Handle) -> ExitStatus | None:
        try:
            container = self._container(handle)
        except docker.errors.NotFound:
            return ExitStatus(None, error="gone")
        state = container.attrs["State"]
        if state["Status"] in _RUNNING:
            return None
        if state["Status"] == "created":
            # start() failed or the manager died between create and start: it never ran.
            return ExitStatus(None, error=state.get("Error") or "never started")
        return ExitStatus(
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            error=state.get("Error") or None,
        )

    def stop(self, handle: Handle, *, now: bool = False, timeout: float = 10.0) -> None:
        try:
            container = self._container(handle)
            if now:
                container.kill()
            else:
                # The engine takes whole seconds.
                container.stop(timeout=max(0, math.ceil(timeout)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if not _is_conflict(exc):  # 409: not running any more
                raise BackendError("The session could not be stopped.", detail=str(exc)) from exc
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc

    def remove(self, handle: Handle) -> None:
        try:
            self._container(handle).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if not _is_conflict(exc):  # 409: removal already in progress
                raise BackendError("The session could not be removed.", detail=str(exc)) from exc
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc
        self._remove_capture(handle.execution_uuid)

    def _remove_quietly(self, container: Any) -> None:
        try:
            container.remove(force=True, v=True)
        except _ENGINE_ERRORS as exc:
            log.warning("could not remove the failed container %s: %s", container.name, exc)

    # ------------------------------------------------------------------ output and state

    def _capture_folder(self, execution_uuid: str) -> Path | None:
        if self.capture_dir is None or not execution_uuid:
            return None
        if not execution_uuid.replace("-", "").isalnum():
            raise BackendError("The session could not be started.",
                               detail=f"bad execution uuid {execution_uuid!r}")  # fmt: skip
        return self.capture_dir / execution_uuid

    def rename_capture(self, old: str, new: str) -> None:
        """Move a standby's capture folder to its run's name (``pool-<slot>`` → ``<uuid>``).

        The session's bind mount follows the folder: a rename on one filesystem keeps the
        inode. Raises OSError.
        """
        source, target = self._capture_folder(old), self._capture_folder(new)
        if source is not None and target is not None:
            os.rename(source, target)

    def _remove_capture(self, execution_uuid: str) -> None:
        folder = self._capture_folder(execution_uuid)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def logs(
        self, handle: Handle, *, since: str | None = None, follow: bool = False
    ) -> Iterator[LogLine]:
        """The run's capture file (see ``backend.SessionBackend.logs``); the engine's log when
        the session has no capture (no capture folder, or the runner failed before starting
        its capture). ``since`` is exclusive, nanosecond precise."""
        folder = self._capture_folder(handle.execution_uuid)
        if folder is None:
            try:
                container = self._container(handle)
            except docker.errors.NotFound:
                return iter(())
            return self._log_lines(container.id, since, follow)
        return self._captured(handle, folder / CAPTURE_FILE, since, follow)

    def _captured(
        self, handle: Handle, path: Path, since: str | None, follow: bool
    ) -> Iterator[LogLine]:
        def running() -> bool:
            return self.poll(handle) is None

        def overflow() -> None:
            log.warning("session %s wrote past its log cap; stopping it", handle.execution_uuid)
            self.stop(handle, now=True)

        wait = 0.02
        while not path.exists():
            started_without = not path.parent.is_dir()  # by a manager without capture
            if started_without or not (follow and running()):
                # No capture (or the runner failed before starting it): the engine's log.
                try:
                    container = self._container(handle)
                except docker.errors.NotFound:
                    return
                yield from self._log_lines(container.id, since, follow and started_without)
                return
            time.sleep(wait)
            wait = min(wait * 2, 0.5)
        yield from read_capture(path, self.capture_limits, since=since, follow=follow,
                                running=running, on_overflow=overflow)  # fmt: skip

    def _log_lines(self, container_id: str, since: str | None, follow: bool) -> Iterator[LogLine]:
        api = self.client.api
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1,
                                  "follow": int(follow), "tail": "all"}  # fmt: skip
        after = parse_timestamp(since) if since else None
        if after is not None:
            # The engine filters by whole seconds here (inclusive); the rest is filtered below.
            params["since"] = max(1, after // 1_000_000_000)
        # The SDK's logs() drops which stream a frame came from; read the multiplexed frames.
        url = api._url("/containers/{0}/logs", container_id)
        try:
            response = api._get(url, params=params, stream=True)
            api._raise_for_status(response)
        except docker.errors.NotFound:
            return
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc
        if follow:  # a quiet session must not time the stream out
            api._disable_socket_timeout(api._get_raw_response_socket(response))
        try:
            for line in read_frames(response.raw, self.capture_limits.max_line):
                if after is None or parse_timestamp(line.timestamp or "") > after:
                    yield line
        finally:
            response.close()

    def stats(self, handle: Handle) -> dict[str, Any]:
        try:
            raw = self._container(handle).stats(stream=False, one_shot=True)
        except (BackendError, *_ENGINE_ERRORS):  # gone, or the engine is away: nothing known
            return {}
        memory = raw.get("memory_stats") or {}
        result: dict[str, Any] = {}
        if "usage" in memory:
            result["memory_bytes"] = memory["usage"]
        if "max_usage" in memory:  # cgroup v1 only
            result["memory_peak_bytes"] = memory["max_usage"]
        if "limit" in memory:
            result["memory_limit_bytes"] = memory["limit"]
        pids = (raw.get("pids_stats") or {}).get("current")
        if pids is not None:
            result["pids"] = pids
        return result

    def _listed(self) -> list[dict[str, Any]]:
        """This installation's containers as the engine lists them: one call, no inspect of
        each (docker-py's default list inspects every container, one call per container)."""
        filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self.instance}"]}
        try:
            containers = self.client.containers.list(all=True, filters=filters, sparse=True)
        except _ENGINE_ERRORS as exc:
            raise _engine_unreachable(exc) from exc
        return [container.attrs for container in containers]

    def running_ids(self) -> set[str] | None:
        """Ids of this installation's containers that run now, from one listing."""
        return {attrs["Id"] for attrs in self._listed() if str(attrs.get("State", "")) in _RUNNING}

    def list_sessions(self) -> list[Handle]:
        handles = []
        for attrs in self._listed():
            labels = attrs.get("Labels") or {}
            network = (attrs.get("HostConfig") or {}).get("NetworkMode")
            names = attrs.get("Names") or [""]
            state = {"container_id": attrs["Id"], "name": names[0].lstrip("/"),
                     "network": None if network in (None, "none") else network,
                     "port": int(labels.get(LABEL_PORT, 8080))}  # fmt: skip
            if labels.get(LABEL_POOL_SLOT):  # a warm-pool container: the pool maps it to a run
                state["pool_slot"] = labels[LABEL_POOL_SLOT]
            handles.append(Handle(execution_uuid=labels.get(LABEL_EXECUTION, ""), state=state))
        return handles

    def ping(self) -> dict[str, Any]:
        try:
            version = self.client.version()
        except (BackendError, *_ENGINE_ERRORS) as exc:
            return {"status": "error", "error": str(exc)}
        result: dict[str, Any] = {
            "status": "ok",
            "version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
        }
        try:
            networks = self.network_status()
        except BackendError as exc:
            result.update(status="error", error=exc.message, isolation="unknown")
            return result
        result["isolation"] = networks.isolation
        if networks.warnings:
            result["warnings"] = list(networks.warnings)
        return result
