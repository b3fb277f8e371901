"""
ScriptsManager Metadata:
@description: Summarise a CSV file: statistics per column, outliers and a JSON report
@description_es: Resume un archivo CSV: estadísticas por columna, valores atípicos e informe JSON
@description_it: Riassume un file CSV: statistiche per colonna, valori anomali e report JSON
@description_fr: Résume un fichier CSV : statistiques par colonne, valeurs aberrantes et
    rapport JSON
@description_long: docs/csv_summary.md
@description_long_es: docs/csv_summary_es.md
@description_long_it: docs/csv_summary_it.md
@description_long_fr: docs/csv_summary_fr.md
@required_level: operator
@category: analysis
@tags: csv,statistics,report
@parameters: [
    {
        "name": "input_file",
        "type": "path",
        "default": "sample_measurements.csv",
        "label": {"en": "Input file", "es": "Archivo de entrada",
                  "it": "File di input", "fr": "Fichier d'entrée"},
        "description": {
            "en": "CSV file in the project workspace; the sample file is created when missing",
            "es": "Archivo CSV del espacio de trabajo; el archivo de ejemplo se crea si falta",
            "it": "File CSV nello spazio di lavoro; il file di esempio viene creato se manca",
            "fr": "Fichier CSV de l'espace de travail ; le fichier d'exemple est créé s'il manque"
        }
    },
    {
        "name": "delimiter",
        "type": "select",
        "options": ["comma", "semicolon", "tab"],
        "default": "comma",
        "label": {"en": "Delimiter", "es": "Separador", "it": "Separatore", "fr": "Séparateur"}
    },
    {
        "name": "title",
        "type": "string",
        "default": "Measurement summary",
        "max_length": 80,
        "label": {"en": "Report title", "es": "Título del informe",
                  "it": "Titolo del report", "fr": "Titre du rapport"}
    },
    {
        "name": "max_rows",
        "type": "int",
        "min": 1,
        "max": 1000000,
        "default": 100000,
        "label": {"en": "Maximum rows", "es": "Filas máximas",
                  "it": "Righe massime", "fr": "Lignes maximales"}
    },
    {
        "name": "outlier_z",
        "type": "float",
        "min": 1.0,
        "max": 10.0,
        "step": 0.5,
        "default": 3.0,
        "label": {"en": "Outlier threshold (z-score)", "es": "Umbral de atípicos (z)",
                  "it": "Soglia anomalie (z)", "fr": "Seuil d'aberration (z)"}
    },
    {
        "name": "include_text_columns",
        "type": "bool",
        "default": true,
        "label": {"en": "Include text columns", "es": "Incluir columnas de texto",
                  "it": "Includi colonne di testo", "fr": "Inclure les colonnes texte"}
    },
    {
        "name": "statistics",
        "type": "multiselect",
        "options": ["count", "mean", "min", "max", "median", "stdev"],
        "default": ["count", "mean", "min", "max"],
        "label": {"en": "Statistics", "es": "Estadísticas",
                  "it": "Statistiche", "fr": "Statistiques"}
    },
    {
        "name": "since",
        "type": "date",
        "label": {"en": "Only rows since", "es": "Solo filas desde",
                  "it": "Solo righe dal", "fr": "Seulement les lignes depuis"},
        "description": {
            "en": "Optional: keep rows whose 'date' column is on or after this day",
            "es": "Opcional: conserva las filas cuya columna 'date' es igual o posterior",
            "it": "Facoltativo: mantiene le righe con colonna 'date' uguale o successiva",
            "fr": "Facultatif : garde les lignes dont la colonne 'date' est égale ou postérieure"
        }
    }
]
@execution_timeout: 300
@flask_port: auto
"""

import csv
import json
import math
import os
import random
import statistics
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

# The header's defaults, for testing mode (the manager sends validated values with defaults).
DEFAULTS = {
    "input_file": "sample_measurements.csv",
    "delimiter": "comma",
    "title": "Measurement summary",
    "max_rows": 100000,
    "outlier_z": 3.0,
    "include_text_columns": True,
    "statistics": ["count", "mean", "min", "max"],
    "since": None,
}
DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t"}

try:
    # These variables are provided by ScriptsManager when it runs the script.
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    PROXY_MODE = True
    print("Running in ScriptsManager (batch run)")
except NameError:
    PROXY_MODE = False
    print("Running in testing mode")
    WORKSPACE_PATH = os.environ.get("WORKSPACE_PATH") or tempfile.mkdtemp(prefix="csv_summary_")
    PARAMETERS = {}
    ENVIRONMENT = {"USER_ID": "tester", "PROJECT_NAME": "Testing", "USER_LANGUAGE": "en"}


