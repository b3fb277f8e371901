"""
ScriptsManager Metadata:
@description: Remove old files from the project workspace (dry run by default)
@description_es: Elimina archivos antiguos del espacio de trabajo del proyecto (simulación
    por defecto)
@description_it: Rimuove i file vecchi dallo spazio di lavoro del progetto (simulazione predefinita)
@description_fr: Supprime les anciens fichiers de l'espace de travail du projet (simulation
    par défaut)
@description_long: docs/workspace_cleanup.md
@required_level: admin
@category: maintenance
@tags: maintenance,cleanup,storage
@parameters: [
    {"name": "older_than_days", "type": "int", "min": 0, "max": 3650, "default": 30,
     "label": {"en": "Older than (days)", "es": "Más antiguos que (días)",
               "it": "Più vecchi di (giorni)", "fr": "Plus anciens que (jours)"}},
    {"name": "dry_run", "type": "bool", "default": true,
     "label": {"en": "Dry run (only list)", "es": "Simulación (solo listar)",
               "it": "Simulazione (solo elenco)", "fr": "Simulation (liste seulement)"}},
    {"name": "pattern", "type": "string", "default": "*", "max_length": 100,
     "label": {"en": "File name pattern", "es": "Patrón de nombre",
               "it": "Modello del nome", "fr": "Motif de nom"}},
    {"name": "remove_empty_folders", "type": "bool", "default": true,
     "label": {"en": "Remove empty folders", "es": "Eliminar carpetas vacías",
               "it": "Rimuovi cartelle vuote", "fr": "Supprimer les dossiers vides"}}
]
@execution_timeout: 600
@flask_port: auto
"""

import fnmatch
import os
import tempfile
import time
from pathlib import Path

DEFAULTS = {"older_than_days": 30, "dry_run": True, "pattern": "*", "remove_empty_folders": True}

try:
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    PROXY_MODE = True
    print("Running in ScriptsManager (batch run)")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    WORKSPACE_PATH = os.environ.get("WORKSPACE_PATH") or tempfile.mkdtemp(prefix="cleanup_")
    PARAMETERS = {}
    ENVIRONMENT = {"USER_ID": "tester", "PROJECT_NAME": "Testing"}
    if not os.environ.get("WORKSPACE_PATH"):
        # A throwaway workspace with one old and one new file, to show what happens.
        old = Path(WORKSPACE_PATH) / "old_report.csv"
        old.write_text("a,b\n1,2\n", encoding="utf-8")
        aged = time.time() - 90 * 86400
        os.utime(old, (aged, aged))
        (Path(WORKSPACE_PATH) / "new_report.csv").write_text("a,b\n", encoding="utf-8")


def human(size: int) -> str:
    """Bytes as a short human-readable text."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def main() -> None:
    """List (or delete) matching files older than the cutoff; never leave the workspace."""
    params = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
    root = Path(WORKSPACE_PATH).resolve()
    cutoff = time.time() - int(params["older_than_days"]) * 86400
    dry_run = bool(params["dry_run"])
    print(
        f"{'DRY RUN: ' if dry_run else ''}files matching {params['pattern']!r} older than "
        f"{params['older_than_days']} days under {root}",
        flush=True,
    )
    count = freed = 0
    for folder, _dirs, files in os.walk(root, topdown=False, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not fnmatch.fnmatch(name, params["pattern"]):
                continue
            info = path.stat()
            if info.st_mtime >= cutoff:
                continue
            count += 1
            freed += info.st_size
            print(
                f"  {'would remove' if dry_run else 'removed'} {path.relative_to(root)} "
                f"({human(info.st_size)})",
                flush=True,
            )
            if not dry_run:
                path.unlink()
        removable = params["remove_empty_folders"] and not dry_run and Path(folder) != root
        if removable and not any(Path(folder).iterdir()):
            Path(folder).rmdir()
            print(f"  removed empty folder {Path(folder).relative_to(root)}", flush=True)
    verb = "would free" if dry_run else "freed"
    print(f"{count} file(s); {verb} {human(freed)}", flush=True)


main()
