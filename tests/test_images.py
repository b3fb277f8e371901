"""Runner images: spec parsing, tags, Dockerfile text, and real builds and runs on Docker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from manager.sessions import images

ROOT = Path(__file__).resolve().parents[1]
RUNNER_DIR = ROOT / "runner-image"
ENVS_DIR = ROOT / "conda-envs"
PREFIX = "/project/1/script/2/user/3"
TEST_PREFIX = "smtest-images-"  # every container and network these tests create

BASE_SPEC = """
name: demo
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - pip:
      - requests>=2.31
      - numpy==2.*
"""


# --------------------------------------------------------------------------- specs


def test_parse_env_spec_reads_the_pip_list() -> None:
    spec = images.parse_env_spec(BASE_SPEC)
    assert spec.name == "demo"
    assert spec.channels == ("conda-forge",)
    assert spec.python == "==3.11.*"
    assert spec.conda_packages == ()
    assert spec.pip_packages == ("requests>=2.31", "numpy==2.*")
    images.check_pip_builder(spec)


@pytest.mark.parametrize("path", sorted(ENVS_DIR.glob("*.yml")), ids=lambda p: p.stem)
def test_shipped_specs_suit_the_pip_builder(path: Path) -> None:
    spec = images.parse_env_spec(path.read_text())
    assert spec.name == path.stem
    images.check_pip_builder(spec)
    images.validate_env_name(path.stem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: x\nsolver: fast\n", "unknown key"),
        ("channels: conda-forge\n", "'channels' must be a list"),
        ("dependencies: numpy\n", "'dependencies' must be a list"),
        ("dependencies:\n  - conda: [x]\n", "only a 'pip:' sub-list"),
        ("dependencies:\n  - 3\n", "must be strings"),
        ("dependencies:\n  - pip: requests\n", "'pip:' must be a list"),
        ("dependencies:\n  - pip: [-e .]\n", "only 'name"),
        ("dependencies:\n  - pip: [--index-url http://x]\n", "only 'name"),
        ("dependencies:\n  - pip: ['git+https://example.invalid/x.git']\n", "only 'name"),
        ("dependencies:\n  - pip: ['pkg @ https://example.invalid/pkg.whl']\n", "only 'name"),
        ("dependencies:\n  - pip: ['not a requirement!']\n", "is invalid"),
        ("dependencies:\n  - pip: [[nested]]\n", "must be a string"),
    ],
)
def test_bad_specs_get_clear_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        images.parse_env_spec(text)


@pytest.mark.parametrize(
    ("dependency", "specifier"),
    [
        ("python", None),
        ("python=3.11", "==3.11.*"),
        ("python 3.11.*", "==3.11.*"),
        ("python==3.11.4", "==3.11.4"),
        ("python>=3.10,<3.13", "<3.13,>=3.10"),
        ("pip>=23", None),
        ("pip", None),
    ],
)
def test_python_constraints_in_conda_syntax(dependency: str, specifier: str | None) -> None:
    spec = images.parse_env_spec(f"dependencies: ['{dependency}']\n")
    assert spec.python == specifier
    images.check_pip_builder(spec)


def test_invalid_python_constraint() -> None:
    with pytest.raises(ValueError, match="python version constraint"):
        images.parse_env_spec("dependencies: ['python>>3']\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dependencies: [python=3.12]\n", "provides Python 3.11"),
        ("dependencies: [python=3.1]\n", "provides Python 3.11"),
        ("dependencies: ['python>=3.12']\n", "provides Python 3.11"),
        ("dependencies: [python=3.11, numpy, scipy=1.11]\n", "numpy, scipy=1.11"),
    ],
)
def test_pip_builder_refuses_what_it_cannot_install(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        images.check_pip_builder(images.parse_env_spec(text))


# --------------------------------------------------------------------------- tags


@pytest.fixture
def runner_copy(tmp_path: Path) -> Path:
    """A copy of runner-image/ that a test may change."""
    copy = tmp_path / "runner-image"
    shutil.copytree(RUNNER_DIR, copy, ignore=shutil.ignore_patterns("wheelhouse", "__pycache__"))
    return copy


def test_env_image_tag_format_and_stability(runner_copy: Path) -> None:
    tag = images.env_image_tag("base", BASE_SPEC, runner_copy)
    assert re.fullmatch(r"scriptsmanager-env-base:[0-9a-f]{12}", tag)
    assert images.env_image_tag("base", BASE_SPEC, runner_copy) == tag
    # The real runner-image/ hashes the same as its copy: caches and wheels do not count.
    assert images.env_image_tag("base", BASE_SPEC, RUNNER_DIR) == tag


def test_env_image_tag_changes_with_the_spec(runner_copy: Path) -> None:
    tag = images.env_image_tag("base", BASE_SPEC, runner_copy)
    assert images.env_image_tag("base", BASE_SPEC + "      - rich\n", runner_copy) != tag


@pytest.mark.parametrize("changed", ["smrunner/main.py", "Dockerfile", "requirements.txt"])
def test_env_image_tag_changes_with_the_runner(runner_copy: Path, changed: str) -> None:
    tag = images.env_image_tag("base", BASE_SPEC, runner_copy)
    runner_tag = images.runner_image_tag(runner_copy)
    with (runner_copy / changed).open("a") as handle:
        handle.write("\n# changed\n")
    assert images.env_image_tag("base", BASE_SPEC, runner_copy) != tag
    assert images.runner_image_tag(runner_copy) != runner_tag


def test_caches_and_wheels_do_not_change_the_tag(runner_copy: Path) -> None:
    tag = images.env_image_tag("base", BASE_SPEC, runner_copy)
    (runner_copy / "wheelhouse").mkdir()
    (runner_copy / "wheelhouse" / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (runner_copy / "smrunner" / "__pycache__").mkdir(exist_ok=True)
    (runner_copy / "smrunner" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"pyc")
    (runner_copy / ".mypy_cache").mkdir()
    (runner_copy / ".mypy_cache" / "cache.db").write_bytes(b"db")
    assert images.env_image_tag("base", BASE_SPEC, runner_copy) == tag


def test_base_image_changes_the_tag(runner_copy: Path) -> None:
    slim = images.env_image_tag("base", BASE_SPEC, runner_copy, images.DEFAULT_BASE_IMAGE)
    debootstrap = images.env_image_tag("base", BASE_SPEC, runner_copy, images.DEBOOTSTRAP_BASE_TAG)
    assert slim != debootstrap
    assert images.runner_image_tag(runner_copy, images.DEFAULT_BASE_IMAGE) != (
        images.runner_image_tag(runner_copy, images.DEBOOTSTRAP_BASE_TAG)
    )


@pytest.mark.parametrize("name", ["Base", "data science", "../x", "", "a" * 70, "x:1"])
def test_env_names_must_fit_an_image_name(name: str) -> None:
    with pytest.raises(ValueError, match="environment name"):
        images.env_image_tag(name, BASE_SPEC, RUNNER_DIR)


# --------------------------------------------------------------------------- Dockerfiles


def test_pip_dockerfile_installs_offline_and_runs_as_10001() -> None:
    text = images.pip_dockerfile(images.parse_env_spec(BASE_SPEC), "scriptsmanager-runner:abc")
    assert text.startswith("FROM scriptsmanager-runner:abc AS build\n")
    assert "--no-index --find-links /tmp/wheelhouse" in text
    assert "COPY --from=build /opt/venv /opt/venv" in text
    assert "USER 10001:10001" in text
    assert text.rstrip().endswith('ENTRYPOINT ["python", "-m", "smrunner"]')


def test_pip_dockerfile_without_packages_only_labels_the_runner() -> None:
    text = images.pip_dockerfile(images.parse_env_spec("name: base\n"), "runner:1")
    assert "wheelhouse" not in text
    assert text.startswith("FROM runner:1\n")
    assert "USER 10001:10001" in text


def test_conda_dockerfile_uses_micromamba_and_runs_as_10001() -> None:
    text = images.conda_dockerfile(images.parse_env_spec(BASE_SPEC))
    assert text.startswith("FROM mambaorg/micromamba:")
    assert "micromamba install --yes --name base --file /tmp/environment.yml" in text
    assert "useradd --uid 10001" in text
    assert "USER 10001:10001" in text
    assert 'LABEL org.scriptsmanager.env="demo"' in text


def test_runner_dockerfile() -> None:
    text = (RUNNER_DIR / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert "--no-index" in text
    assert "useradd --uid 10001" in text
    assert "USER 10001:10001" in text
    assert "WORKDIR /workspace" in text
    assert 'ENTRYPOINT ["python", "-m", "smrunner"]' in text


def test_runner_requirements_are_pinned() -> None:
    lines = (RUNNER_DIR / "requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line.strip() and not line.startswith("#")]
    assert requirements
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", line) for line in requirements), requirements


def test_wheel_platforms_cover_manylinux_up_to_bookworm_glibc() -> None:
    tags = images.wheel_platforms("x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)


# --------------------------------------------------------------------------- apt configuration


def test_apt_sources_reads_deb822_and_one_line_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb deb-src\n"
        "# a comment: with a colon\n"
        "URIs: http://mirror-a.invalid/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://mirror-b.invalid/debian-security\n"
        "Suites: bookworm-security\n"
        "\n"
        "Types: deb\n"
        "Enabled: no\n"
        "URIs: http://disabled.invalid/debian\n"
        "Suites: bookworm\n"
    )
    (tmp_path / "sources.list.d" / "other.list.disabled").write_text(
        "deb http://ignored.invalid/debian bookworm main\n"
    )
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror-c.invalid/debian trixie main\n"
    )
    assert images.apt_sources(tmp_path) == [
        ("http://mirror-a.invalid/debian", ["bookworm", "bookworm-updates"]),
        ("http://mirror-b.invalid/debian-security", ["bookworm-security"]),
        ("http://mirror-c.invalid/debian", ["trixie"]),
    ]
    assert images.apt_mirror("bookworm", tmp_path) == "http://mirror-a.invalid/debian"
    assert images.apt_mirror("trixie", tmp_path) == "http://mirror-c.invalid/debian"
    with pytest.raises(LookupError, match="bullseye"):
        images.apt_mirror("bullseye", tmp_path)


def _repo_files() -> list[Path]:
    """Files of the repository that git would commit (tracked or not ignored)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git work tree")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_mirror_host_name_in_the_repository() -> None:
    hosts = {urlparse(uri).hostname for uri, _ in images.apt_sources("/etc/apt")} - {None}
    if not hosts:
        pytest.skip("this host's apt configuration names no mirror")
    for path in _repo_files():
        if not path.is_file() or "wheelhouse" in path.parts:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace").lower()
        for host in hosts:
            assert str(host).lower() not in text, f"{path.relative_to(ROOT)} names a mirror host"


