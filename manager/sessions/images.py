"""Runner images: environment specs, image tags, Dockerfile text and builds.

``conda-envs/NAME.yml`` becomes the image ``scriptsmanager-env-NAME:<hash>``, where the hash covers
the spec and the runner's files, so an image is rebuilt only when one of them changes. The pip
builder layers the spec's ``pip:`` list over the runner image, installing from a wheelhouse the host
downloads beforehand: the ``docker build`` itself runs with no network. For hosts that cannot pull
``python:3.11-slim-bookworm``, ``base_image.build_base_image`` makes an equivalent base with
debootstrap (re-exported here, with the apt helpers, for callers and the command line).

Everything here is plain functions taking paths and a Docker client; nothing touches Flask.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manager.sessions.base_image import (
    BASE_PACKAGES,
    DEBOOTSTRAP_BASE_TAG,
    ImageBuildError,
    Progress,
    apt_mirror,
    apt_sources,
    build_base_image,
)
from manager.sessions.base_image import ignore_progress as _ignore
from manager.sessions.base_image import run_command as _run

__all__ = [
    "BASE_PACKAGES",
    "DEBOOTSTRAP_BASE_TAG",
    "DEFAULT_BASE_IMAGE",
    "EnvSpec",
    "ImageBuildError",
    "Progress",
    "apt_mirror",
    "apt_sources",
    "build_base_image",
    "build_env_image",
    "build_runner_image",
    "check_pip_builder",
    "conda_dockerfile",
    "download_wheels",
    "env_image_tag",
    "image_exists",
    "parse_env_spec",
    "pip_dockerfile",
    "runner_hash",
    "runner_image_tag",
    "validate_env_name",
    "wheel_platforms",
]

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
RUNNER_IMAGE_REPO = "scriptsmanager-runner"
ENV_IMAGE_PREFIX = "scriptsmanager-env-"
RUNNER_UID = 10001
# Set on the throwaway stage of multi-stage builds, so its leftover image can be found and removed.
BUILD_STAGE_LABEL = "org.scriptsmanager.stage"
# Debian bookworm ships Python 3.11 and glibc 2.36; wheels are fetched for that target.
TARGET_PYTHON = "3.11"
TARGET_GLIBC_MINOR = 36
MICROMAMBA_IMAGE = "mambaorg/micromamba:1.5-bookworm-slim"

_ENV_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_CONDA_PYTHON_RE = re.compile(r"^python(?![\w.-])\s*(?P<constraint>.*)$")


# --------------------------------------------------------------------------- environment specs


@dataclass(frozen=True)
class EnvSpec:
    """An environment spec in conda ``environment.yml`` format."""

    name: str | None
    channels: tuple[str, ...]
    python: str | None  # PEP 440 specifier ("==3.11.*" for python=3.11), None: any version
    conda_packages: tuple[str, ...]  # everything but python and pip
    pip_packages: tuple[str, ...]


def parse_env_spec(text: str) -> EnvSpec:
    """Parse an ``environment.yml`` text.

    Raises ValueError with a message fit for the admin UI when the text is not a valid spec.
    """
    import yaml  # PyYAML; imported here so the pure builders don't need it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"environment spec is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            "environment spec must be a mapping with 'name', 'channels', 'dependencies'"
        )
    unknown = set(data) - {"name", "channels", "dependencies", "variables", "prefix"}
    if unknown:
        raise ValueError(
            f"unknown key(s) in environment spec: {', '.join(sorted(map(str, unknown)))}"
        )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ValueError("'name' must be a string")
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ValueError("'channels' must be a list of channel names")
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise ValueError("'dependencies' must be a list")

    python: str | None = None
    conda: list[str] = []
    pip: list[str] = []
    for dep in deps:
        if isinstance(dep, dict):
            if set(dep) != {"pip"}:
                raise ValueError(f"only a 'pip:' sub-list may appear in dependencies, got {dep!r}")
            pip.extend(_check_pip_list(dep["pip"]))
        elif isinstance(dep, str) and dep.strip():
            dep = dep.strip()
            match = _CONDA_PYTHON_RE.match(dep)
            if match:
                python = _python_specifier(match.group("constraint"))
            elif not re.match(r"^pip(?![\w.-])", dep):
                conda.append(dep)
        else:
            raise ValueError(f"dependency entries must be strings or a 'pip:' list, got {dep!r}")
    return EnvSpec(name, tuple(channels), python, tuple(conda), tuple(pip))


def _python_specifier(constraint: str) -> str | None:
    """Turn a conda python constraint (``3.11``, ``=3.11``, ``>=3.10,<3.13``) into PEP 440."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    constraint = constraint.replace(" ", "")
    if not constraint:
        return None
    if constraint[0].isdigit() or (constraint[0] == "=" and constraint[:2] != "=="):
        # conda's "=3.11" (and bare "3.11") mean any 3.11.x
        version = constraint.lstrip("=")
        constraint = f"=={version}" if version.endswith("*") else f"=={version}.*"
    try:
        return str(SpecifierSet(constraint))
    except InvalidSpecifier:
        raise ValueError(f"invalid python version constraint: {constraint!r}") from None


