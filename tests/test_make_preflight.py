"""`make run` names what the host lacks (Python 3.11+, npm; Docker, iptables, debootstrap)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _make(target: str, tools: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``make target`` with a PATH holding only ``tools`` (name -> real program)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, program in tools.items():
        (bin_dir / name).symlink_to(program)
    return subprocess.run(
        [str(MAKE), "-s", "-C", str(REPO), target, f"PYTHON={bin_dir / 'python3'}"],
        env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_setup_names_a_missing_npm(tmp_path: Path) -> None:
    result = _make("preflight", {"python3": str(PYTHON)}, tmp_path)
    assert result.returncode != 0
    assert "missing on this host" in result.stderr and "npm" in result.stderr


def test_setup_names_a_missing_python(tmp_path: Path) -> None:
    result = _make("preflight", {"npm": "/bin/true"}, tmp_path)
    assert result.returncode != 0
    assert "Python 3.11+" in result.stderr and "npm" not in result.stderr


def test_setup_passes_with_python_and_npm(tmp_path: Path) -> None:
    result = _make("preflight", {"python3": str(PYTHON), "npm": "/bin/true"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_run_warns_about_docker_iptables_and_debootstrap(tmp_path: Path) -> None:
    result = _make("host-check", {}, tmp_path)
    assert result.returncode == 0  # the manager starts without them
    for tool in ("Docker", "iptables", "debootstrap"):
        assert f"warning: {tool} is not installed" in result.stderr
    quiet = _make("host-check", {"docker": "/bin/true", "iptables": "/bin/true",
                                 "debootstrap": "/bin/true"}, tmp_path / "all")  # fmt: skip
    assert quiet.stderr == ""
