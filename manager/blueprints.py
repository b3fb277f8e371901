"""Register every blueprint on the app."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # PostgreSQL's integer


class DatabaseId(IntegerConverter):
    """``<int:...>`` in a route is a database id: past MAX_ID it is a 404 instead of a 500 (an
    overflow of the database's integer). A converter's own ``max`` would make werkzeug answer
    405 for some such URLs, so the 404 is raised here."""

    def to_python(self, value: str) -> int:
        number = int(super().to_python(value))
        if number > MAX_ID:
            raise NotFound(f"There is nothing with id {value[:20]}.")
        return number


def register(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseId
    from manager.api import (
        admin_logs,
        admin_users,
        catalog,
        data,
        environments,
        i18n,
        logs,
        meta,
        presets,
        projects,
        sessions,
        tags,
        user,
    )
    from manager.api import auth as api_auth
    from manager.api import dashboard as api_dashboard
    from manager.api import docs as api_docs
    from manager.schedules import api as schedules_api
    from manager.views import admin, auth, files, main
    from manager.views import docs as doc_pages
    from manager.views import logs as log_pages

    for module in (
        auth,
        main,
        files,
        admin,
        log_pages,
        doc_pages,
        api_docs,
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
        tags,
        presets,
        api_dashboard,
        schedules_api,
    ):
        app.register_blueprint(module.bp)
    from manager.api import backup as api_backup
    from manager.api import log_extras
    from manager.views import admin_panel

    for module in (api_backup, admin_panel, log_extras):
        app.register_blueprint(module.bp)
    from manager import metrics, openapi

    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
