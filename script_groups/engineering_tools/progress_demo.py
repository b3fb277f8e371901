"""
ScriptsManager Metadata:
@description: Long-running job that reports its progress line by line (live log demo)
@description_es: Trabajo largo que informa de su progreso línea a línea (demo de registro en vivo)
@description_it: Lavoro lungo che riporta i progressi riga per riga (demo del log in tempo reale)
@description_fr: Tâche longue qui affiche sa progression ligne par ligne (démo du journal en direct)
@description_long: docs/progress_demo.md
@required_level: operator
@category: demo
@tags: demo,progress,logs
@parameters: [
    {"name": "steps", "type": "int", "min": 1, "max": 1000, "default": 20,
     "label": {"en": "Steps", "es": "Pasos", "it": "Passi", "fr": "Étapes"}},
    {"name": "delay", "type": "float", "min": 0.0, "max": 10.0, "default": 0.5, "step": 0.1,
     "label": {"en": "Seconds per step", "es": "Segundos por paso",
               "it": "Secondi per passo", "fr": "Secondes par étape"}},
    {"name": "fail_at_step", "type": "int", "min": 0, "max": 1000, "default": 0,
     "label": {"en": "Fail at step (0 = never)", "es": "Fallar en el paso (0 = nunca)",
               "it": "Fallisci al passo (0 = mai)", "fr": "Échouer à l'étape (0 = jamais)"}}
]
@execution_timeout: 7200
@flask_port: auto
"""

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

DEFAULTS = {"steps": 20, "delay": 0.5, "fail_at_step": 0}
# Testing mode runs a short version so `python progress_demo.py` ends in a moment.
TESTING_DEFAULTS = {"steps": 5, "delay": 0.05}

try:
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    PROXY_MODE = True
    print("Running in ScriptsManager (batch run)")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    WORKSPACE_PATH = os.environ.get("WORKSPACE_PATH") or tempfile.mkdtemp(prefix="progress_")
    PARAMETERS = dict(TESTING_DEFAULTS)
    ENVIRONMENT = {"USER_ID": "tester", "PROJECT_NAME": "Testing"}

STOP_REQUESTED = False


def request_stop(signum: int, frame: object) -> None:
    """Finish the current step, then stop (the session was stopped by the user)."""
    global STOP_REQUESTED
    STOP_REQUESTED = True


def main() -> None:
    """Run the steps, printing one flushed progress line each, and save a small result."""
    params = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
    steps, delay = int(params["steps"]), float(params["delay"])
    fail_at = int(params["fail_at_step"])
    # Outside the main thread signal() raises ValueError: the runner handles stopping then.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, request_stop)
    started = time.monotonic()
    print(f"Starting {steps} steps of {delay:g} s", flush=True)
    for step in range(1, steps + 1):
        if STOP_REQUESTED:
            print(f"Stopped at step {step - 1}/{steps}", flush=True)
            raise SystemExit(143)
        time.sleep(delay)
        if step == fail_at:
            print(f"ERROR: simulated failure at step {step}", file=sys.stderr, flush=True)
            raise SystemExit(1)
        percent = step * 100 // steps
        bar = "#" * (percent // 5) + "-" * (20 - percent // 5)
        print(f"[{bar}] {percent:3d}%  step {step}/{steps}", flush=True)
    elapsed = round(time.monotonic() - started, 2)
    result = Path(WORKSPACE_PATH) / "progress_demo_result.json"
    result.write_text(json.dumps({"steps": steps, "seconds": elapsed}), encoding="utf-8")
    print(f"Done in {elapsed} s; result saved to {result.name}", flush=True)


main()
