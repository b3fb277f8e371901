"""Parse the ``ScriptsManager Metadata:`` block of a script's module docstring.

::

    \"\"\"
    ScriptsManager Metadata:
    @description: Creates a complete system backup
    @description_es: Crea una copia de seguridad completa
    @required_level: admin
    @tags: system,maintenance
    @parameters: [
        {"name": "destination", "type": "path", "required": true}
    ]
    @execution_timeout: 3600
    @flask_port: auto
    \"\"\"

The docstring is read with :mod:`ast`; when the file does not parse, a text scan finds it, so
a script with a syntax error is still listed, with the reason. ``@parameters`` may span lines
until its JSON closes. A line indented under a text key continues that key's value. Errors
name the file line: ``line 7: @parameters is not valid JSON: Expecting ',' delimiter (line 3
column 5)``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manager.catalog.errors import MetadataError
from manager.catalog.fields import SCRIPT_FIELDS, language_suffix

MARKER = "scriptsmanager metadata:"
KEY_RE = re.compile(r"^@([A-Za-z_][A-Za-z0-9_]*)\s*:\s?(.*)$")
DOCSTRING_START_RE = re.compile(r"^[rRuU]?(\"\"\"|''')")
ROUTE_DECORATORS = frozenset({"route", "get", "post", "put", "patch", "delete"})
ROUTE_CALLS = frozenset({"add_url_rule", "register_blueprint"})


@dataclass
class HeaderResult:
    """What a script's header says, normalised like ``script_metadata.json`` entries.

    ``fields`` holds only valid values (localized ones as ``{lang: text}``, ``tags`` as a
    list, ``parameters`` as normalised definitions). ``errors`` make the script invalid;
    ``warnings`` do not. ``syntax_error`` is set when the file does not parse.
    ``registers_routes`` is a static hint: the module decorates ``app.route`` (or similar).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    found: bool = False
    syntax_error: str | None = None
    registers_routes: bool = False
    # Fields whose value was given but rejected (so the caller can fail closed on them).
    rejected: set[str] = field(default_factory=set)


def read_header(path: Path) -> HeaderResult:
    """Parse the header of the script at ``path``; unreadable files become an error."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return HeaderResult(errors=[f"file is not valid UTF-8: {exc.reason} at byte {exc.start}"])
    except OSError as exc:
        return HeaderResult(errors=[f"cannot read the file: {exc.strerror or exc}"])
    return parse_header(text)


def parse_header(source: str) -> HeaderResult:
    """Parse the header block of a script's source text; never raises."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        result = HeaderResult(syntax_error=f"line {exc.lineno}: {exc.msg}")
        docstring, first_line = _scan_docstring(source)
    except ValueError as exc:  # e.g. NUL bytes in the source
        result = HeaderResult(syntax_error=str(exc))
        docstring, first_line = _scan_docstring(source)
    else:
        result = HeaderResult(registers_routes=_may_name_app(source) and _registers_routes(tree))
        docstring, first_line = _module_docstring(tree)
    if docstring is not None:
        _parse_block(docstring, first_line, result)
    if result.syntax_error:
        result.errors.insert(0, f"syntax error: {result.syntax_error}")
    return result


def _module_docstring(tree: ast.Module) -> tuple[str | None, int]:
    if tree.body:
        first = tree.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            return first.value.value, first.lineno
    return None, 0


def _scan_docstring(source: str) -> tuple[str | None, int]:
    """Find the leading triple-quoted string by text, for files that do not parse."""
    lines = source.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = DOCSTRING_START_RE.match(stripped)
        if not match:
            return None, 0
        quote = match.group(1)
        rest = "\n".join([stripped[match.end() :], *lines[index + 1 :]])
        end = rest.find(quote)
        return (rest if end < 0 else rest[:end]), index + 1
    return None, 0


def _may_name_app(source: str) -> bool:
    """False when no identifier in ``source`` can be ``app``, so the tree need not be walked.

    Identifiers are NFKC-normalised (full-width letters spell ``app`` too): only ASCII text
    without ``app`` is ruled out.
    """
    return "app" in source or not source.isascii()


