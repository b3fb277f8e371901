"""The runner's entry point: read the context, run the script, exit or serve."""

from __future__ import annotations

import gc
import io
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

from smrunner import deferred
from smrunner.context import (
    DEFAULT_CONTEXT_FILE,
    ContextError,
    SessionContext,
    await_network,
    load_context,
)
from smrunner.legacy import is_legacy, read_source, run_legacy

log = logging.getLogger("smrunner")

EXIT_EXCEPTION = 1  # an uncaught exception, as plain Python
EXIT_NO_SCRIPT = 2  # the script file cannot be opened, as plain Python
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the context file is missing or malformed
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process the signal killed
PACKAGE_DIR = Path(__file__).resolve().parent
NOTES_FD_ENV = "SM_RUNNER_NOTES_FD"  # set by the capture process (smrunner.capture)


class SessionTerminated(SystemExit):
    """Raised in the main thread on SIGTERM, so ``finally`` blocks and ``with`` exits run."""

    def __init__(self) -> None:
        super().__init__(EXIT_TERMINATED)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SessionTerminated()


def _unbuffer_stdio() -> None:
    """Pass every write straight through, so the manager streams output as it happens."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True, write_through=True)


def _notes_stream() -> TextIO:
    """The capture's notes pipe (``SM_RUNNER_NOTES_FD``), else stderr.

    The script neither sees the variable nor passes the pipe on to its own processes.
    """
    raw = os.environ.pop(NOTES_FD_ENV, "")
    if not raw:
        return sys.stderr
    try:
        fd = int(raw)
        os.set_inheritable(fd, False)
        return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
    except (ValueError, OSError):
        return sys.stderr


def _setup_logging() -> None:
    """Log the runner's notes, leaving the root logger for the script to configure.

    Information (starting, serving, stopped) goes to the notes pipe, which the manager shows as
    debug lines, not as the script's errors; warnings and errors go to stderr.
    """
    formatter = logging.Formatter("[smrunner] %(message)s")
    notes = logging.StreamHandler(_notes_stream())
    notes.addFilter(lambda record: record.levelno < logging.WARNING)
    problems = logging.StreamHandler(sys.stderr)
    problems.setLevel(logging.WARNING)
    for handler in (notes, problems):
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def exit_status(exc: SystemExit) -> int:
    """Map a SystemExit to a process status the way the interpreter does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return EXIT_EXCEPTION


def _script_traceback(exc: BaseException) -> TracebackType | None:
    """Drop the runner's own frames from the top of ``exc``'s traceback."""
    tb = exc.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().parent == PACKAGE_DIR:
        tb = tb.tb_next
    return tb


def main() -> int:
    """Run the session described by the context file; return the process exit status."""
    deferred.install()  # before Flask is imported (a standby imports it in load_context)
    # No cycle collection while the runner imports Flask: its tens of thousands of new objects
    # set off dozens of collections (six of them full), about 10 ms of a cold start. They are
    # frozen once imported (run_with_app) and never scanned again; collection is on again
    # before the script or a legacy script's runner runs (gc docs: disable early, freeze).
    gc.disable()
    _unbuffer_stdio()
    _setup_logging()
    try:
        # A standby (SM_CONTEXT_WAIT=1) imports Flask there while it waits for its context.
        context = load_context(os.environ.get("SM_CONTEXT_FILE", DEFAULT_CONTEXT_FILE))
    except ContextError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    try:
        os.chdir(context.workspace_path)
    except OSError as exc:
        log.warning("cannot enter the workspace %s: %s", context.workspace_path, exc.strerror)

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        legacy = is_legacy(read_source(context.script_path))
    except OSError as exc:
        log.error("cannot open the script %s: %s", context.script_path, exc.strerror)
        return EXIT_NO_SCRIPT
    if legacy:  # the seed's port-based interface: the script serves its own app on the port
        gc.enable()
        await_network()
        try:
            return run_legacy(context, SessionTerminated)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return run_with_app(context)


def run_with_app(context: SessionContext) -> int:
    """Run the script with ``app`` in its globals; serve the routes it registered, if any."""
    from smrunner.serve import listen_early, serve

    # A proxied session listens first: the proxy's first request waits in the backlog while
    # Flask and the script load, and is answered as soon as they have.
    listener = listen_early(context.port) if context.session else None
    # Flask and its imports are 17 MiB of this process: imported here, so the runner of a legacy
    # script (which only waits for its child) goes without.
    from smrunner.app import create_app, user_routes
    from smrunner.execute import run_script

    app = create_app(context)
    await_network()  # Flask was imported while the manager joined the container to its network
    gc.freeze()  # what the runner imported lives as long as the process: never scanned again
    gc.enable()  # the script's own objects are collected as usual
    try:
        run_script(app, context)
    except SessionTerminated:
        log.info("stopped by SIGTERM")
        return EXIT_TERMINATED
    except SystemExit as exc:
        return exit_status(exc)
    except KeyboardInterrupt:
        log.info("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.filename == context.script_path:
            log.error("cannot open the script %s: %s", context.script_path, exc.strerror)
            return EXIT_NO_SCRIPT
        traceback.print_exception(type(exc), exc, _script_traceback(exc))
        return EXIT_EXCEPTION
    except Exception as exc:
        traceback.print_exception(type(exc), exc, _script_traceback(exc))
        return EXIT_EXCEPTION

    routes = user_routes(app)
    if not routes:
        if listener is not None:
            listener.close()
        return 0
    log.info("interactive: %d route(s) registered: %s", len(routes), " ".join(sorted(routes)))
    try:
        return serve(app, context.port, listener=listener)
    except SessionTerminated:
        return 0
