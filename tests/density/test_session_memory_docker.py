"""An idle interactive session costs at most 30 MiB (issues 12 and 13: 100 sessions a host).

One calculator session, started as the manager starts it (output capture on), its page loaded
and then 48 requests, 8 at a time, so every server thread has worked; after a few idle seconds its
container's memory, as ``docker stats`` and ``bench/density`` read it (cgroup usage less inactive
page cache), must be within the limit. The measuring code is the bench's
(``bench/density/session_memory.py``), so the test and the figures in bench/README.md agree.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from manager.sessions.docker import DockerBackend
from tests.sessions.session_support import TEST_BRIDGES, TEST_INSTANCE, TEST_PREFIX

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "density"))

import session_memory  # noqa: E402

pytestmark = pytest.mark.docker

SESSION_LIMIT_MIB = 30.0
# The capture process (python -m smrunner) imports nothing but C modules: 3.4 MiB measured. Flask
# imported there again by accident would make it about 19 MiB.
CAPTURE_LIMIT_MIB = 6.0


def _table(processes: list[dict]) -> str:
    return "\n".join(
        f"  {row['pid']}: anon {row.get('Pss_Anon', 0) / 1024:.1f} MiB, rss"
        f" {row.get('Rss', 0) / 1024:.1f} MiB, {row.get('threads')} threads: {row['cmd']}"
        for row in processes
    )


def test_an_idle_interactive_session_stays_within_30_mib(
    docker_client, env_image: str, tmp_path: Path
) -> None:
    backend = DockerBackend(
        docker_client, instance=TEST_INSTANCE, network_prefix=TEST_PREFIX,
        bridge_prefix=TEST_BRIDGES, capture_dir=tmp_path / "capture",
    )  # fmt: skip
    handle = session_memory.start_calculator(backend, env_image, tmp_path, {})
    try:
        session_memory.wait_page(backend, handle)
        session_memory.warm(backend, handle, 48)
        time.sleep(3)
        container_id = handle.state["container_id"]
        total, anon = session_memory.container_memory(docker_client, container_id)
        processes = session_memory.process_memory(container_id)
    finally:
        backend.remove(handle)
    figures = f"{total:.1f} MiB (anon {anon:.1f} MiB):\n{_table(processes)}"
    assert total <= SESSION_LIMIT_MIB, f"an idle calculator session uses {figures}"
    # The capture forks the runner, so both run as "python -m smrunner": the capture is the one
    # whose parent is not another of them.
    runners = [row for row in processes if row["cmd"] == "python -m smrunner"]
    captures = [row for row in runners if row.get("ppid") not in {r["pid"] for r in runners}]
    assert len(captures) == 1, f"one capture process: {figures}"
    for row in captures:
        assert row["Pss_Anon"] / 1024 <= CAPTURE_LIMIT_MIB, f"the capture process grew: {figures}"
