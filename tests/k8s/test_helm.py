"""The Helm chart: ``helm lint`` and ``helm template`` over the chart's values files, every rendered
object validated against the Kubernetes OpenAPI schemas (strict), and what each deployment needs.

Real helm (see conftest.py); no cluster: nothing here is installed anywhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.fake_api import validate

CHART = Path(__file__).resolve().parents[2] / "helm" / "scriptsmanager"
VALUES = {
    "defaults": None,
    "minimal": CHART / "ci" / "minimal-values.yaml",
    "production": CHART / "ci" / "production-values.yaml",
    "airgapped": CHART / "ci" / "airgapped-values.yaml",
}
NAMESPACE = "scriptsmanager"


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def render(helm: str, values: Path | None, *sets: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The chart's objects by (kind, name); fails the test with helm's message on an error."""
    args = ["template", "sm", str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    objects = {}
    for document in yaml.safe_load_all(result.stdout):
        if document:
            objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


@pytest.fixture(scope="module")
def rendered(helm: str) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    return {name: render(helm, values) for name, values in VALUES.items()}


@pytest.mark.parametrize("name", VALUES)
def test_helm_lint_passes(helm: str, name: str) -> None:
    values = VALUES[name]
    result = run_helm(
        helm, "lint", "--strict", str(CHART), *(["-f", str(values)] if values else [])
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", VALUES)
def test_every_rendered_object_matches_the_kubernetes_schemas(rendered, name: str) -> None:
    objects = rendered[name]
    kinds = sorted({kind for kind, _ in objects})
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
            "PersistentVolumeClaim"} <= set(kinds)  # fmt: skip
    for document in objects.values():
        validate(document)


def _deployment(objects: dict) -> dict[str, Any]:
    return objects[("Deployment", "sm-scriptsmanager")]


def _config(objects: dict) -> dict[str, str]:
    return objects[("ConfigMap", "sm-scriptsmanager")]["data"]


def test_minimal_is_one_replica_on_sqlite_without_tls(rendered) -> None:
    objects = rendered["minimal"]
    assert _deployment(objects)["spec"]["replicas"] == 1
    secret = objects[("Secret", "sm-scriptsmanager")]["stringData"]
    assert "DATABASE_URL" not in secret and "SM_REDIS_URL" not in secret
    assert len(secret["SECRET_KEY"]) == 64  # generated
    config = _config(objects)
    assert config["SM_SESSION_BACKEND"] == "kubernetes"
    assert config["SM_PUBLIC_URL"] == "http://scripts.local"
    assert config["SM_SESSION_DOMAIN"] == "sessions.local"
    ingress = objects[("Ingress", "sm-scriptsmanager")]["spec"]
    assert "tls" not in ingress
    assert [rule["host"] for rule in ingress["rules"]] == ["scripts.local", "*.sessions.local"]


def test_production_runs_three_replicas_on_postgresql_and_redis(rendered) -> None:
    objects = rendered["production"]
    deployment = _deployment(objects)
    assert deployment["spec"]["replicas"] == 3
    secret = objects[("Secret", "sm-scriptsmanager")]["stringData"]
    assert secret["DATABASE_URL"].startswith("postgresql://")
    assert secret["SM_REDIS_URL"] == "redis://redis.db.svc:6379/0"
    pod = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"manager", "git-sync"}
    env_from = {ref.get("secretRef", ref.get("configMapRef"))["name"]
                for ref in containers["manager"]["envFrom"]}  # fmt: skip
    assert env_from == {"sm-scriptsmanager"}
    config = _config(objects)
    assert config["SM_SCRIPT_GROUPS_DIR"] == "/srv/scripts/current/script_groups"
    assert config["SM_KUBE_CLUSTER_CIDRS"] == "10.244.0.0/16,10.96.0.0/12"
    ingress = objects[("Ingress", "sm-scriptsmanager")]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"  # sticky sessions
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"  # WebSockets
    assert ingress["spec"]["tls"] == [
        {"hosts": ["scripts.example.com"], "secretName": "scriptsmanager-tls"},
        {"hosts": ["*.sessions.example.com"], "secretName": "scriptsmanager-sessions-tls"},
    ]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [
        "scripts.example.com", "*.sessions.example.com"]  # fmt: skip
    service = objects[("Service", "sm-scriptsmanager")]["spec"]
    assert service["ports"][0]["port"] == 5002


