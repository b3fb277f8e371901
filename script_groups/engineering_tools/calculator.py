"""
ScriptsManager Metadata:
@description: Interactive scientific calculator with a per-project history
@description_es: Calculadora científica interactiva con historial por proyecto
@description_it: Calcolatrice scientifica interattiva con cronologia per progetto
@description_fr: Calculatrice scientifique interactive avec historique par projet
@description_long: docs/calculator.md
@description_long_es: docs/calculator_es.md
@description_long_it: docs/calculator_it.md
@description_long_fr: docs/calculator_fr.md
@required_level: operator
@category: engineering
@tags: calculator,math,interactive
@parameters: [
    {"name": "precision", "type": "int", "min": 0, "max": 12, "default": 6,
     "label": {"en": "Decimals", "es": "Decimales", "it": "Decimali", "fr": "Décimales"}},
    {"name": "angle_unit", "type": "select", "options": ["radians", "degrees"],
     "default": "radians",
     "label": {"en": "Angle unit", "es": "Unidad de ángulo", "it": "Unità angolare",
               "fr": "Unité d'angle"}}
]
@execution_timeout: 3600
@flask_port: auto
"""

import ast
import json
import math
import operator
import os
import tempfile
from datetime import datetime
from pathlib import Path

from flask import jsonify, render_template_string, request

DEFAULTS = {"precision": 6, "angle_unit": "radians"}
MAX_EXPRESSION = 200
MAX_HISTORY = 50

try:
    # Provided by ScriptsManager: the runner built `app` and will serve its routes.
    print(f"Workspace: {WORKSPACE_PATH}")
    print(f"Parameters: {PARAMETERS}")
    print(f"Environment: {ENVIRONMENT}")
    USER_ID = ENVIRONMENT.get("USER_ID")
    PROJECT_ID = ENVIRONMENT.get("PROJECT_ID")
    PROJECT_NAME = ENVIRONMENT.get("PROJECT_NAME")
    USER_LEVEL = ENVIRONMENT.get("USER_LEVEL")
    PROXY_MODE = True
    print("Running in ScriptsManager proxy mode")
except NameError:
    # Testing mode: `python calculator.py` serves the page on http://127.0.0.1:$PORT/.
    from flask import Flask

    PROXY_MODE = False
    print("Running in testing mode")
    WORKSPACE_PATH = os.environ.get("WORKSPACE_PATH") or tempfile.mkdtemp(prefix="calculator_")
    PARAMETERS = {}
    ENVIRONMENT = {
        "USER_ID": "tester",
        "PROJECT_NAME": "Testing",
        "USER_THEME": "light",
        "USER_LANGUAGE": "en",
    }
    PROJECT_NAME = "Testing"
    app = Flask(__name__)

SETTINGS = {**DEFAULTS, **{k: v for k, v in PARAMETERS.items() if v is not None}}
HISTORY_FILE = Path(WORKSPACE_PATH) / "calculator_history.json"

TEXTS = {
    "en": {
        "title": "Calculator",
        "expression": "Expression",
        "calculate": "Calculate",
        "history": "History",
        "clear": "Clear history",
        "project": "Project",
    },
    "es": {
        "title": "Calculadora",
        "expression": "Expresión",
        "calculate": "Calcular",
        "history": "Historial",
        "clear": "Borrar historial",
        "project": "Proyecto",
    },
    "it": {
        "title": "Calcolatrice",
        "expression": "Espressione",
        "calculate": "Calcola",
        "history": "Cronologia",
        "clear": "Cancella cronologia",
        "project": "Progetto",
    },
    "fr": {
        "title": "Calculatrice",
        "expression": "Expression",
        "calculate": "Calculer",
        "history": "Historique",
        "clear": "Effacer l'historique",
        "project": "Projet",
    },
}

OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
ANGLE_FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan}
INVERSE_FUNCTIONS = {"asin": math.asin, "acos": math.acos, "atan": math.atan}
FUNCTIONS = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
}


def evaluate(expression: str) -> float:
    """Evaluate arithmetic safely (numbers, + - * / // % **, math functions); no names else."""
    if len(expression) > MAX_EXPRESSION:
        raise ValueError(f"expression longer than {MAX_EXPRESSION} characters")
    tree = ast.parse(expression.replace("^", "**"), mode="eval")
    degrees = SETTINGS["angle_unit"] == "degrees"

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 1000:
                raise ValueError("exponent too large")
            return OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            args = [walk(arg) for arg in node.args]
            name = node.func.id
            if name in ANGLE_FUNCTIONS and len(args) == 1:
                return ANGLE_FUNCTIONS[name](math.radians(args[0]) if degrees else args[0])
            if name in INVERSE_FUNCTIONS and len(args) == 1:
                result = INVERSE_FUNCTIONS[name](args[0])
                return math.degrees(result) if degrees else result
            if name in FUNCTIONS and 1 <= len(args) <= 2:
                return float(FUNCTIONS[name](*args))
        raise ValueError("only numbers, + - * / // % ^, pi, e and math functions are allowed")

    result = walk(tree)
    if not math.isfinite(result):
        raise ValueError("the result is not a finite number")
    return result


