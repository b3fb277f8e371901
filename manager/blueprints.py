"""Register every blueprint on the app."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from manager.api import (
        admin_logs,
        admin_users,
        catalog,
        data,
        environments,
        i18n,
        logs,
        meta,
        projects,
        sessions,
        user,
    )
    from manager.api import auth as api_auth
    from manager.views import admin, auth, main
    from manager.views import logs as log_pages

    for module in (
        auth,
        main,
        admin,
        log_pages,
        api_auth,
        admin_users,
        catalog,
        i18n,
        meta,
        projects,
        data,
        sessions,
        environments,
        logs,
        admin_logs,
        user,
    ):
        app.register_blueprint(module.bp)
