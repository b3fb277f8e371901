"""``ClientApi``, the thin layer over the official ``kubernetes`` client, over real HTTP.

No API server can run here, so a small HTTP server on 127.0.0.1 answers the few paths the
backend uses the way the API server documents them (JSON bodies, a ``Status`` on errors, a
watch as one JSON event per line, a log as text). The client, its URLs and its error handling
are the real ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from manager.sessions.kube_api import ApiError, ClientApi

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sm-session-1"},
    "spec": {"containers": [{"name": "session", "image": "scriptsmanager-env-base:1"}]},
}


class Handler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Any, kind: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, message: str) -> None:
        self._answer(code, {"kind": "Status", "status": "Failure", "code": code,
                            "message": message})  # fmt: skip

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        query = parse_qs(url.query)
        self.requests.append((self.command, url.path, query, body))
        return url.path, query

    def do_POST(self) -> None:
        path, _ = self._record()
        if path == "/api/v1/namespaces/sessions/pods":
            self._answer(201, {**self.requests[-1][3], "status": {"phase": "Pending"}})
        elif path == "/apis/networking.k8s.io/v1/namespaces/sessions/networkpolicies":
            self._status(409, 'networkpolicies "sm-session-1" already exists')
        else:
            self._status(404, "not found")

    def do_GET(self) -> None:
        path, query = self._record()
        if path == "/api/v1/namespaces/sessions/pods" and query.get("watch") == ["true"]:
            events = [{"type": "ADDED", "object": POD}, {"type": "DELETED", "object": POD}]
            self._answer(200, b"".join(json.dumps(e).encode() + b"\n" for e in events))
        elif path == "/api/v1/namespaces/sessions/pods":
            self._answer(200, {"kind": "PodList", "items": [POD],
                               "metadata": {"resourceVersion": "42"}})  # fmt: skip
        elif path == "/api/v1/namespaces/sessions/pods/sm-session-1/log":
            self._answer(200, b"2026-01-01T00:00:00Z one\n2026-01-01T00:00:01Z two", "text/plain")
        elif path == "/api/v1/namespaces/sessions/pods/sm-session-1":
            self._answer(200, POD)
        elif path == "/api/v1/namespaces/sessions/services/forbidden":
            self._status(403, "services is forbidden")
        else:
            self._status(404, "not found")

    def do_DELETE(self) -> None:
        path, _ = self._record()
        if path == "/api/v1/namespaces/sessions/pods/sm-session-1":
            self._answer(200, POD)
        else:
            self._status(404, "not found")


@pytest.fixture
def api() -> Iterator[ClientApi]:
    from kubernetes import client

    Handler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    api_client = client.ApiClient(configuration)
    try:
        yield ClientApi(api_client)
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()


def test_create_read_delete_list(api: ClientApi) -> None:
    created = api.create("Pod", "sessions", POD)
    assert created["status"] == {"phase": "Pending"}
    assert Handler.requests[-1][3] == POD  # the dict went out as it was
    assert api.read("Pod", "sessions", "sm-session-1") == POD
    assert api.read("Pod", "sessions", "other") is None  # 404
    assert api.delete("Pod", "sessions", "sm-session-1", grace_seconds=0) is True
    assert Handler.requests[-1][2]["gracePeriodSeconds"] == ["0"]
    assert api.delete("Service", "sessions", "gone") is False  # 404: already gone
    items, version = api.list("Pod", "sessions", "io.scriptsmanager.managed=true")
    assert items == [POD] and version == "42"
    assert Handler.requests[-1][2]["labelSelector"] == ["io.scriptsmanager.managed=true"]


def test_the_backends_manifests_pass_the_clients_own_checks(api: ClientApi) -> None:
    from manager.sessions.k8s_manifests import session_manifests
    from tests.k8s.test_manifests import CAPTURE, SETTINGS, make_spec

    policy, pod, service = session_manifests(make_spec("egress"), SETTINGS, capture_path=CAPTURE)
    assert api.create("Pod", "sessions", pod)["metadata"] == pod["metadata"]
    with pytest.raises(ApiError) as not_here:  # this little server knows no Services
        api.create("Service", "sessions", service)
    assert not_here.value.status == 404  # the body passed the client's checks; the server said no
    with pytest.raises(ApiError) as conflict:
        api.create("NetworkPolicy", "sessions", policy)
    assert conflict.value.status == 409


def test_errors_keep_status_and_message(api: ClientApi) -> None:
    with pytest.raises(ApiError) as refused:
        api.create("NetworkPolicy", "sessions", {**POD, "kind": "NetworkPolicy"})
    assert refused.value.status == 422  # the client's own check: a pod's spec is no policy's
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "sm-session-1"}, "spec": {"podSelector": {}}}  # fmt: skip
    with pytest.raises(ApiError) as conflict:
        api.create("NetworkPolicy", "sessions", policy)
    assert conflict.value.status == 409 and "already exists" in conflict.value.message
    with pytest.raises(ApiError) as forbidden:
        api.read("Service", "sessions", "forbidden")
    assert forbidden.value.status == 403 and forbidden.value.message == "services is forbidden"


def test_watch_and_pod_log(api: ClientApi) -> None:
    events = list(api.watch("Pod", "sessions", "a=b", "42", timeout=5))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "sm-session-1"),
        ("DELETED", "sm-session-1"),
    ]
    query = Handler.requests[-1][2]
    assert query["resourceVersion"] == ["42"] and query["watch"] == ["true"]
    assert list(api.pod_log("sessions", "sm-session-1")) == [
        "2026-01-01T00:00:00Z one",
        "2026-01-01T00:00:01Z two",
    ]
    assert Handler.requests[-1][2]["timestamps"] == ["true"]
    assert list(api.pod_log("sessions", "nobody")) == []  # 404: no pod, no lines


def test_an_unreachable_server_is_status_0() -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: nothing listens
    configuration.retries = 0
    api_client = client.ApiClient(configuration)
    try:
        with pytest.raises(ApiError) as caught:
            ClientApi(api_client).read("Pod", "sessions", "x")
        assert caught.value.status == 0
    finally:
        api_client.close()