# --------------------------------------------------------------------------- Docker


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A Docker client; skips (or fails when REQUIRE_DOCKER=1) without a reachable engine."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure means "no engine here"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but Docker is not available: {exc}")
        pytest.skip(f"Docker is not available: {exc}")
    _remove_leftovers(client)
    yield client
    _remove_leftovers(client)
    client.close()


def _remove_leftovers(client: Any) -> None:
    """Remove containers and networks an earlier, interrupted run of these tests left."""
    for container in client.containers.list(all=True, filters={"name": TEST_PREFIX}):
        container.remove(force=True)
    for network in client.networks.list(names=[TEST_PREFIX]):
        if network.name.startswith(TEST_PREFIX):
            network.remove()


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The base image: SM_BASE_IMAGE if set, else the debootstrap one, built when missing."""
    tag = os.environ.get("SM_BASE_IMAGE", images.DEBOOTSTRAP_BASE_TAG)
    if images.image_exists(docker_client, tag):
        return tag
    if tag != images.DEBOOTSTRAP_BASE_TAG:
        _unavailable(f"SM_BASE_IMAGE={tag} is not on this engine and no registry is reachable")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        _unavailable("building the base image needs root and debootstrap")
    try:
        images.apt_mirror()
    except LookupError as exc:
        _unavailable(f"no Debian mirror to debootstrap from: {exc}")
    return images.build_base_image(docker_client, tag)


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Where the host keeps downloaded wheels between runs (SM_WHEELHOUSE overrides)."""
    default = Path.home() / ".cache" / "scriptsmanager" / "wheelhouse"
    return Path(os.environ.get("SM_WHEELHOUSE", default))


