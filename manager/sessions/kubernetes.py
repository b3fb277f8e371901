"""``KubernetesBackend``: each session is a Pod, a Service and a NetworkPolicy in one namespace.

The objects come from the pure builders in ``k8s_manifests.py`` (hardening, limits, volumes,
network rules); this module creates, watches and removes them through a ``KubeApi``.

- Files: the workspace, the scripts, the context file and the run's capture folder are where the
  manager sees them on its PersistentVolumeClaims; the pod mounts the same claims with a
  ``subPath`` each (``SM_KUBE_VOLUMES`` says which claim is mounted where).
- Output: the runner's capture file on the claim (``capture.read_capture``), the same no-loss
  reader as Docker's; the Pod log API only when the runner never started its capture (a broken
  image), since the kubelet rotates that log and may drop what nobody read yet.
- State: one watch on the installation's pods keeps their status in memory (``PodWatch``), so the
  monitor's polls cost no API call; a pod the watch has not seen yet is read directly.
- Re-adoption: every object carries the spec's labels; ``list_sessions`` finds them by label.
- Exit status: a stopped session's pod is deleted (Kubernetes cannot stop a pod and keep it), so
  a pod that is gone reports the exit status of the ``end`` record in its capture file.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from manager.sessions.backend import (
    LABEL_EXECUTION,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    BackendError,
    ExitStatus,
    Handle,
    LogLine,
    Mount,
    SessionBackend,
    SessionSpec,
    Target,
)
from manager.sessions.capture import CAPTURE_FILE, CaptureLimits, read_capture
from manager.sessions.k8s_manifests import (
    ANNOTATION_IMAGE,
    DEFAULT_MANAGER_LABELS,
    LABEL_PORT,
    ClusterSettings,
    egress_blocks,
    parse_claims,
    parse_labels,
    session_manifests,
)
from manager.sessions.kube_api import ApiError, ClientApi, KubeApi

log = logging.getLogger(__name__)

RUNNER_UID = 10001
WATCH_TIMEOUT = 300  # seconds a watch call lasts before it is renewed
# Waiting reasons that will not go away by waiting: the run ends with the kubelet's message.
FATAL_WAITING = frozenset(
    {
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _unreachable(exc: ApiError) -> BackendError:
    return BackendError("The Kubernetes API is not reachable; try again shortly.", detail=str(exc))


def capture_exit_code(path: Path) -> int | None:
    """The runner's exit status from the ``end`` record ending a capture file; None without."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4096))
            tail = handle.read()
    except OSError:
        return None
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    head, tab, text = lines[-1].partition(b"\t")
    fields = head.split(b" ")
    if not tab or len(fields) != 3 or fields[2] != b"end":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def pod_exit_status(pod: Mapping[str, Any]) -> ExitStatus | None:
    """How a pod ended, from its status; None while it runs (or waits to run)."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    containers = status.get("containerStatuses") or []
    state = (containers[0].get("state") or {}) if containers else {}
    if phase in ("Pending", "Running", "Unknown", None):
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            image = (pod.get("metadata") or {}).get("annotations", {}).get(ANNOTATION_IMAGE, "")
            message = waiting.get("message") or waiting["reason"]
            return ExitStatus(None, error=f"{waiting['reason']}: image {image}: {message}")
        return None
    terminated = state.get("terminated") or {}
    if status.get("reason") == "DeadlineExceeded":
        return ExitStatus(
            terminated.get("exitCode"),
            error="the run timeout passed (activeDeadlineSeconds): Kubernetes ended the pod",
        )
    reason = terminated.get("reason") or ""
    return ExitStatus(
        exit_code=terminated.get("exitCode"),
        oom_killed=reason == "OOMKilled",
        error=None if reason in ("", "Completed", "Error", "OOMKilled") else reason,
    )


class PodWatch:
    """The installation's pods as the API last told: one list, then watch events.

    ``run_once`` lists and follows the watch until it times out or the API says the list is too
    old (410 Gone); ``start`` runs it in a background thread, again and again.
    """

    def __init__(self, api: KubeApi, namespace: str, selector: str):
        self.api = api
        self.namespace = namespace
        self.selector = selector
        self.pods: dict[str, dict[str, Any]] = {}
        self.synced = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.pods.get(name) if self.synced else None

    def run_once(self, timeout: int = WATCH_TIMEOUT) -> None:
        items, version = self.api.list("Pod", self.namespace, self.selector)
        with self._lock:
            self.pods = {pod["metadata"]["name"]: pod for pod in items}
            self.synced = True
        for event in self.api.watch("Pod", self.namespace, self.selector, version, timeout):
            kind, pod = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # 410 Gone: the version is too old; list again
                log.info("pod watch: %s; listing again", pod.get("message", pod))
                return
            if kind == "BOOKMARK":
                continue
            name = (pod.get("metadata") or {}).get("name")
            if not name:
                continue
            with self._lock:
                if kind == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = pod
            if self._stopped.is_set():
                return

    def _loop(self) -> None:
        delay = 1.0
        while not self._stopped.is_set():
            try:
                self.run_once()
                delay = 1.0
            except ApiError as exc:
                with self._lock:
                    self.synced = False  # answer from direct reads until the watch is back
                log.warning("pod watch failed (%s); again in %.0f s", exc, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, 30.0)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped.clear()
            self._thread = threading.Thread(target=self._loop, name="sm-pod-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()


def _default_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


class KubernetesBackend(SessionBackend):
    """Sessions as Pods (see the module docstring)."""

    def __init__(
        self,
        settings: ClusterSettings,
        api: KubeApi | None = None,
        *,
        instance: str = "default",
        capture_dir: str | Path | None = None,
        capture_limits: CaptureLimits | None = None,
        watch: bool = True,
        realpath: Callable[[str], str] = os.path.realpath,
    ) -> None:
        """``capture_dir``: where the manager sees the runs' capture folders (on a claim of
        ``settings.claims``); ``watch`` False: no background watch (every poll reads the API)."""
        self.settings = settings
        self._api = api
        self.instance = instance
        self.capture_dir = Path(capture_dir) if capture_dir is not None else None
        self.capture_limits = capture_limits or CaptureLimits()
        self.selector = f"{LABEL_MANAGED}=true,{LABEL_INSTANCE}={instance}"
        self._use_watch = watch
        self._watch: PodWatch | None = None
        self._realpath = realpath

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, capture_dir: Path, capture_limits: CaptureLimits
    ) -> KubernetesBackend:
        """The backend the ``SM_KUBE_*`` settings describe; raises ConfigError for a wrong one."""
        namespace = config.get("SM_KUBE_NAMESPACE") or _default_namespace()
        settings = ClusterSettings(
            namespace=namespace,
            claims=parse_claims(config.get("SM_KUBE_VOLUMES") or []),
            manager_namespace=config.get("SM_KUBE_MANAGER_NAMESPACE") or _default_namespace(),
            manager_labels=parse_labels(config.get("SM_KUBE_MANAGER_LABELS") or "")
            or dict(DEFAULT_MANAGER_LABELS),  # never {}: that would admit every pod
            image_registry=config.get("SM_KUBE_IMAGE_REGISTRY") or "",
            image_pull_secrets=tuple(config.get("SM_KUBE_IMAGE_PULL_SECRETS") or ()),
            cluster_cidrs=tuple(config.get("SM_KUBE_CLUSTER_CIDRS") or ()),
            egress_allow=tuple(config.get("SM_EGRESS_ALLOW") or ()),
        )
        egress_blocks(settings)  # a wrong allow-list entry fails at start-up, not at a run
        return cls(
            settings,
            instance=config.get("SM_INSTANCE") or "default",
            capture_dir=capture_dir,
            capture_limits=capture_limits,
        )

    @property
    def api(self) -> KubeApi:
        """The API client, made on first use."""
        if self._api is None:
            try:
                self._api = ClientApi()
            except Exception as exc:  # the client's config errors have no common base
                raise BackendError(
                    "The Kubernetes API is not configured for this manager.", detail=str(exc)
                ) from exc
        return self._api

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def pod_watch(self, *, start_thread: bool = True) -> PodWatch:
        """The shared pod watch; its thread is started unless ``start_thread`` is False (tests
        drive ``run_once`` themselves)."""
        if self._watch is None:
            self._watch = PodWatch(self.api, self.namespace, self.selector)
        if start_thread:
            self._watch.start()
        return self._watch

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()

    # ------------------------------------------------------------------ lifecycle

    def _capture_folder(self, execution_uuid: str) -> Path | None:
        if self.capture_dir is None or not execution_uuid:
            return None
        if not execution_uuid.replace("-", "").isalnum():
            raise BackendError("The session could not be started.",
                               detail=f"bad execution uuid {execution_uuid!r}")  # fmt: skip
        return self.capture_dir / execution_uuid

    def _resolved(self, spec: SessionSpec) -> SessionSpec:
        """The spec with its mount sources' symlinks resolved (git-sync's ``current`` link):
        a pod's ``subPath`` must name the real folder on the claim."""
        from dataclasses import replace

        mounts = tuple(Mount(self._realpath(m.source), m.target, m.read_only) for m in spec.mounts)
        return replace(spec, mounts=mounts)

    def start(self, spec: SessionSpec) -> Handle:
        capture = self._capture_folder(spec.execution_uuid)
        environment: dict[str, str] = {}
        if capture is not None:
            try:
                capture.mkdir(parents=True, exist_ok=True)
                if os.geteuid() not in (0, RUNNER_UID):
                    capture.chmod(0o777)
            except OSError as exc:
                raise BackendError(
                    "The session's output folder could not be created.", detail=str(exc)
                ) from exc
            environment.update(self.capture_limits.environment())
        try:
            manifests = session_manifests(
                self._resolved(spec),
                self.settings,
                capture_path=self._realpath(str(capture)) if capture is not None else None,
                environment=environment,
            )
        except ValueError as exc:
            self._remove_capture(spec.execution_uuid)
            raise BackendError("The session could not be started.", detail=str(exc)) from exc
        created: list[tuple[str, str]] = []
        answers: dict[str, dict[str, Any]] = {}
        try:
            for body in manifests:
                answers[body["kind"]] = self.api.create(body["kind"], self.namespace, body)
                created.append((body["kind"], body["metadata"]["name"]))
        except ApiError as exc:
            for kind, name in reversed(created):
                self._delete_quietly(kind, name)
            self._remove_capture(spec.execution_uuid)
            if exc.status == 409:
                raise BackendError("A session for this run already exists.",
                                   detail=exc.message) from exc  # fmt: skip
            if exc.status == 0:
                raise _unreachable(exc) from exc
            raise BackendError("The session could not be created.", detail=exc.message) from exc
        service = answers.get("Service") or {}
        log.info("started pod %s (%s) for execution %s", spec.name, spec.image, spec.execution_uuid)
        state = {"name": spec.name, "namespace": self.namespace, "port": spec.port,
                 "network": spec.network,
                 "cluster_ip": (service.get("spec") or {}).get("clusterIP")}  # fmt: skip
        return Handle(execution_uuid=spec.execution_uuid, state=state)

    def _pod(self, handle: Handle) -> dict[str, Any] | None:
        name = handle.state.get("name")
        if not name:
            return None
        if self._use_watch:
            self.pod_watch()
        watched = self._watch.get(name) if self._watch is not None else None
        if watched is not None:
            return watched
        try:
            return self.api.read("Pod", self.namespace, name)
        except ApiError as exc:
            raise _unreachable(exc) from exc

    def address(self, handle: Handle) -> Target | None:
        pod = self._pod(handle)
        if pod is None or (pod.get("status") or {}).get("phase") != "Running":
            return None
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            return None  # being stopped
        host = handle.state.get("cluster_ip")
        if not host:
            service = self._read("Service", handle.state["name"])
            host = ((service or {}).get("spec") or {}).get("clusterIP")
            if not host or host == "None":
                return None
            handle.state["cluster_ip"] = host
        return Target(host, int(handle.state.get("port") or 8080))

    def _read(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api.read(kind, self.namespace, name)
        except ApiError as exc:
            raise _unreachable(exc) from exc

    def poll(self, handle: Handle) -> ExitStatus | None:
        pod = self._pod(handle)
        if pod is not None:
            return pod_exit_status(pod)
        folder = self._capture_folder(handle.execution_uuid)
        code = capture_exit_code(folder / CAPTURE_FILE) if folder is not None else None
        if code is not None:  # stopped: the pod was deleted after the runner wrote its status
            return ExitStatus(code)
        return ExitStatus(None, error="gone")

    def stop(self, handle: Handle, *, now: bool = False, timeout: float = 10.0) -> None:
        grace = 0 if now else max(1, math.ceil(timeout))
        try:
            self.api.delete("Pod", self.namespace, handle.state.get("name", ""),
                            grace_seconds=grace)  # fmt: skip
        except ApiError as exc:
            if exc.status == 0:
                raise _unreachable(exc) from exc
            raise BackendError("The session could not be stopped.", detail=exc.message) from exc

    def remove(self, handle: Handle) -> None:
        name = handle.state.get("name", "")
        try:
            for kind in ("Pod", "Service", "NetworkPolicy"):
                self.api.delete(kind, self.namespace, name,
                                grace_seconds=0 if kind == "Pod" else None)  # fmt: skip
        except ApiError as exc:
            if exc.status == 0:
                raise _unreachable(exc) from exc
            raise BackendError("The session could not be removed.", detail=exc.message) from exc
        self._remove_capture(handle.execution_uuid)

    def _delete_quietly(self, kind: str, name: str) -> None:
        try:
            self.api.delete(kind, self.namespace, name, grace_seconds=0)
        except ApiError as exc:
            log.warning("could not delete %s %s after a failed start: %s", kind, name, exc)

    def _remove_capture(self, execution_uuid: str) -> None:
        folder = self._capture_folder(execution_uuid)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ output and state

    def logs(
        self, handle: Handle, *, since: str | None = None, follow: bool = False
    ) -> Iterator[LogLine]:
        """The run's capture file (see ``SessionBackend.logs``); the Pod log when the runner
        never started its capture."""
        folder = self._capture_folder(handle.execution_uuid)
        path = folder / CAPTURE_FILE if folder is not None else None

        def running() -> bool:
            return self.poll(handle) is None

        def overflow() -> None:
            log.warning("session %s wrote past its log cap; stopping it", handle.execution_uuid)
            self.stop(handle, now=True)

        while path is None or not path.exists():
            if path is None or not (follow and running()):
                yield from self._pod_log(handle, since)
                return
            time.sleep(0.05)
        yield from read_capture(path, self.capture_limits, since=since, follow=follow,
                                running=running, on_overflow=overflow)  # fmt: skip

    def _pod_log(self, handle: Handle, since: str | None) -> Iterator[LogLine]:
        """What the container printed before (or without) its capture, from the Pod log API.

        The API merges stdout and stderr: the lines are given as stderr (a runner that fails
        before its capture starts says why there), after a note saying where they come from.
        """
        from manager.sessions.capture import stamp_ns

        after = stamp_ns(since) if since else None
        noted = False
        try:
            for raw in self.api.pod_log(self.namespace, handle.state.get("name", "")):
                stamp, _, text = raw.partition(" ")
                try:
                    moment = stamp_ns(stamp)
                except ValueError:
                    continue
                if after is not None and moment <= after:
                    continue
                if not noted:
                    yield LogLine("debug", "no output capture: lines read from the Pod log", stamp)
                    noted = True
                text = text[: self.capture_limits.max_line]
                yield LogLine("stderr", text, stamp)
        except ApiError as exc:
            yield LogLine("debug", f"the Pod log could not be read: {exc.message}")

    def stats(self, handle: Handle) -> dict[str, Any]:
        """Nothing: resource use needs the metrics API, which the manager's Role does not grant."""
        return {}

    def list_sessions(self) -> list[Handle]:
        """Every pod, Service or NetworkPolicy of this installation, one handle per session."""
        handles: dict[str, Handle] = {}
        try:
            for kind in ("Pod", "Service", "NetworkPolicy"):
                items, _ = self.api.list(kind, self.namespace, self.selector)
                for item in items:
                    metadata = item.get("metadata") or {}
                    labels = metadata.get("labels") or {}
                    uuid = labels.get(LABEL_EXECUTION, "")
                    handle = handles.setdefault(
                        metadata.get("name", ""),
                        Handle(uuid, {"name": metadata.get("name", ""),
                                      "namespace": self.namespace,
                                      "port": int(labels.get(LABEL_PORT, 8080))}),
                    )  # fmt: skip
                    if kind == "Service":
                        handle.state["cluster_ip"] = (item.get("spec") or {}).get("clusterIP")
        except ApiError as exc:
            raise _unreachable(exc) from exc
        return list(handles.values())

    def ping(self) -> dict[str, Any]:
        """The API, the namespace and the claims sessions mount (each must exist and be bound)."""
        result: dict[str, Any] = {"status": "ok", "engine": "kubernetes",
                                  "namespace": self.namespace,
                                  "isolation": "networkpolicy"}  # fmt: skip
        warnings = []
        try:
            self.api.list("Pod", self.namespace, self.selector)
            for claim in self.settings.claims:
                found = self.api.read("PersistentVolumeClaim", self.namespace, claim.claim)
                phase = ((found or {}).get("status") or {}).get("phase")
                if phase != "Bound":
                    warnings.append(f"claim {claim.claim} ({claim.path}): {phase or 'missing'}")
        except (ApiError, BackendError) as exc:
            return {**result, "status": "error", "error": str(exc)}
        if not self.settings.claims:
            warnings.append("SM_KUBE_VOLUMES names no claim: sessions cannot mount their files")
        if warnings:
            result["warnings"] = warnings
        return result
