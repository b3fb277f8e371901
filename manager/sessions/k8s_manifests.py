"""Pure builders of a session's Kubernetes objects: its Pod, Service and NetworkPolicy.

Plain functions of a ``SessionSpec`` and a ``ClusterSettings``, no API calls, so every rule
(hardening, limits, volumes, who may talk to whom) is tested without a cluster, and every built
manifest is checked against the Kubernetes OpenAPI schemas (``tests/k8s``).

Paths: the spec names host paths as the manager sees them (``/srv/data/script_groups/...``). A
session pod reaches the same files through the same PersistentVolumeClaims, mounted with a
``subPath``; ``ClusterSettings.claims`` says which claim the manager has mounted where.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from manager.sessions.backend import LABEL_EXECUTION, LABEL_MANAGED, SessionSpec
from manager.sessions.capture import CAPTURE_MOUNT
from manager.sessions.egress import BLOCKED_V4, BLOCKED_V6, Network, parse_allow_list
from manager.sessions.limits import parse_size
from manager.settings import ConfigError

LABEL_PORT = "io.scriptsmanager.port"
ANNOTATION_IMAGE = "io.scriptsmanager.image"
CONTAINER_NAME = "session"
DEADLINE_GRACE = 60  # seconds past the run timeout before the kubelet ends a pod itself
TERMINATION_GRACE = 10  # seconds between SIGTERM and SIGKILL when a pod is deleted
# Never reachable, even by an admin's allow-list: link-local (cloud metadata, node agents).
LINK_LOCAL: tuple[str, ...] = ("169.254.0.0/16", "fe80::/10")
DEFAULT_MANAGER_LABELS = {
    "app.kubernetes.io/name": "scriptsmanager",
    "app.kubernetes.io/component": "manager",
}
DEFAULT_DNS_SELECTOR = {"k8s-app": "kube-dns"}
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class ClaimMount:
    """A PersistentVolumeClaim the manager has mounted at ``path`` (its root)."""

    path: str
    claim: str


@dataclass(frozen=True)
class ClusterSettings:
    """What the cluster side of a session depends on (from the ``SM_KUBE_*`` settings)."""

    namespace: str
    claims: tuple[ClaimMount, ...]
    manager_namespace: str
    manager_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MANAGER_LABELS))
    image_registry: str = ""  # prefix of image names: "registry.example.com/sm"
    image_pull_secrets: tuple[str, ...] = ()
    cluster_cidrs: tuple[str, ...] = ()  # pod and service ranges: never reachable by egress
    egress_allow: tuple[str, ...] = ()  # private ranges egress sessions may reach (SM_EGRESS_ALLOW)
    dns_namespace: str = "kube-system"
    dns_labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DNS_SELECTOR))
    deadline_grace: int = DEADLINE_GRACE


# --------------------------------------------------------------------------- settings parsing


def parse_claims(entries: Iterable[str]) -> tuple[ClaimMount, ...]:
    """``SM_KUBE_VOLUMES`` entries ``<path in the manager>=<claim name>`` as ClaimMounts.

    Raises ConfigError naming the entry that is wrong.
    """
    claims = []
    for entry in entries:
        path, sep, claim = entry.strip().partition("=")
        path = posixpath.normpath(path.strip()) if path.strip() else ""
        claim = claim.strip()
        if not sep or not posixpath.isabs(path) or not _NAME_RE.match(claim):
            raise ConfigError(
                f"SM_KUBE_VOLUMES: {entry!r} is not <absolute path>=<claim name>"
                " (e.g. /srv/data=scriptsmanager-data)"
            )
        claims.append(ClaimMount(path, claim))
    return tuple(claims)


def parse_labels(text: str) -> dict[str, str]:
    """``key=value,key=value`` as a dict; raises ConfigError naming the pair that is wrong."""
    labels = {}
    for pair in (item.strip() for item in text.split(",")):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"SM_KUBE_MANAGER_LABELS: {pair!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


# --------------------------------------------------------------------------- conversions


def memory_quantity(size: str) -> str:
    """A Docker-notation size (``512m``, ``1g``, ``1536k``) as a Kubernetes quantity (``512Mi``)."""
    number = parse_size(size)
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if number % factor == 0:
            return f"{number // factor}{unit}"
    return str(number)


def cpu_quantity(cpus: float) -> str:
    """CPUs (``1.5``) as millicores (``1500m``); at least ``1m``."""
    return f"{max(1, round(cpus * 1000))}m"


def _uid_gid(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not gid.isdigit() or int(uid) == 0 or int(gid) == 0:
        raise ValueError(f"user: {user!r} must be a non-root uid:gid")
    return int(uid), int(gid)


def image_reference(image: str, registry: str) -> str:
    """The image as the cluster pulls it: ``<registry>/<image>`` (CI pushes it there)."""
    registry = registry.strip().rstrip("/")
    return f"{registry}/{image}" if registry else image


def locate(path: str, claims: Iterable[ClaimMount]) -> tuple[ClaimMount, str]:
    """The claim holding the manager path ``path`` and the ``subPath`` inside it.

    The claim mounted deepest wins. Raises ValueError when no claim holds the path, or when the
    path climbs out of it (``..``).
    """
    normal = posixpath.normpath(path)
    if not posixpath.isabs(normal) or normal != path.rstrip("/") or ".." in path.split("/"):
        raise ValueError(f"{path!r} is not a plain absolute path")
    best: tuple[ClaimMount, str] | None = None
    for claim in claims:
        root = claim.path.rstrip("/") or "/"
        if normal == root:
            found = (claim, "")
        elif normal.startswith(root if root == "/" else root + "/"):
            found = (claim, posixpath.relpath(normal, root))
        else:
            continue
        if best is None or len(claim.path) > len(best[0].path):
            best = found
    if best is None:
        raise ValueError(
            f"{path} is on no shared volume: SM_KUBE_VOLUMES must name the claim mounted there"
        )
    return best


def _check_label_values(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_VALUE_RE.match(value):
            raise ValueError(f"label {key}: {value!r} is not a valid label value")


# --------------------------------------------------------------------------- the objects


def object_labels(spec: SessionSpec) -> dict[str, str]:
    """The labels of every object of a session: the spec's (re-adoption reads them) and ours."""
    labels = {
        **spec.labels,
        LABEL_PORT: str(spec.port),
        "app.kubernetes.io/name": "scriptsmanager",
        "app.kubernetes.io/component": "session",
        "app.kubernetes.io/managed-by": "scriptsmanager",
    }
    _check_label_values(labels)
    return labels