@pytest.fixture(scope="session")
def env_image(docker_client: Any, base_image: str, wheelhouse: Path) -> str:
    """The ``base`` environment's image, built from conda-envs/base.yml when missing."""
    return images.build_env_image(
        "base", ENVS_DIR / "base.yml", RUNNER_DIR, docker_client, base_image, wheelhouse
    )


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """A scripts folder, a workspace the runner's uid can write, and a place for context.json."""
    (tmp_path / "scripts" / "group").mkdir(parents=True)
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace").chmod(0o777)
    return tmp_path


def _write_session(session_dir: Path, script: str, **context: Any) -> None:
    (session_dir / "scripts" / "group" / "script.py").write_text(script)
    data = {
        "script_path": "/scripts/group/script.py",
        "parameters": {"n": 4},
        "environment": {"USER_ID": "3", "PROJECT_NAME": "Pumps", "USER_THEME": "dark"},
        "prefix": PREFIX,
        **context,
    }
    (session_dir / "context.json").write_text(json.dumps(data))


def _hardened(session_dir: Path, **extra: Any) -> dict[str, Any]:
    """The container options every session gets (see DESIGN.md), for ``containers.run``."""
    options: dict[str, Any] = {
        "detach": True,
        "name": f"{TEST_PREFIX}{uuid.uuid4().hex[:8]}",
        "user": "10001:10001",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "tmpfs": {"/tmp": "size=16m"},
        "init": True,
        "pids_limit": 64,
        "mem_limit": "256m",
        "network_mode": "none",
        "volumes": {
            str(session_dir / "context.json"): {"bind": "/run/sm/context.json", "mode": "ro"},
            str(session_dir / "scripts"): {"bind": "/scripts", "mode": "ro"},
            str(session_dir / "workspace"): {"bind": "/workspace", "mode": "rw"},
        },
    }
    options.update(extra)
    return options


