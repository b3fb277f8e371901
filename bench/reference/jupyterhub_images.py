"""The JupyterHub reference's two images, built on the project's debootstrap base, never pulled.

``hub``: JupyterHub + DockerSpawner in a venv, Debian's ``nodejs`` and configurable-http-proxy;
``singleuser``: JupyterHub + jupyter_server (``jupyterhub-singleuser``), nothing else. Each is
tagged with a hash of its Dockerfile, the pins and the base image's id, and built only when that
tag is missing. Like the project's own images (``manager/sessions/images.py``), the Python and
npm packages are fetched by the host's pip and npm (the host's index, registry and TLS trust)
into the build context; the build itself only reaches the Debian mirror (apt, for nodejs).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from manager.sessions.base_image import DEBOOTSTRAP_BASE_TAG, ImageBuildError  # noqa: E402

JUPYTERHUB = "jupyterhub==6.1.1"
DOCKERSPAWNER = "dockerspawner==14.0.0"
JUPYTER_SERVER = "jupyter_server==2.21.1"
CONFIGURABLE_HTTP_PROXY = "configurable-http-proxy@5.3.0"
HUB_PACKAGES = (JUPYTERHUB, DOCKERSPAWNER)
SINGLEUSER_PACKAGES = (JUPYTERHUB, JUPYTER_SERVER)
IMAGE_LABEL = "io.scriptsmanager.bench"  # = jupyterhub-image; never removed by the benchmark
TAG_PREFIX = "smbench-jupyterhub-"

Progress = Callable[[str], None]


def hub_dockerfile(base: str) -> str:
    """The hub: JupyterHub and DockerSpawner, nodejs from Debian, the proxy from ``npm-global/``.

    Expects ``wheels/`` and ``npm-global/`` (an ``npm install -g --prefix`` tree) in the context.
    """
    return "\n".join([
        f"FROM {base}",
        f"LABEL {IMAGE_LABEL}=jupyterhub-image",
        "RUN apt-get update -q && apt-get install -y -q --no-install-recommends nodejs"
        " && rm -rf /var/lib/apt/lists/*",
        "COPY wheels/ /tmp/wheels/",
        "RUN python3 -m venv /opt/jupyterhub && /opt/jupyterhub/bin/pip install -q --no-index"
        f" --find-links /tmp/wheels {' '.join(HUB_PACKAGES)} && rm -rf /tmp/wheels",
        "COPY npm-global/ /usr/local/",
        "ENV PATH=/opt/jupyterhub/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "WORKDIR /srv/jupyterhub",
        'CMD ["jupyterhub", "-f", "/etc/jupyterhub/jupyterhub_config.py"]',
    ]) + "\n"  # fmt: skip


def singleuser_dockerfile(base: str) -> str:
    """The single-user server: ``jupyterhub-singleuser`` on jupyter_server, as an unprivileged user.

    Expects ``wheels/`` in the context.
    """
    return "\n".join([
        f"FROM {base}",
        f"LABEL {IMAGE_LABEL}=jupyterhub-image",
        "COPY wheels/ /tmp/wheels/",
        "RUN python3 -m venv /opt/singleuser && /opt/singleuser/bin/pip install -q --no-index"
        f" --find-links /tmp/wheels {' '.join(SINGLEUSER_PACKAGES)} && rm -rf /tmp/wheels"
        " && useradd --create-home --uid 1000 jovyan",
        "ENV PATH=/opt/singleuser/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "USER 1000",
        "WORKDIR /home/jovyan",
        'CMD ["jupyterhub-singleuser"]',
    ]) + "\n"  # fmt: skip


def image_tag(name: str, dockerfile: str, base_id: str, pins: tuple[str, ...]) -> str:
    """``smbench-jupyterhub-NAME:<hash>``: changes with the Dockerfile, the pins or the base."""
    digest = hashlib.sha256("\0".join([dockerfile, base_id, *sorted(pins)]).encode())
    return f"{TAG_PREFIX}{name}:{digest.hexdigest()[:12]}"


def ensure_images(client: Any, progress: Progress = print) -> tuple[str, str]:
    """Return the ``(hub, singleuser)`` tags, building the base and either image when missing.

    Raises ImageBuildError (or LookupError: no Debian mirror for debootstrap) when a build fails.
    """
    from manager.sessions.environments import ensure_base_image

    ensure_base_image(DEBOOTSTRAP_BASE_TAG, client, progress)
    base_id = client.images.get(DEBOOTSTRAP_BASE_TAG).id
    hub_file = hub_dockerfile(DEBOOTSTRAP_BASE_TAG)
    hub = image_tag("hub", hub_file, base_id, (*HUB_PACKAGES, CONFIGURABLE_HTTP_PROXY))
    single_file = singleuser_dockerfile(DEBOOTSTRAP_BASE_TAG)
    single = image_tag("singleuser", single_file, base_id, SINGLEUSER_PACKAGES)
    arch = client.info().get("Architecture", "x86_64")
    for tag, dockerfile, packages in ((hub, hub_file, HUB_PACKAGES),
                                      (single, single_file, SINGLEUSER_PACKAGES)):  # fmt: skip
        if _exists(client, tag):
            progress(f"{tag} is up to date")
            continue
        with tempfile.TemporaryDirectory(prefix="smbench-jh-build-") as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
            _download_wheels(packages, context / "wheels", arch, progress)
            if tag == hub:
                _npm_install(CONFIGURABLE_HTTP_PROXY, context / "npm-global", progress)
            progress(f"building {tag} on {DEBOOTSTRAP_BASE_TAG}")
            _build(client, context, tag, progress)
    return hub, single


def _exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _download_wheels(packages: tuple[str, ...], dest: Path, arch: str, progress: Progress) -> None:
    """The host's pip, for the image's CPython 3.11 on glibc (the project's own wheel download)."""
    from manager.sessions.images import download_wheels

    progress(f"downloading wheels for {', '.join(packages)}")
    download_wheels(packages, dest, arch=arch, progress=progress)


def _npm_install(package: str, prefix: Path, progress: Progress) -> None:
    """``npm install -g`` into ``prefix`` (``bin/``, ``lib/node_modules/``), copied to /usr/local.

    The proxy and its dependencies are plain JavaScript: no native module depends on the host's
    node. npm warns that commander wants a newer node than Debian's; the hub's start checks it.
    """
    if shutil.which("npm") is None:
        raise ImageBuildError("npm is not installed on the host (apt-get install npm)")
    progress(f"npm install -g {package}")
    cmd = ["npm", "install", "-g", "--prefix", str(prefix), "--no-audit", "--no-fund", package]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise ImageBuildError(f"npm install {package} failed: {done.stderr[-500:]}")


def _build(client: Any, context: Path, tag: str, progress: Progress) -> None:
    """Build with the engine's default network (apt reaches the Debian mirror); never pull."""
    stream = client.api.build(
        path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False
    )
    for chunk in stream:
        if "error" in chunk:
            raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}")
        for line in (chunk.get("stream") or "").splitlines():
            if line.strip():
                progress(line.rstrip())
