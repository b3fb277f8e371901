"""Prometheus metrics at ``/metrics`` (``prometheus_client``).

Counters and histograms live in one registry per process (``REGISTRY``), bumped where things
happen; figures that are states (sessions by state, Socket.IO clients, images) are read when
Prometheus scrapes. Access: an admin's login or API token, or ``Authorization: Bearer
<SM_METRICS_TOKEN>`` for the scraper.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_login import current_user
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

REGISTRY = CollectorRegistry(auto_describe=True)

SESSION_STARTS = Counter(
    "sm_session_starts", "Sessions started, by kind", ["kind"], registry=REGISTRY
)
SESSION_FAILURES = Counter(
    "sm_session_start_failures", "Sessions that could not start", registry=REGISTRY
)
START_LATENCY = Histogram(
    "sm_session_start_seconds",
    "From execute to a session's web server answering (interactive) or running (batch)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
PROXY_LATENCY = Histogram(
    "sm_proxy_request_seconds",
    "Proxied requests, until the response head (or the whole response when written directly)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
    registry=REGISTRY,
)
PROXY_RESPONSES = Counter(
    "sm_proxy_responses", "Proxied responses by status class", ["status"], registry=REGISTRY
)
LOG_LINES = Counter("sm_log_lines", "Output lines stored by the log pumps", registry=REGISTRY)
LOG_DROPPED = Counter(
    "sm_log_lines_dropped", "Output lines past a run's log size cap (not stored)", registry=REGISTRY
)
IMAGE_BUILDS = Counter(
    "sm_image_builds", "Environment image builds by result", ["result"], registry=REGISTRY
)
LOGIN_FAILURES = Counter("sm_login_failures", "Failed logins", registry=REGISTRY)

bp = Blueprint("metrics", __name__)


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


class _StateCollector(Collector):
    """Figures read at scrape time from the app: sessions by state, clients, images."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from manager.extensions import db
        from manager.models import CondaEnvironment, ScriptProcess

        sessions = GaugeMetricFamily(
            "sm_sessions", "Sessions in the database by state", labels=["state"]
        )
        try:
            rows = db.session.execute(
                select(ScriptProcess.status, func.count(ScriptProcess.id))
                .where(ScriptProcess.status.in_(("starting", "running", "stopping")))
                .group_by(ScriptProcess.status)
            ).all()
            counts = {state: 0 for state in ("starting", "running", "stopping")}
            counts.update({str(state): int(count) for state, count in rows})
            for state, count in sorted(counts.items()):
                sessions.add_metric([state], count)
            images = db.session.execute(
                select(func.count(CondaEnvironment.id)).where(
                    CondaEnvironment.image_state == "built"
                )
            ).scalar_one()
        except SQLAlchemyError:
            db.session.rollback()
            images = 0
        yield sessions
        live = self.app.extensions.get("sm_live_logs")
        clients = GaugeMetricFamily(
            "sm_socketio_clients", "Socket.IO clients watching runs in this process"
        )
        clients.add_metric([], len(getattr(live, "_joined", {}) or {}))
        yield clients
        environments = GaugeMetricFamily("sm_environment_images", "Environment images built")
        environments.add_metric([], images)
        yield environments


def _allowed() -> bool:
    if current_user.is_authenticated and current_user.is_admin:
        return True
    expected = current_app.config.get("SM_METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if expected and given.lower().startswith("bearer "):
        return hmac.compare_digest(given[7:].strip().encode(), expected.encode())
    return False


@bp.get("/metrics")
def metrics() -> Any:
    if not _allowed():
        from manager.errors import error_response  # not at import: errors -> proxy -> metrics

        return error_response(
            401 if not current_user.is_authenticated else 403,
            "Metrics are for admins, or for a scraper with SM_METRICS_TOKEN as its bearer token.",
        )
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_StateCollector(current_app))
    body = generate_latest(REGISTRY) + generate_latest(scrape)
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")
