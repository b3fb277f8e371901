"""A fake Kubernetes API for the backend's orchestration tests: no cluster can run here.

It keeps objects in memory the way the API server would (409 on a second create, 404 as None,
a cluster IP for a Service, a resourceVersion on everything), records every call, validates
every object created against the Kubernetes OpenAPI schemas, and plays back watch events that a
test queues. The kubelet's part (a pod running, ending, its log) is what tests set by hand.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import kubernetes_validate

from manager.sessions.kube_api import ApiError

K8S_VERSION = "1.31"


def validate(body: dict[str, Any]) -> None:
    """Raise when ``body`` does not match the schema of its kind (strict: no unknown fields)."""
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeKubeApi:
    """``KubeApi`` in memory (see the module docstring)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.events: list[dict[str, Any]] = []  # played back by the next watch
        self.logs: dict[str, list[str]] = {}  # pod name -> its Pod log lines
        self.errors: dict[tuple[str, str], ApiError] = {}  # (verb, kind) -> raised
        self._version = itertools.count(100)
        self._ips = itertools.count(10)

    # ------------------------------------------------------------------ test controls

    def fail(self, verb: str, kind: str, status: int, message: str = "refused") -> None:
        self.errors[(verb, kind)] = ApiError(status, message)

    def _check(self, verb: str, kind: str) -> None:
        error = self.errors.get((verb, kind))
        if error is not None:
            raise error

    def pod(self, name: str, namespace: str = "sessions") -> dict[str, Any]:
        return self.objects[("Pod", namespace, name)]

    def set_pod(self, name: str, status: dict[str, Any], namespace: str = "sessions") -> dict:
        """Give a pod a status (the kubelet's work); returns a copy, as a watch event carries."""
        pod = self.pod(name, namespace)
        pod["status"] = status
        pod["metadata"]["resourceVersion"] = str(next(self._version))
        return copy.deepcopy(pod)

    def queue(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append({"type": kind, "object": copy.deepcopy(obj)})

    def calls_of(self, verb: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == verb]

    # ------------------------------------------------------------------ the KubeApi

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", kind, namespace, body["metadata"]["name"]))
        self._check("create", kind)
        validate(body)
        key = (kind, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, f"{kind.lower()}s {key[2]!r} already exists")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self._version))
        if kind == "Service":
            stored["spec"]["clusterIP"] = f"10.96.0.{next(self._ips)}"
        if kind == "Pod":
            stored["status"] = {"phase": "Pending"}
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("read", kind, namespace, name))
        self._check("read", kind)
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def delete(
        self, kind: str, namespace: str, name: str, *, grace_seconds: int | None = None
    ) -> bool:
        self.calls.append(("delete", kind, namespace, name, grace_seconds))
        self._check("delete", kind)
        return self.objects.pop((kind, namespace, name), None) is not None

    def list(self, kind: str, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(("list", kind, namespace, selector))
        self._check("list", kind)
        items = [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and ns == namespace
            and _matches(obj["metadata"].get("labels", {}), selector)
        ]
        return items, str(next(self._version))

    def watch(
        self, kind: str, namespace: str, selector: str, resource_version: str, timeout: int
    ) -> Iterator[dict[str, Any]]:
        self.calls.append(("watch", kind, namespace, selector, resource_version))
        self._check("watch", kind)
        events, self.events = self.events, []
        yield from events  # then the watch "times out"

    def pod_log(self, namespace: str, name: str, *, follow: bool = False) -> Iterator[str]:
        self.calls.append(("pod_log", namespace, name, follow))
        self._check("pod_log", "Pod")
        yield from self.logs.get(name, [])
