"""The session networks and firewall rules are re-checked once a minute by one caller; the
others go on with the last answer meanwhile (bench/load: every caller re-checking at once queued
dashboards and executes on the firewall's lock for a minute and more).

``ensure_networks`` is replaced by a stand-in that waits for the test: what is checked is who
calls it and who waits, not Docker or iptables (tests/sessions/test_session_network.py checks
those against the real engine).
"""

from __future__ import annotations

import threading

import pytest

from manager.sessions import docker as docker_backend
from manager.sessions.docker import NETWORK_RECHECK_SECONDS, DockerBackend
from manager.sessions.network import NetworkStatus


class SlowEnsure:
    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *_args, **_kwargs) -> NetworkStatus:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        return NetworkStatus(networks={"none": "fresh"}, isolation="full")


@pytest.fixture
def slow(monkeypatch) -> SlowEnsure:
    stand_in = SlowEnsure()
    monkeypatch.setattr(docker_backend, "ensure_networks", stand_in)
    return stand_in


def test_a_stale_answer_is_rechecked_by_one_caller_while_the_others_go_on(slow):
    backend = DockerBackend(client=object())
    old = NetworkStatus(networks={"none": "old"}, isolation="full")
    backend._networks = old
    backend._networks_checked = -2 * NETWORK_RECHECK_SECONDS  # stale
    answers: list[NetworkStatus] = []
    rechecker = threading.Thread(target=lambda: answers.append(backend.network_status()))
    rechecker.start()
    assert slow.entered.wait(10)
    # While the re-check hangs, everyone else gets the last answer at once.
    assert [backend.network_status() for _ in range(5)] == [old] * 5
    slow.release.set()
    rechecker.join(10)
    assert answers[0].networks == {"none": "fresh"}
    assert slow.calls == 1
    assert backend.network_status().networks == {"none": "fresh"}  # fresh: no new re-check
    assert slow.calls == 1


def test_the_first_answer_is_waited_for_and_made_once(slow):
    backend = DockerBackend(client=object())
    answers: list[NetworkStatus] = []
    callers = [
        threading.Thread(target=lambda: answers.append(backend.network_status())) for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    assert slow.entered.wait(10)
    slow.release.set()
    for caller in callers:
        caller.join(10)
    assert [a.networks for a in answers] == [{"none": "fresh"}] * 4
    assert slow.calls == 1
