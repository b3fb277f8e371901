"""The few Kubernetes API calls the session backend makes, over plain dicts.

``KubeApi`` is the seam: ``ClientApi`` makes the calls with the official ``kubernetes`` client
(imported here only, so the app needs it only when ``SM_SESSION_BACKEND=kubernetes``), and the
tests put a recording fake in its place (``tests/k8s/fake_api.py``), since no cluster runs
where the tests do. Objects go in and come out as the API's JSON (dicts), never client models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

KINDS = ("Pod", "Service", "NetworkPolicy", "PersistentVolumeClaim")


class ApiError(Exception):
    """The API answered with an error (``status``: its HTTP status; 0: it could not be reached)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class KubeApi(Protocol):
    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object; raises ApiError (409 when it exists)."""

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none (404)."""

    def delete(
        self, kind: str, namespace: str, name: str, *, grace_seconds: int | None = None
    ) -> bool:
        """Delete the object; False when it was already gone."""

    def list(self, kind: str, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        """The objects matching the label selector, and the list's resourceVersion."""

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout: int
    ) -> Iterator[dict[str, Any]]:
        """Change events (``{"type": ADDED|MODIFIED|DELETED|ERROR, "object": {...}}``) after
        ``resource_version``, for at most ``timeout`` seconds."""

    def pod_log(self, namespace: str, name: str, *, follow: bool = False) -> Iterator[str]:
        """The pod's log lines, each ``<RFC 3339 stamp> <text>`` (the API's ``timestamps``)."""


def _api_error(exc: Exception) -> ApiError:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        body = getattr(exc, "body", None) or getattr(exc, "reason", "") or ""
        try:
            message = json.loads(body).get("message", body)
        except (TypeError, ValueError, AttributeError):
            message = str(body)
        return ApiError(status, str(message))
    return ApiError(0, str(exc))


class ClientApi:
    """``KubeApi`` over the official client: in-cluster credentials, else ``~/.kube/config``."""

    def __init__(self, api_client: Any = None):
        import kubernetes  # noqa: F401  (the optional dependency, imported when chosen)
        from kubernetes import client, config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self._core = client.CoreV1Api(api_client)
        self._net = client.NetworkingV1Api(api_client)
        self._errors: tuple[type[Exception], ...] = (client.exceptions.ApiException,)
        try:
            import urllib3

            self._errors += (urllib3.exceptions.HTTPError,)
        except ImportError:  # pragma: no cover - urllib3 comes with the client
            pass

    def _method(self, verb: str, kind: str) -> Any:
        names = {
            "Pod": (self._core, "pod"),
            "Service": (self._core, "service"),
            "PersistentVolumeClaim": (self._core, "persistent_volume_claim"),
            "NetworkPolicy": (self._net, "network_policy"),
        }
        api, noun = names[kind]
        return getattr(api, f"{verb}_namespaced_{noun}")

    def _json(self, response: Any) -> Any:
        return json.loads(response.data or b"{}")

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self._json(
                self._method("create", kind)(namespace, body, _preload_content=False)
            )
            return found
        except self._errors as exc:
            raise _api_error(exc) from exc
        except ValueError as exc:  # the client's own check of the body (pydantic)
            raise ApiError(422, f"the client refused the {kind}: {exc}") from exc

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._json(
                self._method("read", kind)(name, namespace, _preload_content=False)
            )
            return found
        except self._errors as exc:
            error = _api_error(exc)
            if error.status == 404:
                return None
            raise error from exc

    def delete(
        self, kind: str, namespace: str, name: str, *, grace_seconds: int | None = None
    ) -> bool:
        options: dict[str, Any] = {"propagation_policy": "Background"}
        if grace_seconds is not None:
            options["grace_period_seconds"] = grace_seconds
        try:
            self._method("delete", kind)(name, namespace, _preload_content=False, **options)
            return True
        except self._errors as exc:
            error = _api_error(exc)
            if error.status == 404:
                return False
            raise error from exc

    def list(self, kind: str, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        try:
            found = self._json(
                self._method("list", kind)(
                    namespace, label_selector=selector, _preload_content=False
                )
            )
        except self._errors as exc:
            raise _api_error(exc) from exc
        return list(found.get("items") or []), str(found["metadata"].get("resourceVersion", ""))

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout: int
    ) -> Iterator[dict[str, Any]]:
        from kubernetes import watch

        stream = watch.Watch().stream(
            self._method("list", kind),
            namespace,
            label_selector=selector,
            resource_version=resource_version,
            timeout_seconds=timeout,
            allow_watch_bookmarks=True,
        )
        try:
            for event in stream:
                yield {"type": event["type"], "object": event["raw_object"]}
        except self._errors as exc:
            raise _api_error(exc) from exc

    def pod_log(self, namespace: str, name: str, *, follow: bool = False) -> Iterator[str]:
        try:
            response: Any = self._core.read_namespaced_pod_log(
                name,
                namespace,
                container="session",
                timestamps=True,
                follow=follow,
                _preload_content=False,
            )
        except self._errors as exc:
            error = _api_error(exc)
            if error.status in (400, 404):  # no pod, or its container never started
                return
            raise error from exc
        try:
            pending = b""
            for chunk in response.stream(64 * 1024):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")
        except self._errors as exc:
            raise _api_error(exc) from exc
        finally:
            response.release_conn()
