"""Shared by the session tests: this run's names, and a small driver for test sessions.

Imported as ``tests.sessions.session_support`` by the conftest and the tests alike, so the random
run id below is drawn once per test run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from manager.sessions.backend import LABEL_INSTANCE, ExitStatus, Handle, LogLine
from manager.sessions.docker import DockerBackend, prepare_workspace, write_context_file
from manager.sessions.limits import Limits
from manager.sessions.network import remove_networks
from manager.sessions.spec import build_spec, context_document

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:6]
TEST_PREFIX = f"smtest-{RUN_ID}"  # network names
TEST_BRIDGES = f"smt{RUN_ID}"  # bridge names: smtXXXXXX-int, 13 characters
TEST_INSTANCE = f"smtest-{RUN_ID}"  # instance label on every container


def docker_backend(client: Any, capture_dir: Path | None = None) -> DockerBackend:
    """A Docker backend on this run's names; with ``capture_dir``, as the manager runs it (the
    runs' output captured in files, containers joined to their network after the start)."""
    return DockerBackend(
        client,
        instance=TEST_INSTANCE,
        network_prefix=TEST_PREFIX,
        bridge_prefix=TEST_BRIDGES,
        capture_dir=capture_dir,
    )


# Small limits keep hostile scripts quick; each test overrides what it probes.
TEST_LIMITS = Limits(memory="128m", cpus=0.5, pids=64, tmpfs="16m", run_timeout=60)


def remove_test_objects(client: Any) -> None:
    """Remove this run's containers, networks and firewall rules."""
    label = f"{LABEL_INSTANCE}={TEST_INSTANCE}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    remove_networks(client, TEST_PREFIX, TEST_BRIDGES)  # also deletes the firewall rules
    for network in client.networks.list(names=[TEST_PREFIX]):
        if network.name.startswith(TEST_PREFIX):  # other networks the tests made
            network.remove()


@dataclass
class Session:
    """A started test session and what the test needs to look at it."""

    handle: Handle
    workspace: Path
    backend: DockerBackend

    def wait(self, timeout: float = 30) -> ExitStatus:
        """Poll until the session ends; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backend.poll(self.handle)
            if status is not None:
                return status
            time.sleep(0.05)
        pytest.fail(f"session {self.handle.state['name']} still running after {timeout} s")

    def lines(self, stream: str | None = None) -> list[LogLine]:
        return [line for line in self.backend.logs(self.handle) if stream in (None, line.stream)]

    def text(self, stream: str = "stdout") -> str:
        return "\n".join(line.text for line in self.lines(stream))

    def target(self, timeout: float = 10) -> tuple[str, int]:
        """Wait until the session has an address; return (host, port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.backend.address(self.handle)
            if found is not None:
                return found.host, found.port
            time.sleep(0.05)
        pytest.fail("the session got no address")


@dataclass
class SessionFactory:
    """``start(script, ...)`` writes a script and its context, builds the spec and starts it."""

    backend: DockerBackend
    image: str
    root: Path
    started: list[Session] = field(default_factory=list)

    def start(
        self,
        script: str,
        *,
        parameters: dict[str, Any] | None = None,
        interactive: bool = False,
        user: str = "alice",
        project: str = "pumps",
        image: str | None = None,
        **limits: Any,
    ) -> Session:
        execution = str(uuid.uuid4())
        folder = self.root / execution
        scripts = folder / "scripts"
        scripts.mkdir(parents=True)
        (scripts / "script.py").write_text(script)
        workspace = prepare_workspace(self.root / "workspaces" / user / project)
        document = context_document(
            script_filename="script.py", parameters=parameters or {}, user_id=user,
            user_level="operator", project_id=project, project_name=project.title(),
            prefix="/project/1/script/2/user/3" if interactive else "",
        )  # fmt: skip
        context = write_context_file(folder / "context.json", document)
        spec = build_spec(
            execution_uuid=execution, image=image or self.image, script_host_dir=str(scripts),
            script_filename="script.py", workspace_host_dir=str(workspace),
            context_host_file=str(context), limits=_limits(**limits), user_id=user,
            script_id=2, project_id=project, interactive=interactive, instance=TEST_INSTANCE,
        )  # fmt: skip
        session = Session(self.backend.start(spec), workspace, self.backend)
        self.started.append(session)
        return session


def _limits(**overrides: Any) -> Limits:
    return replace(TEST_LIMITS, **overrides)
