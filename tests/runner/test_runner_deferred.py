"""The runner's deferred imports (smrunner.deferred): what Flask imports and a session never uses
stays unrun, and runs the moment anything uses it.

Each case runs in a fresh interpreter: the test process has Werkzeug imported already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runner-image"
RUNNER_IMPORTS = "import smrunner.app, smrunner.execute, smrunner.serve, waitress.server"
NEVER_USED = ("werkzeug.test", "http.server", "http.client", "socketserver", "ssl")


def run(code: str, deferring: bool = True, path: Path | None = None) -> dict:
    """Run ``code`` (which sets ``result``) in a fresh interpreter; return ``result``."""
    head = "from smrunner import deferred; deferred.install()\n" if deferring else ""
    program = head + textwrap.dedent(code) + "\nimport json; print(json.dumps(result))"
    paths = [str(RUNNER_DIR)] + ([str(path)] if path else [])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, "-c", program], env=environment,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_runner_imports_leave_the_unused_modules_unrun() -> None:
    code = f"""
    import sys
    {RUNNER_IMPORTS}
    serving = sys.modules["werkzeug.serving"]
    result = {{
        "modules": len(sys.modules),
        "loaded": [name for name in {NEVER_USED!r} if name in sys.modules],
        "serving_has_its_server": "WSGIRequestHandler" in vars(serving),
        "metadata_has_version": "version" in vars(sys.modules["importlib.metadata"]),
    }}
    """
    deferring, plain = run(code), run(code, deferring=False)
    assert deferring["loaded"] == []
    assert not deferring["serving_has_its_server"] and not deferring["metadata_has_version"]
    assert plain["loaded"], "Flask no longer imports these: the deferral list is out of date"
    assert deferring["modules"] < plain["modules"] - 15


def test_every_deferred_name_works_when_used() -> None:
    result = run(
        f"""
        {RUNNER_IMPORTS}
        import importlib.metadata, sys, werkzeug, werkzeug.serving, werkzeug.wrappers
        from importlib.metadata import version
        star = {{}}
        exec("from importlib.metadata import *", star)
        from werkzeug import Client, Request, Response, run_simple
        import werkzeug.test
        result = {{
            "version": importlib.metadata.version("flask"),
            "version_imported": version("werkzeug"),
            "client": Client is werkzeug.test.Client,
            "request": Request is werkzeug.wrappers.Request and werkzeug.Response is Response,
            "handler": werkzeug.serving.WSGIRequestHandler.__name__,
            "reloader": werkzeug.serving.is_running_from_reloader(),
            "run_simple": run_simple.__name__,
            "loader": type(werkzeug.serving.__spec__.loader).__name__,
            "http_server": "http.server" in sys.modules,
            "star": "version" in star and "distribution" in star,
        }}
        """
    )
    plain = run(
        "import importlib.metadata as m; result = [m.version('flask'), m.version('werkzeug')]",
        deferring=False,
    )
    assert [result["version"], result["version_imported"]] == plain
    assert result["client"] and result["request"]
    assert result["handler"] == "WSGIRequestHandler" and result["reloader"] is False
    assert result["run_simple"] == "run_simple"
    assert result["loader"] == "SourceFileLoader" and result["http_server"]
    assert result["star"]  # ``__all__`` comes from the real code


def test_a_script_serves_with_werkzeugs_own_server_through_the_stand_in() -> None:
    """``run_simple`` as Flask's ``app.run()`` calls it: the stand-in runs the real one."""
    result = run(
        f"""
        {RUNNER_IMPORTS}
        import threading, urllib.request
        from flask import Flask
        from werkzeug.serving import make_server
        import werkzeug.serving

        app = Flask("deferred")
        app.add_url_rule("/", "index", lambda: "served")
        calls = []
        real = werkzeug.serving.run_simple

        def recorded(host, port, application, **options):
            calls.append(host)
            server = make_server(host, port, application)
            threading.Thread(target=server.handle_request, daemon=True).start()
            with urllib.request.urlopen(f"http://127.0.0.1:{{server.server_port}}/") as answer:
                calls.append(answer.read().decode())
            server.server_close()

        werkzeug.serving.run_simple = recorded
        app.run(host="127.0.0.1", port=0, load_dotenv=False)
        result = {{"calls": calls, "real_was_loaded": real.__module__}}
        """
    )
    assert result["calls"] == ["127.0.0.1", "served"]
    assert result["real_was_loaded"] == "werkzeug.serving"


def test_threads_racing_for_a_deferred_module_run_its_code_once() -> None:
    result = run(
        """
        import threading, werkzeug.serving
        seen, barrier = [], threading.Barrier(8)

        def use():
            barrier.wait()
            seen.append(id(werkzeug.serving.WSGIRequestHandler))

        threads = [threading.Thread(target=use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = {"distinct": len(set(seen)), "count": len(seen)}
        """
    )
    assert result == {"distinct": 1, "count": 8}


def test_a_deferred_module_that_fails_raises_where_it_is_used(tmp_path: Path) -> None:
    """Its error reaches the user of the attribute, and the module is gone from sys.modules, as
    after a failed import, so a later import tries again."""
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('broken at import')\nx = 1\n")
    result = run(
        """
        import sys
        deferred.DEFERRED["broken_mod"] = ((), {})
        import broken_mod
        try:
            broken_mod.x
            error = None
        except RuntimeError as exc:
            error = str(exc)
        result = {"error": error, "kept": "broken_mod" in sys.modules}
        """,
        path=tmp_path,
    )
    assert result == {"error": "broken at import", "kept": False}


def test_the_runner_installs_the_deferral_before_flask(run_runner) -> None:
    """A whole runner: the script sees Flask working and the development server unrun."""
    done = run_runner(
        "import sys\n"
        "print('loaded:', [m for m in ('werkzeug.test', 'http.server') if m in sys.modules])\n"
        "print('app:', type(app).__name__)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout and "app: ScriptFlask" in done.stdout
