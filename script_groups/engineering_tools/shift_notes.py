"""
ScriptsManager Metadata:
@description: Shift notes for the project, written for the seed's port-based script interface
@description_es: Notas de turno del proyecto, escrito con la interfaz por puerto del diseño original
@description_it: Note di turno del progetto, scritto con l'interfaccia a porta del progetto originale
@description_fr: Notes de quart du projet, écrit pour l'interface par port du cahier des charges
@description_long: docs/shift_notes.md
@required_level: operator
@category: demo
@tags: notes,legacy,interactive
@interface: legacy
@flask_port: auto

An example of the older interface: the script parses --data-dir --user-level --port --project-id
--project-name --theme --language and serves its own Flask app. ScriptsManager starts it with
--data-dir /workspace (the user's project folder) and --port 8081, and proxies its pages like any
interactive script's. Links are relative (no leading "/"), so they stay under the proxy prefix.
Run it by hand: python shift_notes.py --data-dir /tmp/notes --user-level operator --port 5050 \\
    --project-id 1 --project-name Demo --theme light --language en
"""

import argparse
import html
import json
import os
from datetime import datetime, timezone

from flask import Flask, jsonify, redirect, request

TITLES = {"en": "Shift notes", "es": "Notas de turno", "it": "Note di turno", "fr": "Notes de quart"}


def parse_arguments():
    parser = argparse.ArgumentParser(description="SIDEL ScriptsManager Script")
    parser.add_argument("--data-dir", required=True, help="Data directory path")
    parser.add_argument("--user-level", required=True,
                        choices=["admin", "developer", "operator", "viewer"])  # fmt: skip
    parser.add_argument("--port", type=int, required=True, help="Flask port number")
    parser.add_argument("--project-id", required=True, help="Project identifier")
    parser.add_argument("--project-name", required=True, help="Project display name")
    parser.add_argument("--theme", required=True, choices=["light", "dark"])
    parser.add_argument("--language", required=True, choices=["en", "es", "it", "fr"])
    return parser.parse_args()


class ScriptDataManager:
    """Notes kept as JSON in the data directory."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "shift_notes.json")
        os.makedirs(data_dir, exist_ok=True)

    def load(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return []

    def add(self, text, author_level):
        notes = self.load()
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        notes.append({"time": stamp, "level": author_level, "text": text[:500]})
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump(notes, handle, indent=2)
        return notes


def create_flask_app(data, args):
    app = Flask(__name__)
    title = TITLES.get(args.language, TITLES["en"])

    @app.route("/")
    def index():
        rows = "".join(
            f"<li><small>{html.escape(n['time'])}</small> {html.escape(n['text'])}</li>"
            for n in reversed(data.load())
        )
        return (
            f'<!doctype html><html lang="{args.language}" data-bs-theme="{args.theme}">'
            f"<head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>{title}: {html.escape(args.project_name)}</h1>"
            '<form method="post" action="notes"><input name="text" aria-label="note" required>'
            '<button type="submit">+</button></form>'
            f'<ul id="notes">{rows}</ul><p><a href="api/project-info">project info</a></p>'
            "</body></html>"
        )

    @app.route("/notes", methods=["POST"])
    def add_note():
        text = (request.form.get("text") or "").strip()
        if text:
            data.add(text, args.user_level)
        return redirect("./", code=303)

    @app.route("/api/project-info")
    def project_info():
        return jsonify(
            {
                "project_id": args.project_id,
                "project_name": args.project_name,
                "user_level": args.user_level,
                "theme": args.theme,
                "language": args.language,
                "data_dir": args.data_dir,
                "notes": len(data.load()),
            }
        )

    return app


if __name__ == "__main__":
    args = parse_arguments()
    app = create_flask_app(ScriptDataManager(args.data_dir), args)
    print(f"Starting shift notes for project: {args.project_name} "
          f"(Theme: {args.theme}, Language: {args.language}) on port {args.port}")  # fmt: skip
    app.run(host="0.0.0.0", port=args.port, debug=False)
