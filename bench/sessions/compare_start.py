"""Session start of two checkouts side by side: the same starts as ``bench_start.py``, run by two
``scriptsmanager serve`` at once (each from its own checkout, with its own runner image),
alternating start by start, so a noisy machine's load falls on both alike.

    python bench/sessions/compare_start.py --a /tmp/before --b /tmp/after [--runs 20]

Each checkout's runner image must be built (its tag comes from its runner files), e.g. with
``scriptsmanager images build`` run in that checkout. Prints, for each: the cold and the pooled
start (execute -> first 200 through the proxy) and a standby's time to ready; and the engine's
``docker run -d`` floor, measured between the rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.sessions.bench_start import (  # noqa: E402
    _group_of,
    _image,
    cleanup,
    docker_run_floor,
    figures,
    interactive_start,
    pooled_start,
    set_pool_size,
    wait_pool,
)
from tests.support.serve import Server, login, script_ids  # noqa: E402


class Side:
    """One checkout's server and its figures."""

    def __init__(self, name: str, checkout: Path, root: Path) -> None:
        self.name = name
        self.checkout = checkout
        self.instance = f"smcmp-{name}-{uuid.uuid4().hex[:6]}"
        self.server = Server(root, self.instance, self.instance, SM_MONITOR_INTERVAL="0.05",
                             PYTHONPATH=str(checkout))  # fmt: skip
        self.cold: list[float] = []
        self.pooled: list[float] = []
        self.readied: list[float] = []

    def start(self) -> None:
        self.server.start()
        self.session = login(self.server)
        self.calculator = script_ids(self.server, self.session)["calculator.py"]
        self.group_id = _group_of(self.server, self.session, "calculator.py")
        interactive_start(self.server, self.session, self.calculator)  # warm the engine caches
        self.image = _image(self.server, self.session)

    def cold_start(self) -> None:
        set_pool_size(self.server, self.session, self.group_id, 0)
        wait_pool(self.instance, 0)
        self.cold.append(interactive_start(self.server, self.session, self.calculator))

    def pooled_start(self) -> None:
        set_pool_size(self.server, self.session, self.group_id, 1)
        self.pooled.append(pooled_start(self.server, self.session, self.calculator,
                                        self.instance, readied=self.readied))  # fmt: skip
        set_pool_size(self.server, self.session, self.group_id, 0)
        wait_pool(self.instance, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=Path, required=True, help="the first checkout (before)")
    parser.add_argument("--b", type=Path, required=True, help="the second checkout (after)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    floor: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sm-compare-") as tmp:
        sides = [Side("a", args.a.resolve(), Path(tmp, "a")),
                 Side("b", args.b.resolve(), Path(tmp, "b"))]  # fmt: skip
        try:
            for side in sides:
                side.start()
            for run in range(args.runs):
                order = sides if run % 2 == 0 else sides[::-1]
                for side in order:
                    side.cold_start()
                for side in order:
                    side.pooled_start()
                floor.append(docker_run_floor(sides[0].image))
        finally:
            for side in sides:
                side.server.kill()
                cleanup(side.instance)
    for side in sides:
        print(f"{side.name}: {side.checkout}, {side.image} ({len(side.cold)} runs)")
        print(f"  cold, execute -> first 200:    {figures(side.cold)}")
        print(f"  pooled, execute -> first 200:  {figures(side.pooled)}")
        print(f"  standby running -> ready:      {figures(side.readied)}")
    print(f"docker run -d, the engine's floor: {figures(floor)}")


if __name__ == "__main__":
    main()