def load_history() -> list:
    """The saved calculations of this project, newest first."""
    try:
        return json.loads(HISTORY_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


def save_history(entries: list) -> None:
    """Keep the newest entries in the project workspace."""
    HISTORY_FILE.write_text(json.dumps(entries[:MAX_HISTORY], indent=1), encoding="utf-8")


# The page extends the runner's base template (brand, theme, language, project name, Bootstrap).
PAGE = """{% extends "sm_base.html" %}
{% block title %}{{ t["title"] }}{% endblock %}
{% block content %}
<div class="row g-4">
  <div class="col-lg-7">
    <h1 class="h3 mb-3">{{ t["title"] }}</h1>
    <form id="calc" class="input-group input-group-lg mb-3">
      <label class="visually-hidden" for="expression">{{ t["expression"] }}</label>
      <input id="expression" name="expression" class="form-control font-monospace"
             autocomplete="off" autofocus placeholder="2*pi*sqrt(9)">
      <button class="btn btn-primary" type="submit">{{ t["calculate"] }}</button>
    </form>
    <div id="result" class="display-6 font-monospace mb-3" aria-live="polite"></div>
  </div>
  <div class="col-lg-5">
    <div class="card">
      <div class="card-header d-flex justify-content-between align-items-center">
        <span>{{ t["history"] }}</span>
        <button id="clear" type="button" class="btn btn-sm btn-outline-secondary">{{ t["clear"] }}</button>
      </div>
      <ul id="history" class="list-group list-group-flush font-monospace small"></ul>
    </div>
  </div>
</div>
{% endblock %}
{% block scripts %}
<script>
// Relative URLs: the page is served under the ScriptsManager proxy prefix.
const resultBox = document.getElementById("result");
const historyList = document.getElementById("history");
function showHistory(entries) {
  historyList.replaceChildren(...entries.map(entry => {
    const item = document.createElement("li");
    item.className = "list-group-item";
    item.textContent = entry.expression + " = " + entry.result;
    return item;
  }));
}
async function refresh() {
  const response = await fetch("history");
  showHistory(await response.json());
}
document.getElementById("calc").addEventListener("submit", async event => {
  event.preventDefault();
  const expression = document.getElementById("expression").value;
  const response = await fetch("calculate", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({expression})
  });
  const data = await response.json();
  resultBox.classList.toggle("text-danger", !response.ok);
  resultBox.textContent = response.ok ? data.formatted : data.error;
  refresh();
});
document.getElementById("clear").addEventListener("click", async () => {
  await fetch("history", {method: "DELETE"});
  refresh();
});
refresh();
</script>
{% endblock %}
"""

# Outside ScriptsManager there is no runner base template: a bare stand-in keeps the page working.
STANDALONE_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{% block title %}{% endblock %}</title></head>
<body><main>{% block content %}{% endblock %}</main>{% block scripts %}{% endblock %}</body></html>"""
if not PROXY_MODE:
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_loader = ChoiceLoader([DictLoader({"sm_base.html": STANDALONE_BASE})])


@app.route("/")
def script_main():
    """The calculator page, in the user's language and theme."""
    lang = ENVIRONMENT.get("USER_LANGUAGE", "en")
    return render_template_string(PAGE, t=TEXTS.get(lang, TEXTS["en"]))


@app.route("/calculate", methods=["POST"])
def calculate():
    """Evaluate ``expression`` (JSON or form); 400 with ``error`` when it is not valid."""
    payload = request.get_json(silent=True) or request.form
    expression = str(payload.get("expression", "")).strip()
    if not expression:
        return jsonify(error="empty expression"), 400
    try:
        result = evaluate(expression)
    except (ValueError, SyntaxError, ArithmeticError, TypeError) as exc:
        return jsonify(error=f"{type(exc).__name__}: {exc}"), 400
    formatted = f"{result:.{int(SETTINGS['precision'])}f}".rstrip("0").rstrip(".")
    entry = {"expression": expression, "result": formatted, "at": datetime.now().isoformat()}
    save_history([entry, *load_history()])
    print(f"{expression} = {formatted}", flush=True)
    return jsonify(result=result, formatted=formatted)


@app.route("/history", methods=["GET", "DELETE"])
def history():
    """The project's calculation history; DELETE clears it."""
    if request.method == "DELETE":
        save_history([])
    return jsonify(load_history())


if not PROXY_MODE and __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5050")))
