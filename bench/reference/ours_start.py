"""Our cold interactive start, timed as ``bench/sessions/bench_start.py`` times it.

``bench_jupyterhub.py`` interleaves it with the reference's spawns, so both see the same load:
on a shared machine, figures from runs minutes apart are not comparable.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "sessions"))
sys.path.insert(0, str(REPO))

from bench_start import interactive_start  # noqa: E402

from tests.support.serve import Server, login, remove_instance, script_ids  # noqa: E402

START_TIMEOUT = 120  # seconds; bench_start's loop waits for a 200 without end


class StartTimeout(RuntimeError):
    """Our session did not answer 200 in ``START_TIMEOUT`` seconds."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise StartTimeout in the main thread after ``seconds`` (SIGALRM)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise StartTimeout(f"no 200 through our proxy in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class OurStart:
    """A real ``scriptsmanager serve`` (its own Docker instance label) and the calculator."""

    def __init__(self, root: Path, instance: str):
        self.instance = instance
        self.server = Server(root, instance, instance, SM_MONITOR_INTERVAL="0.05")
        self.calculator = 0

    def start(self) -> None:
        """Start the manager, log in, and open the calculator once (the engine's caches)."""
        self.server.start()
        self.session = login(self.server)
        self.calculator = script_ids(self.server, self.session)["calculator.py"]
        self.time()

    def time(self) -> float:
        """Seconds from execute to the first 200 through our proxy (the session is stopped).

        Raises StartTimeout after ``START_TIMEOUT`` seconds (the session is left to ``stop``).
        """
        with _deadline(START_TIMEOUT):
            return interactive_start(self.server, self.session, self.calculator)

    def stop(self) -> None:
        """Kill the manager and remove its containers and networks."""
        import docker

        self.server.kill()
        client = docker.from_env()
        remove_instance(client, self.instance, self.instance)
        client.close()