def _check_pip_list(value: Any) -> list[str]:
    """Validate a ``pip:`` list: plain requirement strings only."""
    from packaging.requirements import InvalidRequirement, Requirement

    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("'pip:' must be a list of requirements")
    result = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"pip requirement must be a string, got {item!r}")
        item = item.strip()
        # Options, URLs and paths would reach outside the wheelhouse (or run arbitrary code).
        if item.startswith("-") or "://" in item or item.startswith((".", "/")):
            raise ValueError(
                f"pip requirement {item!r}: only 'name[extras] <version spec>' is allowed"
            )
        try:
            req = Requirement(item)
        except InvalidRequirement as exc:
            raise ValueError(f"pip requirement {item!r} is invalid: {exc}") from None
        if req.url:
            raise ValueError(f"pip requirement {item!r}: direct URLs are not allowed")
        result.append(item)
    return result


def check_pip_builder(spec: EnvSpec) -> None:
    """Raise ValueError when the pip builder cannot honour ``spec``."""
    from packaging.specifiers import SpecifierSet

    # Any 3.11.x will do: the base decides the patch release.
    releases = [f"{TARGET_PYTHON}.{patch}" for patch in range(100)]
    if spec.python and not any(SpecifierSet(spec.python).filter(releases)):
        raise ValueError(
            f"the pip builder provides Python {TARGET_PYTHON}, the spec asks for"
            f" python{spec.python} (use the conda builder for other versions)"
        )
    if spec.conda_packages:
        raise ValueError(
            "the pip builder installs only the 'pip:' list; move these conda packages into it"
            f" or use the conda builder: {', '.join(spec.conda_packages)}"
        )


# --------------------------------------------------------------------------- tags and hashes


def _runner_files(runner_dir: Path) -> Iterable[Path]:
    """The runner files that make up an image, in a stable order."""
    for path in sorted(runner_dir.rglob("*")):
        rel = path.relative_to(runner_dir)
        if not path.is_file() or rel.parts[0] in {"wheelhouse", ".gitignore"}:
            continue
        # Caches of tools run in the folder (__pycache__, .mypy_cache, ...) are not the runner.
        folders = rel.parts[:-1]
        if any(part == "__pycache__" or part.startswith(".") for part in folders):
            continue
        if path.suffix in {".pyc", ".pyo"}:
            continue
        yield path


