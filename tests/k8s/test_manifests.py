"""The pure builders of a session's Pod, Service and NetworkPolicy.

Every built manifest is validated against the Kubernetes OpenAPI schemas that
``kubernetes-validate`` ships (strict: an unknown or misspelt field fails), offline.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from manager.sessions.backend import LABEL_EXECUTION, LABEL_MANAGED, SessionSpec
from manager.sessions.k8s_manifests import (
    ClaimMount,
    ClusterSettings,
    cpu_quantity,
    egress_blocks,
    image_reference,
    locate,
    memory_quantity,
    network_policy_manifest,
    parse_claims,
    parse_labels,
    pod_manifest,
    service_manifest,
    session_manifests,
)
from manager.sessions.limits import Limits
from manager.sessions.spec import build_spec
from manager.settings import ConfigError
from tests.k8s.fake_api import validate

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CLAIMS = (
    ClaimMount("/srv/data", "sm-data"),
    ClaimMount("/srv/logs", "sm-logs"),
    ClaimMount("/srv/scripts", "sm-scripts"),
)
SETTINGS = ClusterSettings(
    namespace="sessions",
    claims=CLAIMS,
    manager_namespace="scriptsmanager",
    image_registry="registry.example.com/sm/",
    image_pull_secrets=("regcred",),
    cluster_cidrs=("10.244.0.0/16", "10.96.0.0/12", "fd00:10::/56"),
    egress_allow=("172.20.5.0/24",),
)
CAPTURE = f"/srv/logs/capture/{UUID}"


def make_spec(network: str = "egress", interactive: bool = True, **changes: Any) -> SessionSpec:
    arguments: dict[str, Any] = {
        "execution_uuid": UUID,
        "image": "scriptsmanager-env-base:abc123",
        "script_host_dir": "/srv/scripts/script_groups/hydraulics",
        "script_filename": "pump_report.py",
        "workspace_host_dir": "/srv/data/script_groups/hydraulics/3/11",
        "context_host_file": f"/srv/data/system/sessions/{UUID}/context.json",
        "limits": Limits(memory="1536m", cpus=1.5, pids=64, tmpfs="32m", network=network),
        "user_id": 3,
        "script_id": 7,
        "project_id": 11,
        "interactive": interactive,
        "instance": "plant-a",
        "run_timeout": 600,
    }
    arguments.update(changes)
    return build_spec(**arguments)


SPECS = {
    "interactive, no egress": make_spec("none"),
    "batch, no network": make_spec("none", interactive=False),
    "internal": make_spec("internal"),
    "egress": make_spec("egress"),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_manifest_matches_the_kubernetes_schemas(spec: SessionSpec) -> None:
    manifests = session_manifests(spec, SETTINGS, capture_path=CAPTURE, environment={"A": "b"})
    assert [m["kind"] for m in manifests] == ["NetworkPolicy", "Pod", "Service"]
    for manifest in manifests:
        validate(manifest)


def test_the_schema_check_catches_a_wrong_field() -> None:
    pod = pod_manifest(make_spec(), SETTINGS)
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True  # misspelt
    with pytest.raises(Exception, match="readOnlyRootFilesytem"):
        validate(pod)


def test_pod_is_hardened_whatever_the_spec() -> None:
    pod = pod_manifest(make_spec(), SETTINGS, capture_path=CAPTURE)
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    assert not any("hostPath" in volume for volume in spec["volumes"])


def test_pod_limits_and_deadline_come_from_the_group_and_the_run_timeout() -> None:
    pod = pod_manifest(make_spec(), SETTINGS)
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "1536Mi", "cpu": "1500m"}
    assert resources["requests"] == {"memory": "1536Mi", "cpu": "150m"}
    assert pod["spec"]["activeDeadlineSeconds"] == 600 + SETTINGS.deadline_grace
    tmp = next(v for v in pod["spec"]["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Mi"}
    assert (
        "activeDeadlineSeconds" not in pod_manifest(make_spec(run_timeout=None), SETTINGS)["spec"]
    )


def test_pod_mounts_each_file_through_its_claim_with_a_subpath() -> None:
    pod = pod_manifest(make_spec(), SETTINGS, capture_path=CAPTURE)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {
        m["mountPath"]: (volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName"),
                         m.get("subPath"), m.get("readOnly", False))
        for m in pod["spec"]["containers"][0]["volumeMounts"]
    }  # fmt: skip
    assert mounts == {
        "/tmp": (None, None, False),
        "/scripts": ("sm-scripts", "script_groups/hydraulics", True),
        "/workspace": ("sm-data", "script_groups/hydraulics/3/11", False),
        "/run/sm/context.json": ("sm-data", f"system/sessions/{UUID}/context.json", True),
        "/run/sm/capture": ("sm-logs", f"capture/{UUID}", False),
    }
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in volumes.values()
        if "persistentVolumeClaim" in v
    ]
    assert sorted(claims) == ["sm-data", "sm-logs", "sm-scripts"]  # one volume per claim


def test_pod_image_labels_and_environment() -> None:
    pod = pod_manifest(make_spec(), SETTINGS, environment={"SM_CAPTURE_DIR": "/run/sm/capture"})
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/sm/scriptsmanager-env-base:abc123"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert {"name": "SM_CAPTURE_DIR", "value": "/run/sm/capture"} in container["env"]
    assert {"name": "SM_CONTEXT_FILE", "value": "/run/sm/context.json"} in container["env"]
    labels = pod["metadata"]["labels"]
    assert labels[LABEL_EXECUTION] == UUID and labels[LABEL_MANAGED] == "true"
    assert labels["io.scriptsmanager.instance"] == "plant-a"
    assert pod["metadata"]["namespace"] == "sessions"


def test_a_root_user_or_a_bad_label_value_is_refused() -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="non-root"):
        pod_manifest(replace(make_spec(), user="0:0"), SETTINGS)
    with pytest.raises(ValueError, match="not a valid label value"):
        pod_manifest(make_spec(instance="plant a!"), SETTINGS)


def test_service_selects_only_its_session() -> None:
    service = service_manifest(make_spec(), SETTINGS)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {LABEL_MANAGED: "true", LABEL_EXECUTION: UUID}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}
    ]


def test_network_policy_admits_only_the_manager_and_no_egress_without_it() -> None:
    policy = network_policy_manifest(make_spec("internal"), SETTINGS)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"] == {"matchLabels": {LABEL_MANAGED: "true", LABEL_EXECUTION: UUID}}
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "scriptsmanager"}},
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "scriptsmanager",
                    "app.kubernetes.io/component": "manager",
                }
            },
        }
    ]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert policy["egress"] == []  # listed and empty: every egress denied
    batch = network_policy_manifest(make_spec("none", interactive=False), SETTINGS)["spec"]
    assert batch["ingress"] == [] and batch["egress"] == []


def _peers(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]


def test_egress_never_reaches_link_local_or_the_cluster() -> None:
    policy = network_policy_manifest(make_spec("egress"), SETTINGS)
    blocks = {
        p["ipBlock"]["cidr"]: p["ipBlock"].get("except", [])
        for p in _peers(policy)
        if "ipBlock" in p
    }
    assert set(blocks) == {"0.0.0.0/0", "::/0", "172.20.5.0/24"}
    assert {
        "169.254.0.0/16",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    } <= set(blocks["0.0.0.0/0"])
    # the cluster's ranges inside 10/8 are covered by it: listed once, not twice
    assert "10.96.0.0/12" not in blocks["0.0.0.0/0"]
    assert {"fe80::/10", "fc00::/7"} <= set(blocks["::/0"])
    dns = [p for p in _peers(policy) if "podSelector" in p]
    assert dns == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    dns_rule = policy["spec"]["egress"][0]
    assert dns_rule["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def test_egress_with_public_cluster_ranges_excepts_them() -> None:
    from dataclasses import replace

    settings = replace(SETTINGS, cluster_cidrs=("203.1.0.0/16",), egress_allow=("10.0.0.0/8",))
    blocks = {b["cidr"]: b.get("except", []) for b in egress_blocks(settings)}
    assert "203.1.0.0/16" in blocks["0.0.0.0/0"]
    assert blocks["10.0.0.0/8"] == []  # no closed range lies inside it here
    settings = replace(SETTINGS, cluster_cidrs=("10.244.0.0/16",), egress_allow=("10.0.0.0/8",))
    blocks = {b["cidr"]: b.get("except", []) for b in egress_blocks(settings)}
    assert blocks["10.0.0.0/8"] == ["10.244.0.0/16"]  # the allow-list never opens the cluster


@pytest.mark.parametrize(
    "entry, inside",
    [("169.254.169.254/32", "169.254.0.0/16"), ("10.96.0.10/32", "10.96.0.0/12")],
)
def test_an_allow_list_entry_inside_a_closed_range_is_refused(entry: str, inside: str) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match=inside.replace(".", r"\.")):
        egress_blocks(replace(SETTINGS, egress_allow=(entry,)))


def test_every_except_lies_inside_its_block() -> None:
    for block in egress_blocks(SETTINGS):
        outer = ipaddress.ip_network(block["cidr"])
        for inner in block.get("except", []):
            assert ipaddress.ip_network(inner).subnet_of(outer)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "size, quantity", [("512m", "512Mi"), ("1g", "1Gi"), ("1536m", "1536Mi"), ("1536k", "1536Ki")]
)
def test_memory_quantities(size: str, quantity: str) -> None:
    assert memory_quantity(size) == quantity


def test_cpu_quantities_and_images() -> None:
    assert cpu_quantity(0.5) == "500m" and cpu_quantity(2) == "2000m" and cpu_quantity(0) == "1m"
    assert image_reference("scriptsmanager-env-a:1", "") == "scriptsmanager-env-a:1"
    assert (
        image_reference("scriptsmanager-env-a:1", "reg:5000/x/")
        == "reg:5000/x/scriptsmanager-env-a:1"
    )


def test_locate_picks_the_deepest_claim_and_refuses_paths_outside() -> None:
    claims = (ClaimMount("/srv", "all"), ClaimMount("/srv/data", "data"))
    assert locate("/srv/data/a/b", claims) == (claims[1], "a/b")
    assert locate("/srv/other", claims) == (claims[0], "other")
    assert locate("/srv/data", claims) == (claims[1], "")
    assert locate("/srv/database/x", claims) == (claims[0], "database/x")
    with pytest.raises(ValueError, match="no shared volume"):
        locate("/etc/passwd", claims)
    with pytest.raises(ValueError, match="plain absolute path"):
        locate("/srv/data/../../etc", claims)


def test_a_file_outside_every_claim_stops_the_pod() -> None:
    spec = make_spec(workspace_host_dir="/home/alice/ws")
    with pytest.raises(ValueError, match="/home/alice/ws is on no shared volume"):
        pod_manifest(spec, SETTINGS)


def test_settings_parsing() -> None:
    assert parse_claims(["/srv/data=sm-data", " /srv/logs/ = sm-logs "]) == (
        ClaimMount("/srv/data", "sm-data"),
        ClaimMount("/srv/logs", "sm-logs"),
    )
    for wrong in ("srv/data=sm-data", "/srv/data", "/srv/data=Bad_Name"):
        with pytest.raises(ConfigError, match="SM_KUBE_VOLUMES"):
            parse_claims([wrong])
    assert parse_labels("a=b, c/d=e") == {"a": "b", "c/d": "e"}
    with pytest.raises(ConfigError, match="SM_KUBE_MANAGER_LABELS"):
        parse_labels("a")