def _selector(spec: SessionSpec) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_EXECUTION: spec.execution_uuid}


def _volumes(
    spec: SessionSpec, settings: ClusterSettings, capture_path: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts: every spec mount and the capture folder through their claims."""
    wanted = [(m.source, m.target, m.read_only) for m in spec.mounts]
    if capture_path is not None:
        wanted.append((capture_path, CAPTURE_MOUNT, False))
    volumes: list[dict[str, Any]] = [
        {
            "name": "tmp",
            "emptyDir": {"medium": "Memory", "sizeLimit": memory_quantity(spec.tmpfs_size)},
        }
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    names: dict[str, str] = {}
    for source, target, read_only in wanted:
        claim, sub_path = locate(source, settings.claims)
        name = names.get(claim.claim)
        if name is None:
            name = names[claim.claim] = f"claim-{len(names)}"
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim.claim}})
        mount: dict[str, Any] = {"name": name, "mountPath": target, "readOnly": read_only}
        if sub_path:
            mount["subPath"] = sub_path
        mounts.append(mount)
    return volumes, mounts


def pod_manifest(
    spec: SessionSpec,
    settings: ClusterSettings,
    *,
    capture_path: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The session's Pod.

    Hardened whatever the spec says: non-root uid, no privilege escalation, read-only root
    filesystem (a memory-backed ``/tmp`` of the spec's size), every capability dropped, seccomp
    RuntimeDefault, no service account token, no service links in the environment. Memory and CPU
    limits come from the group's limits, ``activeDeadlineSeconds`` from the run timeout (plus a
    grace: the monitor stops a session at its timeout; the deadline ends it when no manager
    does). ``capture_path``: the manager path of the run's capture folder, mounted read-write.
    Raises ValueError naming what is wrong.
    """
    uid, gid = _uid_gid(spec.user)
    if not _NAME_RE.match(spec.name):
        raise ValueError(f"name: {spec.name!r} is not a valid pod name")
    volumes, mounts = _volumes(spec, settings, capture_path)
    env = {**spec.environment, **(environment or {})}
    memory = memory_quantity(spec.memory)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image_reference(spec.image, settings.image_registry),
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "resources": {
            "limits": {"memory": memory, "cpu": cpu_quantity(spec.cpus)},
            # Memory requested whole (a session is never OOM-killed for a neighbour's use);
            # a tenth of the CPU, so idle interactive sessions do not reserve whole cores.
            "requests": {"memory": memory, "cpu": cpu_quantity(spec.cpus / 10)},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.command:
        container["args"] = list(spec.command)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostname": "session",
        "terminationGracePeriodSeconds": TERMINATION_GRACE,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if spec.run_timeout:
        pod_spec["activeDeadlineSeconds"] = int(spec.run_timeout) + settings.deadline_grace
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": spec.name,
            "namespace": settings.namespace,
            "labels": object_labels(spec),
            "annotations": {ANNOTATION_IMAGE: spec.image},
        },
        "spec": pod_spec,
    }