def _registers_routes(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if _is_app_attribute(target, ROUTE_DECORATORS):
                    return True
        if isinstance(node, ast.Call) and _is_app_attribute(node.func, ROUTE_CALLS):
            return True
    return False


def _is_app_attribute(node: ast.AST, names: frozenset[str]) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr in names
        and isinstance(node.value, ast.Name)
        and node.value.id == "app"
    )


def _parse_block(docstring: str, first_line: int, result: HeaderResult) -> None:
    lines = docstring.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip().lower() == MARKER), None)
    if start is None:
        result.warnings.append("no 'ScriptsManager Metadata:' header; defaults are used")
        return
    result.found = True
    raw: dict[str, tuple[int, Any]] = {}  # field -> (line, raw value)
    current: tuple[str, int] | None = None  # text key being continued, and its indent
    index = start + 1
    while index < len(lines):
        line = lines[index]
        lineno = first_line + index
        stripped = line.strip()
        match = KEY_RE.match(stripped)
        if not match:
            indent = len(line) - len(line.lstrip())
            if stripped and current and indent > current[1]:
                key = current[0]
                line_of, value = raw[key]
                raw[key] = (line_of, f"{value} {stripped}".strip())
            elif not stripped:
                current = None
            index += 1
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        current = None
        if key == "parameters":
            text, index = _collect_json(lines, index, value)
            _store(raw, result, key, lineno, _load_json(text, lineno, result))
            continue
        _store(raw, result, key, lineno, value)
        current = (key, len(line) - len(line.lstrip()))
        index += 1
    _normalise(raw, result)


def _store(
    raw: dict[str, tuple[int, Any]], result: HeaderResult, key: str, lineno: int, value: Any
) -> None:
    if key in raw:
        result.warnings.append(f"line {lineno}: @{key} is given twice; the later value is used")
    raw[key] = (lineno, value)


def _collect_json(lines: list[str], index: int, value: str) -> tuple[str, int]:
    """Gather a JSON value from the key line on until its brackets close.

    Stops early at a line starting a new ``@key:``, which JSON cannot contain outside a
    string. Returns the text and the index of the next unread line.
    """
    brackets = _JsonBrackets()
    closed = brackets.closes(value)
    parts = [value]
    index += 1
    while not closed and index < len(lines):
        if KEY_RE.match(lines[index].strip()):
            break
        parts.append(lines[index])
        closed = brackets.closes("\n" + lines[index])
        index += 1
    return "\n".join(parts), index


class _JsonBrackets:
    """Follows a JSON text fed piece by piece and tells when its outer brackets close.

    Each piece is read once (rescanning the whole text at every line made long
    ``@parameters`` blocks quadratic). A scalar closes at its first character; a string
    before any bracket keeps the value open until something else follows it.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.opened = False
        self.in_string = False
        self.escaped = False

    def closes(self, piece: str) -> bool:
        """Read ``piece``; True once the value is closed (the rest is not read)."""
        for char in piece:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "[{":
                self.depth += 1
                self.opened = True
            elif char in "]}":
                self.depth -= 1
                if self.depth <= 0:
                    return True
            elif not self.opened and not char.isspace():
                return True  # a scalar: nothing spans lines
        return False


_INVALID = object()


def _load_json(text: str, lineno: int, result: HeaderResult) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        result.errors.append(
            f"line {lineno}: @parameters is not valid JSON: "
            f"{exc.msg} (line {exc.lineno} column {exc.colno})"
        )
        result.rejected.add("parameters")
        return _INVALID


def _normalise(raw: dict[str, tuple[int, Any]], result: HeaderResult) -> None:
    localized: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for key, (lineno, value) in raw.items():
        if value is _INVALID:
            continue
        split = language_suffix(key)
        if split is not None:
            base, lang = split
            localized.setdefault(base, {})[lang] = value
            lines.setdefault(base, lineno)
            continue
        if key not in SCRIPT_FIELDS:
            result.warnings.append(f"line {lineno}: unknown key @{key} ignored")
            continue
        _apply(result, key, value, lineno)
    for base, values in localized.items():
        _apply(result, base, values, lines[base])


def _apply(result: HeaderResult, key: str, value: Any, lineno: int) -> None:
    try:
        result.fields[key] = SCRIPT_FIELDS[key](key, value)
    except MetadataError as exc:
        result.errors.append(f"line {lineno}: @{exc.field}: {exc.message}")
        result.rejected.add(key)
