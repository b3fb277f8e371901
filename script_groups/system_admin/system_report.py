"""
ScriptsManager Metadata:
@description: Report the session's environment: Python, resource limits, workspace usage, packages
@description_es: Informa del entorno de la sesión: Python, límites de recursos, uso del
    espacio de trabajo, paquetes
@description_it: Riporta l'ambiente della sessione: Python, limiti di risorse, uso dello
    spazio di lavoro, pacchetti
@description_fr: Décrit l'environnement de la session : Python, limites de ressources,
    espace de travail, paquets
@description_long: docs/system_report.md
@required_level: admin
@category: diagnostics
@tags: system,diagnostics,report
@parameters: [
    {"name": "include_packages", "type": "bool", "default": false,
     "label": {"en": "List installed packages", "es": "Listar paquetes instalados",
               "it": "Elenca i pacchetti installati", "fr": "Lister les paquets installés"}},
    {"name": "output_format", "type": "select", "options": ["text", "json"], "default": "text",
     "label": {"en": "Output format", "es": "Formato de salida",
               "it": "Formato di output", "fr": "Format de sortie"}},
    {"name": "save_report", "type": "bool", "default": true,
     "label": {"en": "Save the report in the workspace", "es": "Guardar el informe",
               "it": "Salva il report", "fr": "Enregistrer le rapport"}}
]
@execution_timeout: 120
@flask_port: auto
"""

import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime
from importlib import metadata
from pathlib import Path

DEFAULTS = {"include_packages": False, "output_format": "text", "save_report": True}
# cgroup v2 files first, then their cgroup v1 equivalents.
CGROUP_FILES = {
    "memory_limit": ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "memory_current": (
        "/sys/fs/cgroup/memory.current",
        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
    ),
    "cpu_max": ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "pids_max": ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"),
}

try:
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    PROXY_MODE = True
    print("Running in ScriptsManager (batch run)")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    WORKSPACE_PATH = os.environ.get("WORKSPACE_PATH") or tempfile.mkdtemp(prefix="report_")
    PARAMETERS = {}
    ENVIRONMENT = {"USER_ID": "tester", "USER_LEVEL": "admin", "PROJECT_NAME": "Testing"}


def read_first(paths: tuple[str, ...]) -> str | None:
    """The content of the first readable file, stripped."""
    for path in paths:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            continue
    return None


def writable(path: str) -> bool:
    """True when a file can be created in ``path``."""
    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def workspace_usage(root: Path) -> dict:
    """Files, folders and bytes under the workspace, and the free space of its disk."""
    files = folders = size = 0
    for _folder, dirs, names in os.walk(root):
        folders += len(dirs)
        for name in names:
            path = Path(_folder) / name
            if not path.is_symlink():
                files += 1
                size += path.stat().st_size
    disk = shutil.disk_usage(root)
    return {"files": files, "folders": folders, "bytes": size, "disk_free_bytes": disk.free}


def collect(include_packages: bool) -> dict:
    """Everything the report shows."""
    packages = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()
    )
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    report = {
        "generated_at": datetime.now().isoformat(timespec="seconds"),
        "mode": "proxy" if PROXY_MODE else "testing",
        "user": ENVIRONMENT.get("USER_ID"),
        "project": ENVIRONMENT.get("PROJECT_NAME"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "uid": os.getuid() if hasattr(os, "getuid") else None,
        "cpus_visible": cpus,
        "cgroup": {key: read_first(paths) for key, paths in CGROUP_FILES.items()},
        "root_filesystem_writable": writable("/"),
        "tmp_writable": writable(tempfile.gettempdir()),
        "workspace": workspace_usage(Path(WORKSPACE_PATH)),
        "package_count": len(packages),
    }
    if include_packages:
        report["packages"] = packages
    return report


def main() -> None:
    """Collect, print (as text or JSON) and optionally save the report."""
    params = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
    report = collect(bool(params["include_packages"]))
    if params["output_format"] == "json":
        print(json.dumps(report, indent=2), flush=True)
    else:
        for key, value in report.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for inner, item in value.items():
                    print(f"  {inner:<18} {item}")
            elif isinstance(value, list):
                print(f"{key}: ({len(value)})")
                for item in value:
                    print(f"  {item}")
            else:
                print(f"{key:<26} {value}")
        sys.stdout.flush()
    if params["save_report"]:
        target = Path(WORKSPACE_PATH) / "reports"
        target.mkdir(exist_ok=True)
        path = target / f"system_report_{datetime.now():%Y%m%d_%H%M%S}.json"
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"Saved reports/{path.name}", flush=True)


main()