def service_manifest(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """The ClusterIP Service the manager reaches the session's web server through."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "namespace": settings.namespace,
            "labels": object_labels(spec),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(spec),
            "ports": [
                {"name": "http", "port": spec.port, "targetPort": spec.port, "protocol": "TCP"}
            ],
        },
    }


def _contained(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def egress_blocks(settings: ClusterSettings) -> list[dict[str, Any]]:
    """The ``ipBlock`` peers an egress session may reach.

    Everything public (``0.0.0.0/0`` and ``::/0`` less the private, link-local, CGNAT and reserved
    ranges the Docker backend blocks too, and less the cluster's own ranges), plus the admin's
    allow-list, itself less link-local and the cluster's ranges. Raises ConfigError for an
    allow-list entry that lies inside a range that must stay closed.
    """
    cluster = [ipaddress.ip_network(c, strict=False) for c in settings.cluster_cidrs]
    closed = [ipaddress.ip_network(c) for c in LINK_LOCAL] + cluster
    blocks = []
    for everything, blocked in (("0.0.0.0/0", BLOCKED_V4), ("::/0", BLOCKED_V6)):
        outer = ipaddress.ip_network(everything)
        nets = {ipaddress.ip_network(b) for b in blocked}
        nets.update(c for c in cluster if c.version == outer.version)
        except_ = sorted(
            (n for n in nets if not any(n != m and _contained(n, m) for m in nets)),
            key=lambda n: (n.network_address, n.prefixlen),
        )
        blocks.append({"cidr": everything, "except": [str(n) for n in except_]})
    for allowed in parse_allow_list(settings.egress_allow):
        for shut in closed:
            if _contained(allowed, shut):
                raise ConfigError(
                    f"SM_EGRESS_ALLOW: {allowed} lies inside {shut}, which sessions may never"
                    " reach (link-local or the cluster's own range, SM_KUBE_CLUSTER_CIDRS)"
                )
        inside = [str(s) for s in closed if s != allowed and _contained(s, allowed)]
        block: dict[str, Any] = {"cidr": str(allowed)}
        if inside:
            block["except"] = inside
        blocks.append(block)
    return blocks


def network_policy_manifest(spec: SessionSpec, settings: ClusterSettings) -> dict[str, Any]:
    """The session's NetworkPolicy: only the manager's pods may connect, to the session's port;
    no egress at all unless the spec's network is ``egress`` (then DNS and ``egress_blocks``).

    A batch run without network (``none``) admits nobody.
    """
    ingress: list[dict[str, Any]] = []
    if spec.network != "none":
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {
                                "kubernetes.io/metadata.name": settings.manager_namespace
                            }
                        },
                        "podSelector": {"matchLabels": dict(settings.manager_labels)},
                    }
                ],
                "ports": [{"port": spec.port, "protocol": "TCP"}],
            }
        )
    egress: list[dict[str, Any]] = []
    if spec.network == "egress":
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": settings.dns_namespace}
                        },
                        "podSelector": {"matchLabels": dict(settings.dns_labels)},
                    }
                ],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        )
        egress.append({"to": [{"ipBlock": block} for block in egress_blocks(settings)]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": spec.name,
            "namespace": settings.namespace,
            "labels": object_labels(spec),
        },
        "spec": {
            "podSelector": {"matchLabels": _selector(spec)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def session_manifests(
    spec: SessionSpec,
    settings: ClusterSettings,
    *,
    capture_path: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A session's objects in the order they are created: the policy first (a pod is never up
    without it), then the pod, then its Service."""
    return [
        network_policy_manifest(spec, settings),
        pod_manifest(spec, settings, capture_path=capture_path, environment=environment),
        service_manifest(spec, settings),
    ]
