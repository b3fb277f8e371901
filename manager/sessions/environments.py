"""Environments: ``conda-envs/NAME.yml`` specs, their images, builds with progress, details."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from manager import metrics
from manager.extensions import DbSession
from manager.models import CondaEnvironment, utcnow
from manager.sessions.images import (
    DEBOOTSTRAP_BASE_TAG,
    DEFAULT_BASE_IMAGE,
    ImageBuildError,
    build_env_image,
    env_image_tag,
    image_exists,
    parse_env_spec,
)

log = logging.getLogger("scriptsmanager")
BUILD_LOG_LINES = 400


def docker_client() -> Any:
    """A client of the local engine, or None when it is not reachable."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        log.warning("container engine not reachable: %s", exc)
        return None


def resolve_base_image(setting: str, client: Any, allow_pull: bool = False) -> str:
    """``auto``: the stock Python image when the engine has (or, with ``allow_pull``, can pull)
    it, else the debootstrap base."""
    if setting != "auto":
        return setting
    if client is not None and image_exists(client, DEFAULT_BASE_IMAGE):
        return DEFAULT_BASE_IMAGE
    if client is not None and image_exists(client, DEBOOTSTRAP_BASE_TAG):
        return DEBOOTSTRAP_BASE_TAG
    if client is not None and allow_pull:
        try:
            client.images.pull(DEFAULT_BASE_IMAGE)
            return DEFAULT_BASE_IMAGE
        except Exception as exc:  # noqa: BLE001 - no registry: fall back to debootstrap
            log.info("cannot pull %s (%s); using the debootstrap base", DEFAULT_BASE_IMAGE, exc)
    return DEBOOTSTRAP_BASE_TAG


def ensure_base_image(base: str, client: Any, progress: Callable[[str], None]) -> None:
    """Build the debootstrap base when it is the chosen base and missing."""
    if base != DEBOOTSTRAP_BASE_TAG or image_exists(client, base):
        return
    from manager.sessions.base_image import build_base_image

    progress(f"building {base} with debootstrap (about a minute)")
    build_base_image(client, base, progress=progress)


@dataclass
class Build:
    """A build under way or finished, with its last lines of progress."""

    name: str
    state: str = "building"  # building | built | failed
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    tag: str | None = None
    packages: list[dict[str, str]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def add(self, line: str) -> None:
        self.lines.append(line.rstrip())
        if self.echo is not None:
            self.echo(line.rstrip())
        del self.lines[:-BUILD_LOG_LINES]


@dataclass(frozen=True)
class EnvPaths:
    envs_dir: Path
    runner_dir: Path
    wheelhouse: Path
    base_image: str


class Environments:
    """Specs on disk, rows in ``conda_environments``, images in the engine."""

    def __init__(self, paths: EnvPaths, client_factory: Callable[[], Any] = docker_client):
        self.paths = paths
        self.client_factory = client_factory
        self.builds: dict[str, Build] = {}
        self._lock = threading.Lock()

    def spec_names(self) -> list[str]:
        return sorted(p.stem for p in self.paths.envs_dir.glob("*.yml"))

    def image_tag(self, name: str) -> str:
        text = (self.paths.envs_dir / f"{name}.yml").read_text(encoding="utf-8")
        return env_image_tag(name, text, self.paths.runner_dir, self.paths.base_image)

    def refresh(self, db: DbSession) -> list[CondaEnvironment]:
        """Bring the table in line with the specs and the engine's images."""
        client = self.client_factory()
        names = self.spec_names()
        rows = {row.name: row for row in db.execute(select(CondaEnvironment)).scalars()}
        for name in names:
            row = rows.get(name) or CondaEnvironment(name=name, path="")
            path = self.paths.envs_dir / f"{name}.yml"
            row.path = str(path)
            row.last_verified = utcnow()
            try:
                spec = parse_env_spec(path.read_text(encoding="utf-8"))
                row.python_version = (spec.python or "").lstrip("=").rstrip(".*") or None
                row.image_tag = self.image_tag(name)
                row.image_error = None
            except (OSError, ValueError) as exc:
                row.image_tag, row.image_error = None, f"spec is not valid: {exc}"
            build = self.builds.get(name)
            if build is not None and build.state == "building":
                row.image_state = "building"
            elif row.image_tag and client is not None and image_exists(client, row.image_tag):
                row.image_state = "built"
            elif row.image_error:
                row.image_state = "invalid"
            else:
                row.image_state = "failed" if build and build.state == "failed" else "missing"
            row.is_available = row.image_state == "built"
            if name not in rows:
                db.add(row)
        for name, row in rows.items():
            if name not in names:
                row.is_available = False
                row.image_state = "no spec"
        db.flush()
        return [
            row
            for row in db.execute(
                select(CondaEnvironment).order_by(CondaEnvironment.name)
            ).scalars()
        ]

    def build(
        self,
        name: str,
        on_done: Callable[[Build], None] | None = None,
        wait: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> Build:
        """Build one environment's image in the background (``wait`` blocks, for the CLI)."""
        if name not in self.spec_names():
            raise ValueError(f"There is no spec conda-envs/{name}.yml.")
        with self._lock:
            current = self.builds.get(name)
            if current is not None and current.state == "building":
                return current
            build = self.builds[name] = Build(name, echo=echo)
        thread = threading.Thread(
            target=self._build, args=(build, on_done), daemon=True, name=f"sm-build-{name}"
        )
        thread.start()
        if wait:
            thread.join()
        return build

    def _build(self, build: Build, on_done: Callable[[Build], None] | None) -> None:
        client = self.client_factory()
        try:
            if client is None:
                raise ImageBuildError("the container engine is not reachable")
            ensure_base_image(self.paths.base_image, client, build.add)
            build.tag = build_env_image(
                build.name,
                self.paths.envs_dir / f"{build.name}.yml",
                self.paths.runner_dir,
                client,
                self.paths.base_image,
                self.paths.wheelhouse,
                progress=build.add,
            )
            build.packages = self.packages(client, build.tag)
            build.state = "built"
            build.add(f"done: {build.tag}")
            metrics.IMAGE_BUILDS.labels("built").inc()
        except (ImageBuildError, ValueError, LookupError, OSError) as exc:
            build.state, build.error = "failed", str(exc)
            metrics.IMAGE_BUILDS.labels("failed").inc()
            build.add(f"failed: {exc}")
            log.error("image build of %s failed: %s", build.name, exc)
        if on_done is not None:
            on_done(build)

    def packages(self, client: Any, tag: str) -> list[dict[str, str]]:
        """Python version and installed packages, read by running the image once, offline."""
        try:
            out = client.containers.run(
                tag,
                ["python", "-c", PACKAGES_PROBE],
                entrypoint=[],
                remove=True,
                network_mode="none",
                user="10001:10001",
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit="256m",
            )
            data = json.loads(out.decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - details are optional, never fatal
            log.warning("cannot list packages of %s: %s", tag, exc)
            return []
        result: list[dict[str, str]] = data["packages"]
        result.insert(0, {"name": "python", "version": data["python"]})
        return result


PACKAGES_PROBE = (
    "import json, sys, importlib.metadata as m;"
    "print(json.dumps({'python': sys.version.split()[0], 'packages': sorted("
    "({'name': d.metadata['Name'], 'version': d.version} for d in m.distributions()),"
    " key=lambda p: p['name'].lower())}))"
)
