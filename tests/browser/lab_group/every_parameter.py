"""
ScriptsManager Metadata:
@description: Prints every parameter it gets, one of each type, and writes them to a file
@required_level: viewer
@category: tests
@tags: journey,parameters
@parameters: [
  {"name": "title", "type": "string", "required": true, "default": "Report", "max_length": 40,
   "label": {"en": "Title", "es": "Título"}},
  {"name": "notes", "type": "text", "label": "Notes"},
  {"name": "count", "type": "int", "min": 1, "max": 10, "default": 3, "label": "Count"},
  {"name": "ratio", "type": "float", "min": 0, "max": 1, "default": 0.5, "label": "Ratio"},
  {"name": "verbose", "type": "bool", "default": true, "label": "Verbose"},
  {"name": "unit", "type": "select", "options": ["mm", "in"], "default": "mm", "label": "Unit"},
  {"name": "columns", "type": "multiselect", "options": ["a", "b", "c"], "default": ["b"],
   "label": "Columns"},
  {"name": "day", "type": "date", "default": "2024-05-01", "label": "Day"},
  {"name": "folder", "type": "path", "label": "Folder"},
  {"name": "token", "type": "secret", "label": "Token"},
  {"name": "table", "type": "file", "accept": ".csv", "label": "Table"}
]
@execution_timeout: 120
"""

# A batch run (no route): prints one line per parameter at a steady pace, so a page can watch
# the lines arrive, then writes them to the workspace (an artifact of the run).
import json
import time
from pathlib import Path

for name in sorted(PARAMETERS):  # noqa: F821 - the runner injects PARAMETERS
    value = PARAMETERS[name]  # noqa: F821
    # The manager masks a secret in what it records, not in what a script prints: never print it.
    shown = f"<{len(value)} characters>" if name == "token" else json.dumps(value)
    print(f"{name}={shown}", flush=True)
    time.sleep(0.2)
table = PARAMETERS.get("table")  # noqa: F821
if table:
    print("table rows:", len(Path(table).read_text().splitlines()), flush=True)
safe = {k: v for k, v in PARAMETERS.items() if k != "token"}  # noqa: F821
Path(WORKSPACE_PATH, "parameters.json").write_text(json.dumps(safe, indent=1))  # noqa: F821
print("all parameters received", flush=True)