def fail(message: str) -> None:
    """Print an error and stop with exit code 2 (bad input)."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def write_sample(path: Path) -> None:
    """Write a reproducible measurement file with a few outliers."""
    rng = random.Random(42)
    start = date(2024, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "line", "temperature_c", "pressure_bar", "flow_l_min"])
        for day in range(120):
            for line in ("A", "B", "C"):
                temperature = rng.gauss(72.0, 1.5) + (15.0 if (day, line) == (50, "B") else 0.0)
                writer.writerow(
                    [
                        (start + timedelta(days=day)).isoformat(),
                        line,
                        f"{temperature:.2f}",
                        f"{rng.gauss(4.0, 0.2):.3f}",
                        f"{rng.gauss(120.0, 6.0):.1f}",
                    ]
                )


def as_number(text: str) -> float | None:
    """Parse a number, accepting a decimal comma; None when it is not one."""
    cleaned = text.strip().replace(",", ".") if text.count(",") == 1 else text.strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def numeric_summary(values: list[float], wanted: list[str], threshold: float) -> dict:
    """The selected statistics of a numeric column, plus its outliers."""
    stats = {
        "count": lambda: len(values),
        "mean": lambda: statistics.fmean(values),
        "min": lambda: min(values),
        "max": lambda: max(values),
        "median": lambda: statistics.median(values),
        "stdev": lambda: statistics.stdev(values) if len(values) > 1 else 0.0,
    }
    summary = {name: round(stats[name](), 4) for name in wanted}
    outliers = 0
    if len(values) > 2:
        mean, stdev = statistics.fmean(values), statistics.stdev(values)
        if stdev > 0:
            outliers = sum(1 for value in values if abs(value - mean) / stdev > threshold)
    summary["outliers"] = outliers
    return summary


def main() -> None:
    """Read the file, summarise every column, print a table and save a JSON report."""
    params = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
    workspace = Path(WORKSPACE_PATH).resolve()
    source = (workspace / str(params["input_file"])).resolve()
    if not source.is_relative_to(workspace):
        fail("input_file must be inside the project workspace")
    if not source.exists():
        if params["input_file"] != DEFAULTS["input_file"]:
            fail(f"{params['input_file']} not found in the workspace")
        write_sample(source)
        print(f"Created the sample file {source.name}", flush=True)

    since = date.fromisoformat(params["since"]) if params.get("since") else None
    delimiter = DELIMITERS[params["delimiter"]]
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns: dict[str, list[str]] = {name: [] for name in reader.fieldnames or []}
        if not columns:
            fail(f"{source.name} has no header row")
        rows = 0
        for row in reader:
            if rows >= params["max_rows"]:
                print(f"Stopped at max_rows={params['max_rows']}", flush=True)
                break
            if since and row.get("date") and row["date"] < since.isoformat():
                continue
            rows += 1
            for name in columns:
                columns[name].append((row.get(name) or "").strip())
            if rows % 10000 == 0:
                print(f"Read {rows} rows...", flush=True)

    report = {"title": params["title"], "file": source.name, "rows": rows, "columns": {}}
    print(f"\n{params['title']}\n{'=' * len(params['title'])}")
    print(f"File: {source.name}   rows: {rows}   columns: {len(columns)}\n")
    for name, raw in columns.items():
        present = [value for value in raw if value]
        numbers = [as_number(value) for value in present]
        if present and all(number is not None for number in numbers):
            summary = numeric_summary(
                [n for n in numbers if n is not None], params["statistics"], params["outlier_z"]
            )
            report["columns"][name] = {"kind": "numeric", **summary}
            shown = "  ".join(f"{key}={value}" for key, value in summary.items())
            print(f"{name:<16} numeric  {shown}")
        elif params["include_text_columns"]:
            counts: dict[str, int] = {}
            for value in present:
                counts[value] = counts.get(value, 0) + 1
            top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:3]
            report["columns"][name] = {"kind": "text", "distinct": len(counts), "top": top}
            shown = ", ".join(f"{value} ({count})" for value, count in top)
            print(f"{name:<16} text     distinct={len(counts)}  top: {shown}")

    results = workspace / "results"
    results.mkdir(exist_ok=True)
    target = results / f"csv_summary_{datetime.now():%Y%m%d_%H%M%S}.json"
    target.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nReport saved to results/{target.name}", flush=True)


main()