def test_airgapped_pulls_everything_from_the_private_registry(rendered) -> None:
    objects = rendered["airgapped"]
    pod = _deployment(objects)["spec"]["template"]["spec"]
    images = [c["image"] for c in pod["containers"] + pod["initContainers"]]
    assert images and all(i.startswith("registry.plant.internal/") for i in images)
    assert pod["imagePullSecrets"] == [{"name": "plant-registry"}]
    config = _config(objects)
    assert config["SM_KUBE_IMAGE_REGISTRY"] == "registry.plant.internal/scriptsmanager"
    assert config["SM_KUBE_IMAGE_PULL_SECRETS"] == "plant-registry"
    assert config["SM_KUBE_NAMESPACE"] == "scriptsmanager-sessions"
    assert config["SM_KUBE_VOLUMES"] == (
        "/srv/data=plant-sm-data,/srv/logs=plant-sm-logs,/srv/scripts=plant-sm-scripts"
    )
    assert config["SM_MAX_CONCURRENT_SESSIONS"] == "40"
    claims = {name for kind, name in objects if kind == "PersistentVolumeClaim"}
    assert claims == {"sm-scriptsmanager-backup"}  # the others exist already
    role = objects[("Role", "sm-scriptsmanager-sessions")]
    assert role["metadata"]["namespace"] == "scriptsmanager-sessions"
    binding = objects[("RoleBinding", "sm-scriptsmanager-sessions")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sm-scriptsmanager", "namespace": NAMESPACE}
    ]


def test_the_role_grants_only_what_sessions_need(rendered) -> None:
    rules = rendered["defaults"][("Role", "sm-scriptsmanager-sessions")]["rules"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("", "pods"): {"get", "list", "watch", "create", "delete"},
        ("", "pods/log"): {"get"},
        ("", "services"): {"get", "list", "create", "delete"},
        ("networking.k8s.io", "networkpolicies"): {"get", "list", "create", "delete"},
        ("", "persistentvolumeclaims"): {"get", "list"},
    }
    kinds = {kind for kind, _ in rendered["defaults"]}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds


def test_the_manager_pod_is_hardened_and_reaches_its_claims(rendered) -> None:
    objects = rendered["defaults"]
    pod = _deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}  # fmt: skip
    config = _config(objects)
    # the manager mounts each claim where SM_KUBE_VOLUMES tells the backend it is
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    for entry in config["SM_KUBE_VOLUMES"].split(","):
        path, claim = entry.split("=")
        assert claims[mounts[path]] == claim
        assert ("PersistentVolumeClaim", claim) in objects
    assert config["SM_DATA_DIR"] == "/srv/data" and config["SM_LOG_DIR"] == "/srv/logs"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert (
        env["SM_KUBE_MANAGER_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.namespace"
    )
    # the sessions admit the manager's pods by these labels: the pods must carry them
    labels = _deployment(objects)["spec"]["template"]["metadata"]["labels"]
    wanted = dict(pair.split("=") for pair in config["SM_KUBE_MANAGER_LABELS"].split(","))
    assert wanted.items() <= labels.items()


@pytest.mark.parametrize(
    "sets, message",
    [
        (("replicaCount=3",), "replicaCount > 1 needs external PostgreSQL"),
        (("replicaCount=3", "database.url=postgresql://u:p@db/sm"), "needs Redis"),
        (("scripts.gitSync.enabled=true",), "needs scripts.gitSync.repo"),
        (("replicaCount=0",), "replicaCount"),
        (("publicUrl=scripts.example.com",), "publicUrl"),
        (("database.url=mysql://x",), "database.url"),
        (("sessions.clusterCIDRs={10.0.0.0}",), "clusterCIDRs"),
        (("unknownKey=1",), "unknownKey"),
    ],
)
def test_wrong_values_are_refused_with_a_message(
    helm: str, sets: tuple[str, ...], message: str
) -> None:
    args = ["template", "sm", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode != 0
    assert message in result.stderr
