"""Run the app under gunicorn: one process, the gevent worker (Socket.IO needs one process)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class ManagerServer(BaseApplication):
    def __init__(self, options: dict[str, Any], app_overrides: dict[str, Any]):
        self.options = options
        self.app_overrides = app_overrides
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from manager import create_app

        return create_app(self.app_overrides)


def serve(host: str, port: int, app_overrides: dict[str, Any]) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gevent",
        "timeout": 120,
        "graceful_timeout": 20,
        "keepalive": 30,
        "accesslog": None,  # the app writes logs/system/access.log itself
    }
    ManagerServer(options, app_overrides).run()
