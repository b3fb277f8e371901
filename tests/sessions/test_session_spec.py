"""The pure session builders: container spec and the runner's context document."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

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
from manager.sessions.spec import build_spec, context_document, session_name

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"


def _build(**changes: Any) -> SessionSpec:
    arguments: dict[str, Any] = {
        "execution_uuid": UUID,
        "image": "scriptsmanager-env-base:abc123",
        "script_host_dir": "/srv/sm/script_groups/hydraulics",
        "script_filename": "pump_report.py",
        "workspace_host_dir": "/srv/sm/data/script_groups/hydraulics/alice/pumps",
        "context_host_file": f"/srv/sm/data/system/sessions/{UUID}/context.json",
        "limits": Limits(memory="256m", cpus=0.5, pids=64, tmpfs="32m", network="egress"),
        "user_id": 3,
        "script_id": 7,
        "project_id": 11,
        "instance": "plant-a",
    }
    arguments.update(changes)
    return build_spec(**arguments)


def test_spec_mounts_exactly_scripts_workspace_and_context() -> None:
    spec = _build()
    assert spec.mounts == (
        Mount("/srv/sm/script_groups/hydraulics", "/scripts", read_only=True),
        Mount("/srv/sm/data/script_groups/hydraulics/alice/pumps", "/workspace", read_only=False),
        Mount(f"/srv/sm/data/system/sessions/{UUID}/context.json", "/run/sm/context.json",
              read_only=True),
    )  # fmt: skip


def test_spec_name_labels_and_limits() -> None:
    spec = _build(labels_extra={"io.scriptsmanager.group": "hydraulics"})
    assert spec.name == "sm-session-0f8fad5bd9cb469fa16570867728950e"
    assert spec.image == "scriptsmanager-env-base:abc123"
    assert spec.labels == {
        LABEL_MANAGED: "true",
        LABEL_EXECUTION: UUID,
        LABEL_USER: "3",
        LABEL_SCRIPT: "7",
        LABEL_PROJECT: "11",
        LABEL_INSTANCE: "plant-a",
        "io.scriptsmanager.group": "hydraulics",
    }
    assert (spec.memory, spec.cpus, spec.pids, spec.tmpfs_size) == ("256m", 0.5, 64, "32m")
    assert spec.user == "10001:10001"
    assert spec.port == 8080
    assert spec.environment == {"SM_CONTEXT_FILE": "/run/sm/context.json"}
    assert spec.network == "egress"


@pytest.mark.parametrize(
    ("policy", "interactive", "network"),
    [
        ("none", False, "none"),  # a batch run without egress gets no network at all
        ("none", True, "internal"),  # the manager must still reach its web server
        ("internal", False, "internal"),
        ("internal", True, "internal"),
        ("egress", False, "egress"),
        ("egress", True, "egress"),
    ],
)
def test_network_follows_the_policy_and_the_kind_of_run(
    policy: str, interactive: bool, network: str
) -> None:
    spec = _build(limits=Limits(network=policy), interactive=interactive)
    assert spec.network == network


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"script_filename": "../other_group/x.py"}, "script_filename"),
        ({"script_filename": "/etc/passwd"}, "script_filename"),
        ({"script_filename": ""}, "script_filename"),
        ({"workspace_host_dir": "data/alice"}, "workspace_host_dir"),
        ({"script_host_dir": "script_groups/x"}, "script_host_dir"),
        ({"context_host_file": "context.json"}, "context_host_file"),
        ({"labels_extra": {LABEL_USER: "1"}}, "labels_extra"),
        ({"execution_uuid": "../x"}, "execution_uuid"),
    ],
)
def test_bad_arguments_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        _build(**changes)


def test_session_name_is_stable() -> None:
    assert session_name(UUID) == session_name(UUID.upper()) == _build().name


def test_context_document_is_what_the_runner_reads() -> None:
    document = context_document(
        script_filename="tools/pump_report.py",
        parameters={"count": 4, "dry_run": True},
        user_id=3, user_level="operator", project_id=11, project_name="Pumps",
        user_theme="dark", user_language="es",
        brand={"name": "SIDEL"}, prefix="/project/11/script/7/user/3/",
        session="0b7c6a52-5d1e-4c8f-9a7e-3f2d1c0b9a88",
    )  # fmt: skip
    assert document == {
        "script_path": "/scripts/tools/pump_report.py",
        "workspace_path": "/workspace",
        "parameters": {"count": 4, "dry_run": True},
        "environment": {
            "USER_ID": "3",
            "USER_LEVEL": "operator",
            "PROJECT_ID": "11",
            "PROJECT_NAME": "Pumps",
            "USER_THEME": "dark",
            "USER_LANGUAGE": "es",
        },
        "brand": {"name": "SIDEL"},
        "prefix": "/project/11/script/7/user/3",
        "port": 8080,
        "session": "0b7c6a52-5d1e-4c8f-9a7e-3f2d1c0b9a88",
    }
    # The runner's own validation accepts it.
    sys.path.insert(0, str(RUNNER_DIR))
    try:
        from smrunner.context import SessionContext

        context = SessionContext.from_dict(document)
    finally:
        sys.path.remove(str(RUNNER_DIR))
    assert context.script_path == "/scripts/tools/pump_report.py"
    assert context.environment["USER_THEME"] == "dark"
    assert context.session == "0b7c6a52-5d1e-4c8f-9a7e-3f2d1c0b9a88"
