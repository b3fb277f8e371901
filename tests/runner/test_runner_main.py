"""``python -m smrunner`` as the container runs it: exit codes, output, signals, serving."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from runner_support import (
    PREFIX,
    SEED_SCRIPT,
    free_port,
    runner_env,
    wait_for_line,
    write_session,
)

RunRunner = Callable[..., subprocess.CompletedProcess[str]]
StartRunner = Callable[..., subprocess.Popen[str]]


@pytest.mark.parametrize(
    ("script", "status"),
    [
        ("print('done')\n", 0),
        ("import sys\nsys.exit(3)\n", 3),
        ("raise SystemExit(None)\n", 0),
        ("def main():\n    raise ValueError\n\nif __name__ == '__main__':\n    main()\n", 1),
    ],
)
def test_batch_exit_codes(run_runner: RunRunner, script: str, status: int) -> None:
    result = run_runner(script)
    assert result.returncode == status, result.stderr


def test_uncaught_exception_prints_the_script_traceback(run_runner: RunRunner) -> None:
    result = run_runner("print('before')\nraise ValueError('boom')\n")
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "Traceback (most recent call last)" in result.stderr
    assert 'script.py", line 2, in <module>' in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: boom")
    assert "smrunner" not in result.stderr.split("Traceback", 1)[1]  # runner frames dropped


def test_exit_with_a_message(run_runner: RunRunner) -> None:
    result = run_runner("import sys\nsys.exit('no input file')\n")
    assert (result.returncode, result.stderr.strip()) == (1, "no input file")


def test_syntax_error_is_reported_as_exit_1(run_runner: RunRunner) -> None:
    result = run_runner("def broken(:\n")
    assert result.returncode == 1
    assert "SyntaxError" in result.stderr


def test_batch_script_sees_its_context(run_runner: RunRunner, tmp_path: Path) -> None:
    script = """
    import json, os, sys
    print(json.dumps({
        "workspace": WORKSPACE_PATH, "cwd": os.getcwd(), "params": PARAMETERS,
        "user": ENVIRONMENT["USER_ID"], "name": __name__, "argv0": sys.argv[0],
    }))
    """
    result = run_runner(script)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    workspace = str(tmp_path / "workspace")
    assert seen["workspace"] == seen["cwd"] == workspace
    assert (seen["params"], seen["user"], seen["name"]) == ({"threshold": 5}, "3", "__main__")
    assert seen["argv0"].endswith("script.py")


def test_script_configures_logging_itself(run_runner: RunRunner) -> None:
    script = "import logging\nlogging.basicConfig(level=logging.INFO, format='LOG %(message)s')\n"
    result = run_runner(script + "logging.info('hello')\n")
    assert (result.returncode, result.stderr) == (0, "LOG hello\n")


def test_script_imports_modules_next_to_it(run_runner: RunRunner, tmp_path: Path) -> None:
    helpers = tmp_path / "scripts" / "group"
    helpers.mkdir(parents=True)
    (helpers / "helpers_mod.py").write_text("VALUE = 42\n")
    result = run_runner("from helpers_mod import VALUE\nprint(VALUE)\n")
    assert (result.returncode, result.stdout) == (0, "42\n"), result.stderr


def test_missing_context_file_exits_78(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smrunner"],
        env=runner_env(tmp_path / "nope.json"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78
    assert "cannot read the context file" in result.stderr


def test_missing_script_exits_2(tmp_path: Path) -> None:
    context_file, data = write_session(tmp_path, "")
    Path(data["script_path"]).unlink()
    result = subprocess.run(
        [sys.executable, "-m", "smrunner"],
        env=runner_env(context_file),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot open the script" in result.stderr


def test_testing_mode_fallback_when_run_plainly(tmp_path: Path) -> None:
    """The seed's pattern still runs with plain ``python script.py`` (no runner, no globals)."""
    script = tmp_path / "seed.py"
    script.write_text(SEED_SCRIPT.replace("app.run(port=5000)", "pass"))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "Running in testing mode" in result.stdout
    assert "main block ran" in result.stdout


def test_sigterm_stops_a_batch_script_gracefully(start_runner: StartRunner) -> None:
    script = """
    import time
    try:
        print("working", flush=True)
        time.sleep(60)
    finally:
        print("cleanup ran")
    """
    proc = start_runner(script)
    wait_for_line(proc, "working")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 143
    assert "cleanup ran" in output


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read().decode()


def test_interactive_script_is_served_then_stops_on_sigterm(
    start_runner: StartRunner,
) -> None:
    port = free_port()
    proc = start_runner(SEED_SCRIPT, port=port)
    wait_for_line(proc, "serving on")
    base = f"http://127.0.0.1:{port}"
    assert _get(f"{base}/_sm/health") == (200, '{"status":"ok"}\n')
    status, body = _get(f"{base}/", {"X-Forwarded-Prefix": PREFIX})
    assert (status, body) == (200, "main of project Water <Analysis> visits=1")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output
    assert "server stopped" in output
