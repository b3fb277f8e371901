"""Hostile scripts on the real engine: each test asserts what a user (or admin) would notice."""

from __future__ import annotations

import json
import time

import pytest

from manager.sessions.backend import ExitStatus
from manager.sessions.docker import DockerBackend
from tests.sessions.session_support import SessionFactory

pytestmark = pytest.mark.docker


def test_fork_bomb_hits_the_pids_limit_and_the_host_is_fine(
    sessions: SessionFactory, backend: DockerBackend
) -> None:
    script = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    print('fork refused after', children, 'children:', exc.strerror)\n"
    )
    session = sessions.start(script, pids=32)
    assert session.wait(timeout=30) == ExitStatus(0)
    words = session.text().split()
    assert " ".join(words[-3:]) == "Resource temporarily unavailable"
    assert 10 < int(words[3]) < 32  # the runner and init hold a few of the 32
    assert backend.ping()["status"] == "ok"  # the engine still answers


def test_memory_balloon_is_killed_and_reported_as_out_of_memory(
    sessions: SessionFactory,
) -> None:
    script = (
        "chunks = []\n"
        "for i in range(1000):\n"
        "    chunks.append(bytearray(b'x' * (8 * 1024 * 1024)))\n"
        "    print('allocated', 8 * (i + 1), 'MiB')\n"
    )
    session = sessions.start(script, memory="96m", tmpfs="8m")
    status = session.wait(timeout=30)
    assert status.oom_killed is True
    assert status.exit_code == 137
    allocated = int(session.text().splitlines()[-1].split()[1])
    assert 8 <= allocated < 96


@pytest.mark.parametrize(
    ("script", "exit_code"),
    [
        ("while True:\n    pass\n", 143),  # the runner honours SIGTERM
        (  # a script that ignores SIGTERM is killed after the timeout
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\nwhile True:\n    time.sleep(0.01)\n",
            137,
        ),
    ],
    ids=["busy-loop", "ignores-sigterm"],
)
def test_endless_loop_ends_on_stop(
    sessions: SessionFactory, backend: DockerBackend, script: str, exit_code: int
) -> None:
    session = sessions.start(script)
    time.sleep(1)  # let the script reach its loop
    deadline = time.monotonic() + 20  # a busy machine: wait until the script has set its handler
    while "SIG_IGN" in script and "ready" not in session.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.poll(session.handle) is None
    started = time.monotonic()
    backend.stop(session.handle, now=False, timeout=1)
    assert session.wait(timeout=10) == ExitStatus(exit_code)
    assert time.monotonic() - started < 5


def test_filling_tmp_stops_at_its_size(sessions: SessionFactory) -> None:
    script = (
        "written = 0\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as out:\n"
        "        while True:\n"
        "            out.write(b'x' * 1024 * 1024)\n"
        "            out.flush()\n"
        "            written += 1\n"
        "except OSError as exc:\n"
        "    print(written, exc.strerror)\n"
    )
    session = sessions.start(script, tmpfs="8m")
    assert session.wait() == ExitStatus(0)
    written, error = session.text().split(" ", 1)
    assert error == "No space left on device"
    assert 6 <= int(written) <= 8


PROBE = """
import ctypes, errno, json, os, subprocess
result = {}
def attempt(name, action):
    try:
        action()
        result[name] = "allowed"
    except OSError as exc:
        result[name] = errno.errorcode[exc.errno]
for path in ["/probe", "/etc/probe", "/opt/venv/probe", "/scripts/probe", "/var/tmp/probe",
             "/run/sm/context.json", "/home/probe"]:
    attempt("write " + path, lambda: open(path, "a").close())
attempt("write /workspace/probe", lambda: open("/workspace/probe", "w").close())
attempt("write /tmp/probe", lambda: open("/tmp/probe", "w").close())
attempt("setuid 0", lambda: os.setuid(0))
attempt("chown to root", lambda: os.chown("/tmp/probe", 0, 0))
libc = ctypes.CDLL(None, use_errno=True)
def mount():
    os.makedirs("/tmp/mnt", exist_ok=True)
    if libc.mount(b"none", b"/tmp/mnt", b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount")
attempt("mount", mount)
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
result["CapEff"] = status["CapEff"].strip()
result["NoNewPrivs"] = status["NoNewPrivs"].strip()
result["id -u"] = subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip()
sockets = ("/var/run/docker.sock", "/run/docker.sock")
result["docker.sock"] = [path for path in sockets if os.path.exists(path)]
print(json.dumps(result))
"""


def test_the_script_cannot_escalate_or_write_outside_workspace_and_tmp(
    sessions: SessionFactory,
) -> None:
    session = sessions.start(PROBE)
    assert session.wait() == ExitStatus(0), session.text("stderr")
    result = json.loads(session.text())
    for path in ["/probe", "/etc/probe", "/opt/venv/probe", "/scripts/probe", "/var/tmp/probe",
                 "/run/sm/context.json", "/home/probe"]:  # fmt: skip
        assert result[f"write {path}"] in {"EROFS", "EACCES"}, path
    assert result["write /workspace/probe"] == "allowed"
    assert result["write /tmp/probe"] == "allowed"
    assert result["setuid 0"] == "EPERM"
    assert result["chown to root"] == "EPERM"
    assert result["mount"] == "EPERM"
    assert result["CapEff"] == "0000000000000000"
    assert result["NoNewPrivs"] == "1"
    assert result["id -u"] == "10001"
    assert result["docker.sock"] == []


def test_tmp_is_not_executable(sessions: SessionFactory) -> None:
    script = (
        "import os, shutil, subprocess\n"
        "shutil.copy('/bin/true', '/tmp/true')\n"
        "os.chmod('/tmp/true', 0o755)\n"
        "try:\n"
        "    subprocess.run(['/tmp/true'])\n"
        "except PermissionError as exc:\n"
        "    print(exc.strerror)\n"
    )
    session = sessions.start(script)
    assert session.wait() == ExitStatus(0)
    assert session.text() == "Permission denied"


def test_workspace_persists_for_the_project_and_is_invisible_to_others(
    sessions: SessionFactory,
) -> None:
    write = "open('notes.txt', 'w').write('pump P-101 checked')\n"
    first = sessions.start(write, user="alice", project="pumps")
    assert first.wait() == ExitStatus(0)
    assert (first.workspace / "notes.txt").stat().st_uid == 10001

    read = "import os\nprint(sorted(os.listdir('/workspace')))\nprint(open('notes.txt').read())\n"
    again = sessions.start(read, user="alice", project="pumps")
    assert again.wait() == ExitStatus(0)
    assert again.text() == "['notes.txt']\npump P-101 checked"

    look = (
        "import os\n"
        "print(sorted(os.listdir('/workspace')))\n"
        "found = [d for d, _, files in os.walk('/') if 'notes.txt' in files"
        " and not d.startswith('/proc')]\n"
        "print(found)\n"
    )
    other_user = sessions.start(look, user="bob", project="pumps")
    other_project = sessions.start(look, user="alice", project="valves")
    for session in (other_user, other_project):
        assert session.wait() == ExitStatus(0)
        assert session.text() == "[]\n[]"
