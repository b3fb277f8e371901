"""The manager's own cost per line: FakeBackend output → pump → file → batched Socket.IO emits.

No container and no network: a FakeBackend session holds N lines, one pump reads them into the
log file while the hub's batch loop flushes every 50 ms and ``LiveLogs`` encodes and "sends"
each batch to one watcher (a python-socketio server whose transport only counts bytes). Prints
lines/s from the pump's start to the last line emitted. ``bench_live.py`` measures the same path
from a real container's output.

    python bench/logs/bench_pump.py [--lines 500000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from manager import create_app  # noqa: E402
from manager.auth.service import create_user  # noqa: E402
from manager.db import upgrade  # noqa: E402
from manager.extensions import db  # noqa: E402
from manager.logs.hub import LogHub  # noqa: E402
from manager.logs.pump import Pump  # noqa: E402
from manager.logs.store import count_lines  # noqa: E402
from manager.logs.stream import LiveLogs  # noqa: E402
from manager.models import Execution  # noqa: E402
from manager.sessions.backend import SessionSpec  # noqa: E402
from manager.sessions.fake import FakeBackend, FakeScript  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sm-bench-pump-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root}/bench.db"
        upgrade(url)
        fake = FakeBackend(FakeScript(exit_code=None))
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "SM_DATA_DIR": str(root / "data"), "SM_LOG_DIR": str(root / "logs"),
                          "SM_BACKUP_DIR": str(root / "backup"), "SM_WATCH_SCRIPTS": False,
                          "SM_BASE_IMAGE": "scriptsmanager-base:bookworm",
                          "SM_TEST_BACKEND": fake, "SM_LOG_PUMPS": True})  # fmt: skip
        hub: LogHub = app.extensions["sm_logs"]
        run_id = str(uuid.uuid4())
        with app.app_context():
            user = create_user(db.session, {"username": "bench", "password": "bench-password-1",
                                            "user_level": "operator"})  # fmt: skip
            db.session.flush()
            execution = Execution(user_id=user.id, execution_uuid=run_id, status="running")
            db.session.add(execution)
            db.session.commit()
            db.session.refresh(execution)
            db.session.expunge(execution)
        spec = SessionSpec(name="bench", image="fake", execution_uuid=run_id, labels={},
                           mounts=(), environment={})  # fmt: skip
        handle = fake.start(spec)
        for n in range(1, args.lines + 1):
            fake.emit(handle, f"{n} {time.time():.6f} some typical output of a script")
        fake.finish(handle, 0)

        server = socketio.Server(async_mode="threading")
        sent = {"bytes": 0, "messages": 0}

        def count(eio_sid: str, packet: object) -> None:
            sent["bytes"] += len(str(getattr(packet, "data", "")))
            sent["messages"] += 1

        server._send_eio_packet = count  # type: ignore[method-assign]
        server.manager.initialize()
        sid = server.manager.connect("eio-watcher", "/logs")
        live = LiveLogs(server, hub)
        with app.app_context():
            path = hub.path_for(execution)
            live.join(sid, run_id, execution.user_id, path, 0, 7)
            began = time.perf_counter()
            Pump(hub, hub.open(execution), fake, handle, follow=False).run()
            while live.viewer_count(run_id) and live._channels[run_id].published < args.lines:
                time.sleep(0.005)
            elapsed = time.perf_counter() - began
        hub.stop()
        print(f"FakeBackend → pump → file → emits: {args.lines} lines in {elapsed:.2f} s = "
              f"{args.lines / elapsed:,.0f} lines/s; {count_lines(path)} stored, "
              f"{sent['messages']} messages ({sent['bytes'] / 1e6:.1f} MB) emitted")  # fmt: skip


if __name__ == "__main__":
    main()
