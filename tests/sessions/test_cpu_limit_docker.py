"""The group's CPU limit on the real engine: its share of each period, whatever the period."""

from __future__ import annotations

import pytest

from manager.sessions.backend import ExitStatus
from manager.sessions.docker import CPU_PERIOD_US, DockerBackend
from tests.sessions.session_support import SessionFactory

pytestmark = pytest.mark.docker

# Two busy threads for two seconds of wall time; prints the CPU seconds they got and the wall.
BUSY = (
    "import threading, time\n"
    "def spin(until):\n"
    "    while time.monotonic() < until:\n"
    "        pass\n"
    "began, cpu = time.monotonic(), time.process_time()\n"
    "threads = [threading.Thread(target=spin, args=(began + 2.0,)) for _ in range(2)]\n"
    "for t in threads: t.start()\n"
    "for t in threads: t.join()\n"
    "print('cpu', time.process_time() - cpu, 'wall', time.monotonic() - began)\n"
)


def test_a_busy_script_gets_no_more_than_its_share(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    session = sessions.start(BUSY, cpus=0.5)
    attrs = backend.client.containers.get(session.handle.state["container_id"]).attrs
    host = attrs["HostConfig"]
    assert (host["CpuQuota"], host["CpuPeriod"], host["NanoCpus"]) == (
        CPU_PERIOD_US // 2,
        CPU_PERIOD_US,
        0,
    )
    assert session.wait(timeout=60) == ExitStatus(0)
    _, cpu, _, wall = session.text().split()
    # Half a CPU of every period; the period in progress when the threads stop may be cut
    # short (up to one period's quota more than half of the wall time, never more).
    assert float(cpu) <= 0.5 * float(wall) + CPU_PERIOD_US / 2 / 1e6
