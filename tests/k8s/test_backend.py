"""KubernetesBackend's orchestration against a fake Kubernetes API.

No Kubernetes cluster can run where these tests run, so the API is ``FakeKubeApi``: it records
calls, keeps objects as the API server would, validates each created object against the
Kubernetes schemas, and plays back watch events the tests queue. The capture files and the
folders on the "claims" are real files under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manager.sessions.backend import BackendError, ExitStatus, Handle, SessionSpec, Target
from manager.sessions.capture import CAPTURE_FILE, CaptureLimits
from manager.sessions.k8s_manifests import ClaimMount, ClusterSettings
from manager.sessions.kube_api import ApiError
from manager.sessions.kubernetes import KubernetesBackend, capture_exit_code
from manager.sessions.limits import Limits
from manager.sessions.spec import build_spec
from manager.settings import ConfigError
from tests.k8s.fake_api import FakeKubeApi

UUID = "5b1f0c3e-2d4a-4c8e-9f10-aa55bb66cc77"
NAME = "sm-session-5b1f0c3e2d4a4c8e9f10aa55bb66cc77"


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("data", "logs", "scripts")}
    for path in found.values():
        path.mkdir()
    (found["scripts"] / "hydraulics").mkdir()
    return found


@pytest.fixture
def api() -> FakeKubeApi:
    return FakeKubeApi()


def settings_for(roots: dict[str, Path]) -> ClusterSettings:
    return ClusterSettings(
        namespace="sessions",
        claims=tuple(ClaimMount(str(path), f"sm-{name}") for name, path in roots.items()),
        manager_namespace="scriptsmanager",
    )


def make_backend(api: FakeKubeApi, roots: dict[str, Path], **options: Any) -> KubernetesBackend:
    options.setdefault("watch", False)
    return KubernetesBackend(
        settings_for(roots),
        api,
        instance="plant-a",
        capture_dir=roots["logs"] / "capture",
        capture_limits=CaptureLimits(max_bytes=10_000, max_line=100),
        **options,
    )


def make_spec(roots: dict[str, Path], network: str = "none", **changes: Any) -> SessionSpec:
    workspace = roots["data"] / "script_groups" / "hydraulics" / "3" / "11"
    workspace.mkdir(parents=True, exist_ok=True)
    context = roots["data"] / "system" / "sessions" / UUID / "context.json"
    context.parent.mkdir(parents=True, exist_ok=True)
    context.write_text("{}")
    arguments: dict[str, Any] = {
        "execution_uuid": UUID,
        "image": "scriptsmanager-env-base:abc",
        "script_host_dir": str(roots["scripts"] / "hydraulics"),
        "script_filename": "pump.py",
        "workspace_host_dir": str(workspace),
        "context_host_file": str(context),
        "limits": Limits(network=network),
        "user_id": 3,
        "script_id": 7,
        "project_id": 11,
        "instance": "plant-a",
        "run_timeout": 300,
    }
    arguments.update(changes)
    return build_spec(**arguments)


def running(ip: str = "10.244.1.5") -> dict[str, Any]:
    return {
        "phase": "Running",
        "podIP": ip,
        "containerStatuses": [{"name": "session", "state": {"running": {}}}],
    }


def ended(code: int, reason: str = "Completed", pod_reason: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {"name": "session", "state": {"terminated": {"exitCode": code, "reason": reason}}}
        ],
    }
    if pod_reason:
        status["reason"] = pod_reason
    return status


def write_capture(roots: dict[str, Path], records: list[str]) -> Path:
    path = roots["logs"] / "capture" / UUID / CAPTURE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{record}\n" for record in records))
    return path


def test_start_creates_policy_pod_and_service_in_that_order(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots, "internal"))
    assert [call[1] for call in api.calls_of("create")] == ["NetworkPolicy", "Pod", "Service"]
    assert {call[2] for call in api.calls} == {"sessions"}
    assert handle.execution_uuid == UUID
    assert handle.state == {"name": NAME, "namespace": "sessions", "port": 8080,
                            "network": "internal", "cluster_ip": "10.96.0.10"}  # fmt: skip
    assert (roots["logs"] / "capture" / UUID).is_dir()  # the runner's capture folder
    pod = api.pod(NAME)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["SM_CAPTURE_DIR"] == "/run/sm/capture"
    assert env["SM_LOG_MAX_BYTES"] == "10000" and env["SM_LOG_MAX_LINE"] == "100"
    sub_paths = {
        m["mountPath"]: m.get("subPath") for m in pod["spec"]["containers"][0]["volumeMounts"]
    }
    assert sub_paths["/workspace"] == "script_groups/hydraulics/3/11"
    assert sub_paths["/run/sm/capture"] == f"capture/{UUID}"


def test_start_resolves_symlinks_to_the_real_folder_on_the_claim(api, roots) -> None:
    # git-sync publishes the scripts through a link to the current worktree
    real = roots["scripts"] / ".worktrees" / "abc123" / "hydraulics"
    real.mkdir(parents=True)
    (roots["scripts"] / "current").symlink_to(roots["scripts"] / ".worktrees" / "abc123")
    backend = make_backend(api, roots)
    backend.start(
        make_spec(roots, script_host_dir=str(roots["scripts"] / "current" / "hydraulics"))
    )
    mounts = {
        m["mountPath"]: m.get("subPath")
        for m in api.pod(NAME)["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts["/scripts"] == ".worktrees/abc123/hydraulics"


def test_a_second_start_conflicts_and_leaves_the_first_alone(api, roots) -> None:
    backend = make_backend(api, roots)
    backend.start(make_spec(roots))
    api.calls.clear()
    api.objects.pop(("NetworkPolicy", "sessions", NAME))  # so the policy is created again
    with pytest.raises(BackendError, match="already exists"):
        backend.start(make_spec(roots))
    # what this attempt created (the policy) is deleted again; the first pod is untouched
    assert [c[1] for c in api.calls_of("delete")] == ["NetworkPolicy"]
    assert ("Pod", "sessions", NAME) in api.objects


def test_a_refused_pod_rolls_back_and_says_so(api, roots) -> None:
    api.fail("create", "Pod", 403, 'pods "x" is forbidden: exceeded quota')
    backend = make_backend(api, roots)
    with pytest.raises(BackendError, match="could not be created") as caught:
        backend.start(make_spec(roots))
    assert "exceeded quota" in caught.value.detail
    assert api.objects == {}
    assert not (roots["logs"] / "capture" / UUID).exists()


def test_a_file_outside_the_claims_is_refused_before_any_call(api, roots, tmp_path) -> None:
    backend = make_backend(api, roots)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(BackendError, match="could not be started") as caught:
        backend.start(make_spec(roots, workspace_host_dir=str(elsewhere)))
    assert "no shared volume" in caught.value.detail
    assert api.calls_of("create") == []


def test_an_unreachable_api_is_a_clear_error(api, roots) -> None:
    api.fail("create", "NetworkPolicy", 0, "connection refused")
    with pytest.raises(BackendError, match="Kubernetes API is not reachable"):
        make_backend(api, roots).start(make_spec(roots))


def test_poll_and_address_follow_the_pod(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots, "internal"))
    assert backend.poll(handle) is None and backend.address(handle) is None  # Pending
    api.set_pod(NAME, running())
    assert backend.poll(handle) is None
    assert backend.address(handle) == Target("10.96.0.10", 8080)  # the Service's address
    api.set_pod(NAME, ended(3, "Error"))
    assert backend.poll(handle) == ExitStatus(3)
    assert backend.address(handle) is None


@pytest.mark.parametrize(
    "status, expected",
    [
        (ended(137, "OOMKilled"), ExitStatus(137, oom_killed=True)),
        (
            ended(137, "Error", pod_reason="DeadlineExceeded"),
            ExitStatus(137, error="the run timeout passed (activeDeadlineSeconds): "
                                  "Kubernetes ended the pod"),
        ),
        (
            {"phase": "Pending", "containerStatuses": [{"name": "session", "state": {"waiting": {
                "reason": "ImagePullBackOff", "message": "not found"}}}]},
            ExitStatus(None,
                       error="ImagePullBackOff: image scriptsmanager-env-base:abc: not found"),
        ),
        ({"phase": "Pending", "containerStatuses": [{"name": "session", "state": {"waiting": {
            "reason": "ContainerCreating"}}}]}, None),
    ],
    ids=["oom", "deadline", "image missing", "creating"],
)  # fmt: skip
def test_poll_reads_how_the_pod_ended(api, roots, status, expected) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots))
    api.set_pod(NAME, status)
    assert backend.poll(handle) == expected


def test_the_watch_keeps_pod_states_without_api_reads(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots, "internal"))
    watch = backend.pod_watch(start_thread=False)
    api.queue("MODIFIED", api.set_pod(NAME, running()))
    api.queue("BOOKMARK", {"metadata": {"resourceVersion": "999"}})
    done = api.set_pod(NAME, ended(0))
    api.queue("MODIFIED", done)
    api.set_pod(NAME, running())  # the API's own copy lags; the watch has the news
    watch.run_once()
    (listed,) = api.calls_of("list")
    assert listed[3] == "io.scriptsmanager.managed=true,io.scriptsmanager.instance=plant-a"
    api.calls.clear()
    assert backend.poll(handle) == ExitStatus(0)
    assert api.calls_of("read") == []  # answered from the watch
    api.queue("DELETED", done)
    watch.run_once()
    api.objects.pop(("Pod", "sessions", NAME))
    assert backend.poll(handle) == ExitStatus(None, error="gone")


def test_the_watch_lists_again_after_410_gone(api, roots) -> None:
    backend = make_backend(api, roots)
    backend.start(make_spec(roots))
    watch = backend.pod_watch(start_thread=False)
    api.queue("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})
    news = {**api.pod(NAME), "status": running()}
    api.queue("MODIFIED", news)  # never read: the watch ended first
    watch.run_once()
    assert watch.get(NAME)["status"]["phase"] == "Pending"
    api.set_pod(NAME, running())
    watch.run_once()  # lists again: the current state
    assert watch.get(NAME)["status"]["phase"] == "Running"
    assert len(api.calls_of("list")) == 2


def test_a_failed_watch_falls_back_to_reads(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots))
    watch = backend.pod_watch(start_thread=False)
    watch.run_once()
    watch.synced = False  # what the watch loop does when the API fails
    api.set_pod(NAME, ended(4, "Error"))
    assert backend.poll(handle) == ExitStatus(4)


def test_the_watch_thread_runs_and_stops(api, roots) -> None:
    backend = make_backend(api, roots, watch=True)
    handle = backend.start(make_spec(roots))
    api.set_pod(NAME, ended(0))
    assert backend.poll(handle) == ExitStatus(0)
    assert backend.pod_watch()._thread is not None
    backend.close()


def test_stop_deletes_the_pod_and_the_exit_status_stays_readable(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots, "internal"))
    write_capture(roots, ["1 2026-01-01T00:00:00.000000001Z stdout\thello",
                          "2 2026-01-01T00:00:00.000000002Z end\t143"])  # fmt: skip
    backend.stop(handle, timeout=4.2)
    assert api.calls_of("delete") == [("delete", "Pod", "sessions", NAME, 5)]
    assert backend.poll(handle) == ExitStatus(143)  # from the capture's end record
    backend.stop(handle, now=True)  # already gone: no error
    assert api.calls_of("delete")[-1][-1] == 0
    assert [line.text for line in backend.logs(handle)] == ["hello"]


def test_remove_deletes_every_object_and_the_capture(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots, "internal"))
    write_capture(roots, ["1 2026-01-01T00:00:00.000000001Z end\t0"])
    backend.remove(handle)
    assert api.objects == {}
    assert not (roots["logs"] / "capture" / UUID).exists()
    backend.remove(handle)  # twice: already gone is fine
    assert backend.poll(handle) == ExitStatus(None, error="gone")


def test_a_restarted_manager_readopts_sessions_by_label(api, roots) -> None:
    first = make_backend(api, roots)
    handle = first.start(make_spec(roots, "internal"))
    other = make_spec(roots, execution_uuid="99999999-2d4a-4c8e-9f10-aa55bb66cc77")
    first.start(other)
    api.objects.pop(("Pod", "sessions", other.name))  # its pod is gone, its Service is left
    foreign = make_spec(roots, execution_uuid="77777777-2d4a-4c8e-9f10-aa55bb66cc77", instance="b")
    first.start(foreign)  # another installation's session in the same namespace
    api.set_pod(NAME, running())
    again = make_backend(api, roots)
    handles = {h.execution_uuid: h for h in again.list_sessions()}
    assert set(handles) == {UUID, other.execution_uuid}
    assert handles[UUID].state == {"name": NAME, "namespace": "sessions", "port": 8080,
                                   "cluster_ip": handle.state["cluster_ip"]}  # fmt: skip
    assert again.address(handles[UUID]) == Target(handle.state["cluster_ip"], 8080)
    again.remove(handles[other.execution_uuid])  # the reaper clears the leftovers
    assert not [key for key in api.objects if key[2] == other.name]


def test_logs_come_from_the_capture_file(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots))
    write_capture(roots, [
        "1 2026-01-01T00:00:00.000000001Z stdout\tone",
        "2 2026-01-01T00:00:00.000000002Z stderr\ttwo",
        "3 2026-01-01T00:00:00.000000003Z stdout\tthree",
        "4 2026-01-01T00:00:00.000000004Z end\t0",
    ])  # fmt: skip
    api.set_pod(NAME, ended(0))
    lines = list(backend.logs(handle, follow=True))
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "one"),
        ("stderr", "two"),
        ("stdout", "three"),
    ]
    after = list(backend.logs(handle, since=lines[1].timestamp))
    assert [line.text for line in after] == ["three"]
    assert capture_exit_code(roots["logs"] / "capture" / UUID / CAPTURE_FILE) == 0


def test_a_capture_cut_short_says_so(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots))
    write_capture(roots, ["1 2026-01-01T00:00:00.000000001Z stdout\tone"])
    api.set_pod(NAME, ended(137, "OOMKilled"))
    lines = list(backend.logs(handle, follow=True))
    assert lines[0].text == "one"
    assert lines[-1].stream == "debug" and "may be missing" in lines[-1].text


def test_without_a_capture_the_pod_log_is_read(api, roots) -> None:
    backend = make_backend(api, roots)
    handle = backend.start(make_spec(roots))
    api.set_pod(NAME, ended(1, "Error"))
    api.logs[NAME] = [
        "2026-01-01T00:00:01.000000000Z exec /usr/bin/python: exec format error",
        "2026-01-01T00:00:02.000000000Z " + "x" * 500,
    ]
    lines = list(backend.logs(handle, follow=True))
    assert lines[0].stream == "debug" and "Pod log" in lines[0].text
    assert (lines[1].stream, lines[1].text) == ("stderr", "exec /usr/bin/python: exec format error")
    assert len(lines[2].text) == 100  # SM_LOG_MAX_LINE holds here too
    assert [line.text for line in backend.logs(handle, since=lines[1].timestamp)][1:] == ["x" * 100]


def test_ping_reports_the_claims(api, roots) -> None:
    backend = make_backend(api, roots)
    for name in ("sm-data", "sm-logs"):
        api.objects[("PersistentVolumeClaim", "sessions", name)] = {
            "metadata": {"name": name}, "status": {"phase": "Bound"}}  # fmt: skip
    result = backend.ping()
    assert result["status"] == "ok" and result["namespace"] == "sessions"
    assert result["warnings"] == [f"claim sm-scripts ({roots['scripts']}): missing"]
    api.fail("list", "Pod", 403, "forbidden")
    assert backend.ping()["status"] == "error"


def test_from_config_reads_the_settings() -> None:
    config = {
        "SM_KUBE_NAMESPACE": "sessions",
        "SM_KUBE_VOLUMES": ["/srv/data=sm-data"],
        "SM_KUBE_MANAGER_NAMESPACE": "sm",
        "SM_KUBE_MANAGER_LABELS": "",
        "SM_KUBE_IMAGE_REGISTRY": "reg.example.com/sm",
        "SM_KUBE_IMAGE_PULL_SECRETS": ["regcred"],
        "SM_KUBE_CLUSTER_CIDRS": ["10.244.0.0/16"],
        "SM_EGRESS_ALLOW": [],
        "SM_INSTANCE": "plant-a",
    }
    backend = KubernetesBackend.from_config(
        config, capture_dir=Path("/srv/logs/capture"), capture_limits=CaptureLimits()
    )
    assert backend.namespace == "sessions" and backend.instance == "plant-a"
    assert backend.settings.claims == (ClaimMount("/srv/data", "sm-data"),)
    assert backend.settings.manager_labels  # never empty: {} would admit every pod
    with pytest.raises(ConfigError, match="SM_EGRESS_ALLOW"):
        KubernetesBackend.from_config(
            {**config, "SM_EGRESS_ALLOW": ["10.244.3.0/24"]},
            capture_dir=Path("/x"),
            capture_limits=CaptureLimits(),
        )
    with pytest.raises(ConfigError, match="SM_KUBE_VOLUMES"):
        KubernetesBackend.from_config(
            {**config, "SM_KUBE_VOLUMES": ["data=sm-data"]},
            capture_dir=Path("/x"),
            capture_limits=CaptureLimits(),
        )


def test_the_app_picks_the_kubernetes_backend(tmp_path, monkeypatch) -> None:
    from manager.config import build_config
    from manager.sessions.runtime import make_backend as make_app_backend

    values = build_config({
        "SECRET_KEY": "k" * 40,
        "SM_DATA_DIR": str(tmp_path),
        "SM_LOG_DIR": str(tmp_path / "logs"),
        "SM_SESSION_BACKEND": "kubernetes",
        "SM_KUBE_NAMESPACE": "sessions",
        "SM_KUBE_VOLUMES": f"{tmp_path}=sm-data",
    })  # fmt: skip

    class App:
        config = values

    backend = make_app_backend(App())  # type: ignore[arg-type]
    assert isinstance(backend, KubernetesBackend)
    assert backend.capture_dir == tmp_path / "logs" / "capture"
    assert backend._api is None  # no API call, no client until a session needs one


def test_api_errors_keep_their_status() -> None:
    error = ApiError(409, "exists")
    assert error.status == 409 and "exists" in str(error)
    assert isinstance(Handle("x"), Handle)