def runner_hash(runner_dir: str | Path) -> str:
    """Return the sha256 hex digest of the runner's Dockerfile, requirements and package."""
    runner_dir = Path(runner_dir)
    digest = hashlib.sha256()
    for path in _runner_files(runner_dir):
        digest.update(path.relative_to(runner_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def validate_env_name(env_name: str) -> str:
    """Return ``env_name`` if it can be part of an image name, else raise ValueError."""
    if not _ENV_NAME_RE.match(env_name):
        raise ValueError(
            f"environment name {env_name!r} must be lowercase letters, digits, '.', '_' or '-'"
        )
    return env_name


def runner_image_tag(runner_dir: str | Path, base_image: str = DEFAULT_BASE_IMAGE) -> str:
    """Return ``scriptsmanager-runner:<12 hex>`` for the runner files on ``base_image``."""
    digest = hashlib.sha256(f"{base_image}\0{runner_hash(runner_dir)}".encode()).hexdigest()
    return f"{RUNNER_IMAGE_REPO}:{digest[:12]}"


def env_image_tag(
    env_name: str, spec_text: str, runner_dir: str | Path, base_image: str | None = None
) -> str:
    """Return ``scriptsmanager-env-NAME:<12 hex of sha256(spec + runner files)>``.

    ``base_image``, when given, is hashed too, so switching bases yields a new tag.
    """
    validate_env_name(env_name)
    digest = hashlib.sha256()
    digest.update(spec_text.encode() + b"\0" + runner_hash(runner_dir).encode())
    if base_image:
        digest.update(b"\0" + base_image.encode())
    return f"{ENV_IMAGE_PREFIX}{env_name}:{digest.hexdigest()[:12]}"


# --------------------------------------------------------------------------- Dockerfile text


def pip_dockerfile(spec: EnvSpec, base_image: str) -> str:
    """Return the Dockerfile that adds the spec's ``pip:`` list to a runner image.

    ``base_image`` is the runner image. Expects ``wheelhouse/`` and ``requirements.txt`` in the
    build context. Installing happens in a throwaway stage, so the wheels never reach a layer.
    """
    lines: list[str] = []
    if spec.pip_packages:
        lines += [
            f"FROM {base_image} AS build",
            f"LABEL {BUILD_STAGE_LABEL}=build",
            "USER root",
            "COPY wheelhouse/ /tmp/wheelhouse/",
            "COPY requirements.txt /tmp/env-requirements.txt",
            "RUN python -m pip install --no-index --find-links /tmp/wheelhouse"
            " -r /tmp/env-requirements.txt",
            "",
            f"FROM {base_image}",
            "COPY --from=build /opt/venv /opt/venv",
        ]
    else:
        lines.append(f"FROM {base_image}")
    lines += [
        f"LABEL org.scriptsmanager.env={json.dumps(spec.name or '')}",
        f"USER {RUNNER_UID}:{RUNNER_UID}",
        "WORKDIR /workspace",
        'ENTRYPOINT ["python", "-m", "smrunner"]',
    ]
    return "\n".join(lines) + "\n"


def conda_dockerfile(spec: EnvSpec, micromamba_image: str = MICROMAMBA_IMAGE) -> str:
    """Return a micromamba Dockerfile creating the spec's environment plus the runner.

    Needs a reachable conda channel at build time; expects ``environment.yml``, ``wheelhouse/``
    (the runner's wheels), ``requirements.txt`` (the runner's) and ``smrunner/`` in the context.
    """
    return (
        "\n".join(
            [
                f"FROM {micromamba_image}",
                "USER root",
                "COPY environment.yml /tmp/environment.yml",
                "RUN micromamba install --yes --name base --file /tmp/environment.yml"
                " && micromamba clean --all --yes",
                "ENV PATH=/opt/conda/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1"
                " XDG_CACHE_HOME=/tmp/.cache MPLCONFIGDIR=/tmp/.matplotlib",
                "COPY wheelhouse/ /tmp/wheelhouse/",
                "COPY requirements.txt /tmp/runner-requirements.txt",
                "RUN python -m pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse"
                " -r /tmp/runner-requirements.txt && rm -rf /tmp/wheelhouse",
                "COPY smrunner/ /opt/smrunner/smrunner/",
                'RUN python -c "import site; print(site.getsitepackages()[0])" | xargs -I{} sh -c'
                " 'echo /opt/smrunner > {}/smrunner.pth'",
                f"RUN useradd --uid {RUNNER_UID} --user-group --no-create-home runner"
                " && mkdir -p /workspace && chown runner:runner /workspace",
                f"LABEL org.scriptsmanager.env={json.dumps(spec.name or '')}",
                f"USER {RUNNER_UID}:{RUNNER_UID}",
                "WORKDIR /workspace",
                'ENTRYPOINT ["python", "-m", "smrunner"]',
            ]
        )
        + "\n"
    )


# --------------------------------------------------------------------------- wheels


def wheel_platforms(arch: str = "x86_64", glibc_minor: int = TARGET_GLIBC_MINOR) -> list[str]:
    """Return the manylinux platform tags a Debian bookworm image on ``arch`` accepts."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def download_wheels(
    requirements: Iterable[str],
    dest: str | Path,
    *,
    requirement_files: Iterable[str | Path] = (),
    arch: str = "x86_64",
    progress: Progress = _ignore,
) -> None:
    """Download wheels for the target image (CPython 3.11, glibc) into ``dest``.

    Runs the host's pip, so it needs the index the host's pip is configured with. Only wheels
    are accepted: the image has no compiler. Raises ImageBuildError when pip fails.
    """
    requirements = list(requirements)
    requirement_files = list(requirement_files)
    if not requirements and not requirement_files:
        return
    Path(dest).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest)]
    cmd += ["--python-version", TARGET_PYTHON, "--implementation", "cp"]
    for platform in wheel_platforms(arch):
        cmd += ["--platform", platform]
    for path in requirement_files:
        cmd += ["--requirement", str(path)]
    cmd += ["--", *requirements] if requirements else []
    _run(cmd, progress, "pip download")


# --------------------------------------------------------------------------- docker builds


def image_exists(docker_client: Any, tag: str) -> bool:
    """Return True when the engine has an image called ``tag``."""
    import docker.errors

    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _docker_build(
    docker_client: Any, context: Path, tag: str, progress: Progress, **kw: Any
) -> None:
    """Build ``context`` as ``tag`` with no network, streaming the build output to ``progress``."""
    stream = docker_client.api.build(
        path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
        network_mode="none", labels={"org.scriptsmanager.managed": "true"}, **kw,
    )  # fmt: skip
    try:
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}")
            text = chunk.get("stream") or chunk.get("status") or ""
            for line in text.splitlines():
                if line.strip():
                    progress(line.rstrip())
    finally:
        _remove_build_stages(docker_client)


def _remove_build_stages(docker_client: Any) -> None:
    """Remove the untagged images our multi-stage builds leave behind (the classic builder's).

    Builds must not overlap (the manager runs one at a time): a stage image another build still
    needs would go too.
    """
    import docker.errors

    leftovers = docker_client.images.list(filters={"dangling": True, "label": BUILD_STAGE_LABEL})
    for image in leftovers:
        # A conflict means something still uses it; the next build retries.
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(image.id)


def _copy_runner(runner_dir: Path, dest: Path) -> None:
    """Copy the runner's build files (not its local wheelhouse or caches) into ``dest``."""
    for path in _runner_files(runner_dir):
        target = dest / path.relative_to(runner_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def build_runner_image(
    runner_dir: str | Path,
    docker_client: Any,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheelhouse_dir: str | Path = "wheelhouse",
    progress: Progress = _ignore,
) -> str:
    """Build the runner image on ``base_image`` unless it exists; return its tag."""
    runner_dir = Path(runner_dir)
    tag = runner_image_tag(runner_dir, base_image)
    if image_exists(docker_client, tag):
        progress(f"{tag} is up to date")
        return tag
    wheels = Path(wheelhouse_dir) / "runner"
    arch = docker_client.info().get("Architecture", "x86_64")
    progress(f"downloading the runner's wheels into {wheels}")
    download_wheels([], wheels, requirement_files=[runner_dir / "requirements.txt"], arch=arch,
                    progress=progress)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sm-build-") as tmp:
        context = Path(tmp)
        _copy_runner(runner_dir, context)
        shutil.copytree(wheels, context / "wheelhouse")
        progress(f"building {tag} on {base_image}")
        _docker_build(docker_client, context, tag, progress, buildargs={"BASE_IMAGE": base_image})
    return tag


def build_env_image(
    env_name: str,
    spec_path: str | Path,
    runner_dir: str | Path,
    docker_client: Any,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheelhouse_dir: str | Path = "wheelhouse",
    progress: Progress = _ignore,
) -> str:
    """Build ``scriptsmanager-env-NAME:<hash>`` with the pip builder unless it exists.

    Builds (or reuses) the runner image on ``base_image``, downloads the spec's ``pip:`` list into
    ``wheelhouse_dir/env-NAME`` on the host, then installs it with no network. Returns the tag.
    Raises ValueError for a spec the pip builder cannot honour, ImageBuildError when a step fails.
    """
    spec_text = Path(spec_path).read_text(encoding="utf-8")
    spec = parse_env_spec(spec_text)
    check_pip_builder(spec)
    tag = env_image_tag(env_name, spec_text, runner_dir, base_image)
    if image_exists(docker_client, tag):
        progress(f"{tag} is up to date")
        return tag
    runner_tag = build_runner_image(runner_dir, docker_client, base_image, wheelhouse_dir, progress)
    wheels = Path(wheelhouse_dir) / f"env-{env_name}"
    if spec.pip_packages:
        progress(f"downloading wheels for {', '.join(spec.pip_packages)} into {wheels}")
        arch = docker_client.info().get("Architecture", "x86_64")
        download_wheels(spec.pip_packages, wheels, arch=arch, progress=progress)
    with tempfile.TemporaryDirectory(prefix="sm-build-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(pip_dockerfile(spec, runner_tag), encoding="utf-8")
        (context / "requirements.txt").write_text("\n".join(spec.pip_packages) + "\n")
        if spec.pip_packages:
            shutil.copytree(wheels, context / "wheelhouse")
        progress(f"building {tag}")
        _docker_build(docker_client, context, tag, progress)
    return tag


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m manager.sessions.images base|runner|env``: build images from a shell."""
    import argparse

    import docker

    parser = argparse.ArgumentParser(prog="python -m manager.sessions.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    base = sub.add_parser("base", help="build the debootstrap base image")
    base.add_argument("--tag", default=DEBOOTSTRAP_BASE_TAG)
    base.add_argument("--suite", default="bookworm")
    for name in ("runner", "env"):
        cmd = sub.add_parser(name, help=f"build the {name} image (skipped when up to date)")
        if name == "env":
            cmd.add_argument("env_name", help="NAME of conda-envs/NAME.yml")
            cmd.add_argument("--envs-dir", default="conda-envs")
        cmd.add_argument("--base-image", default=DEFAULT_BASE_IMAGE)
        cmd.add_argument("--runner-dir", default="runner-image")
        cmd.add_argument("--wheelhouse", default="data/cache/wheelhouse")
    args = parser.parse_args(argv)

    client = docker.from_env()
    try:
        if args.command == "base":
            tag = build_base_image(client, args.tag, suite=args.suite, progress=print)
        elif args.command == "runner":
            tag = build_runner_image(
                args.runner_dir, client, args.base_image, args.wheelhouse, progress=print
            )
        else:
            spec = Path(args.envs_dir, f"{args.env_name}.yml")
            tag = build_env_image(
                args.env_name, spec, args.runner_dir, client, args.base_image, args.wheelhouse,
                progress=print,
            )  # fmt: skip
    except (ValueError, LookupError, OSError, ImageBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