@pytest.fixture
def containers(docker_client: Any) -> Iterator[list[Any]]:
    """Containers a test starts; printed (shown on failure) and removed afterwards."""
    started: list[Any] = []
    yield started
    _dispose(started)


def _dispose(containers: list[Any]) -> None:
    """Print each container's logs (pytest shows them when the test failed), then remove it."""
    for container in containers:
        print(f"--- logs of {container.name}:\n{container.logs().decode(errors='replace')}")
        container.remove(force=True)
    containers.clear()


@pytest.mark.docker
def test_env_image_is_reused_when_up_to_date(
    docker_client: Any, env_image: str, base_image: str, wheelhouse: Path
) -> None:
    lines: list[str] = []
    again = images.build_env_image(
        "base",
        ENVS_DIR / "base.yml",
        RUNNER_DIR,
        docker_client,
        base_image,
        wheelhouse,
        lines.append,
    )
    assert again == env_image
    assert lines == [f"{env_image} is up to date"]
    labels = docker_client.images.get(env_image).labels
    assert labels["org.scriptsmanager.env"] == "base"


@pytest.mark.docker
def test_batch_script_in_a_hardened_container(
    docker_client: Any, env_image: str, session_dir: Path, containers: list[Any]
) -> None:
    script = (
        "import os, sys\n"
        "print('params', PARAMETERS['n'], 'uid', os.getuid(), 'cwd', os.getcwd())\n"
        "open(os.path.join(WORKSPACE_PATH, 'result.txt'), 'w').write('42')\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    _write_session(session_dir, script)
    container = docker_client.containers.run(env_image, **_hardened(session_dir))
    containers.append(container)
    status = container.wait(timeout=60)
    assert status["StatusCode"] == 3
    assert container.logs(stderr=False).decode() == "params 4 uid 10001 cwd /workspace\n"
    assert "to stderr" in container.logs(stdout=False).decode()
    assert (session_dir / "workspace" / "result.txt").read_text() == "42"


@pytest.mark.docker
def test_root_filesystem_is_read_only_for_the_script(
    docker_client: Any, env_image: str, session_dir: Path, containers: list[Any]
) -> None:
    script = (
        "import sys\n"
        "try:\n"
        "    open('/opt/venv/evil', 'w')\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
        "open('/tmp/scratch', 'w').write('ok')\n"
    )
    _write_session(session_dir, script)
    container = docker_client.containers.run(env_image, **_hardened(session_dir))
    containers.append(container)
    assert container.wait(timeout=60)["StatusCode"] == 0
    assert container.logs(stderr=False).decode().strip() in {"OSError", "PermissionError"}


@pytest.mark.docker
def test_interactive_script_served_on_an_internal_network(
    docker_client: Any, env_image: str, session_dir: Path, containers: list[Any]
) -> None:
    script = (
        "from flask import render_template_string, url_for\n"
        "PAGE = '{% extends \"sm_base.html\" %}{% block content %}'"
        ' \'<a id="next" href="{{ url_for("second") }}">next</a>{% endblock %}\'\n'
        "app.add_url_rule('/', 'first', lambda: render_template_string(PAGE))\n"
        "app.add_url_rule('/second', 'second', lambda: 'second')\n"
    )
    _write_session(session_dir, script)
    network = docker_client.networks.create(
        f"{TEST_PREFIX}net-{uuid.uuid4().hex[:8]}", internal=True
    )
    try:
        server = docker_client.containers.run(
            env_image, **_hardened(session_dir, network_mode=None, network=network.name)
        )
        containers.append(server)
        fetch = (
            "import sys, time, urllib.request\n"
            "for _ in range(100):\n"
            "    try:\n"
            f"        urllib.request.urlopen('http://{server.name}:8080/_sm/health', timeout=2)\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.2)\n"
            f"req = urllib.request.Request('http://{server.name}:8080/',"
            f" headers={{'X-Forwarded-Prefix': '{PREFIX}'}})\n"
            "print(urllib.request.urlopen(req, timeout=5).read().decode())\n"
        )
        client = docker_client.containers.run(
            env_image,
            entrypoint=["python", "-c", fetch],
            **_hardened(session_dir, network_mode=None, network=network.name),
        )
        containers.append(client)
        assert client.wait(timeout=60)["StatusCode"] == 0
        page = client.logs(stderr=False).decode()
        assert f'<a id="next" href="{PREFIX}/second">next</a>' in page
        assert 'data-bs-theme="dark"' in page

        started = time.monotonic()
        server.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s
        assert time.monotonic() - started < 8, "the runner did not stop on SIGTERM"
        server.reload()
        assert server.attrs["State"]["ExitCode"] == 0
        assert "server stopped" in server.logs().decode()
    finally:
        _dispose(containers)  # before the network, which cannot go while they are attached
        network.remove()
