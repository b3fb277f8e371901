"""A script's long description: find, read, write, template, status, and the group's examples.

Where a language's document lives: the path the merged metadata gives (a header's
``@description_long_<lang>`` or ``script_metadata.json`` wins over the ``docs/<stem>_<lang>.md``
convention discovery finds); a language without one is written at the convention's path.
Reading falls back to English when the asked language has no document.

Paths are relative to the group folder; reading accepts any ``.md`` inside the group folder,
writing only files inside its ``docs/`` folder. Symbolic links that lead elsewhere are refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from manager.catalog.localize import FALLBACK_LANGUAGE
from manager.docs.render import MAX_MARKDOWN_CHARS, Rendered, render_markdown
from manager.models.catalog import Script, ScriptGroup
from manager.models.user import LANGUAGES

__all__ = [
    "DocError",
    "DocText",
    "Example",
    "convention_path",
    "doc_path",
    "docs_status",
    "example_file",
    "list_examples",
    "load_doc",
    "render_for_script",
    "save_doc",
    "template_for",
]

DOCS_DIR = "docs"
EXAMPLES_DIR = "examples"
MAX_EXAMPLES = 500


class DocError(Exception):
    """A document request that cannot be met; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class DocText:
    """A document as read: ``language`` is the one served, ``requested`` the one asked for."""

    requested: str
    language: str | None
    path: str
    markdown: str
    exists: bool
    available: list[str] = field(default_factory=list)

    @property
    def fallback(self) -> bool:
        return self.exists and self.language != self.requested


@dataclass(frozen=True)
class Example:
    name: str
    size: int


def group_dir(groups_dir: Path, group: ScriptGroup) -> Path:
    return Path(groups_dir) / group.directory_path


def convention_path(script: Script, language: str) -> str:
    """``docs/<stem>.md`` for English, ``docs/<stem>_<lang>.md`` otherwise."""
    stem = PurePosixPath(script.filename).stem
    suffix = "" if language == FALLBACK_LANGUAGE else f"_{language}"
    return f"{DOCS_DIR}/{stem}{suffix}.md"


def doc_path(script: Script, language: str) -> str:
    """The relative path of ``language``'s document: the metadata's, else the convention's."""
    paths = (script.metadata_json or {}).get("description_long") or {}
    value = paths.get(language) if isinstance(paths, dict) else None
    return value if isinstance(value, str) and value else convention_path(script, language)


def _inside(base: Path, rel: str) -> Path | None:
    """``base/rel`` resolved, if it stays inside ``base`` (symlinks followed); else None."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        return None
    target = (base / pure).resolve()
    try:
        target.relative_to(base.resolve())
    except ValueError:
        return None
    return target


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        reason = f"{exc.reason} at byte {exc.start}"
        raise DocError(f"{path.name} is not UTF-8 text ({reason})") from None


def existing_languages(groups_dir: Path, script: Script) -> list[str]:
    """Languages whose document exists, in the order of LANGUAGES."""
    base = group_dir(groups_dir, script.group)
    found = []
    for language in LANGUAGES:
        target = _inside(base, doc_path(script, language))
        if target is not None and target.is_file():
            found.append(language)
    return found


def load_doc(groups_dir: Path, script: Script, language: str) -> DocText:
    """Read ``language``'s document, else English's, else any; ``exists`` False if none."""
    if language not in LANGUAGES:
        raise DocError(f"unknown language {language!r} (expected one of {', '.join(LANGUAGES)})")
    base = group_dir(groups_dir, script.group)
    available = existing_languages(groups_dir, script)
    for candidate in (language, FALLBACK_LANGUAGE, *available):
        if candidate not in available:
            continue
        rel = doc_path(script, candidate)
        target = _inside(base, rel)
        if target is None:
            continue
        return DocText(language, candidate, rel, _read(target), True, available)
    return DocText(language, None, doc_path(script, language), "", False, available)


def _writable_target(groups_dir: Path, script: Script, language: str) -> tuple[str, Path]:
    rel = doc_path(script, language)
    docs = group_dir(groups_dir, script.group) / DOCS_DIR
    if not PurePosixPath(rel).parts or PurePosixPath(rel).parts[0] != DOCS_DIR:
        raise DocError(
            f"{rel} is outside the group's {DOCS_DIR}/ folder; documents are written only there "
            f"(change the script's @description_long_{language} to a docs/ path)",
            403,
        )
    target = _inside(docs, str(PurePosixPath(*PurePosixPath(rel).parts[1:])))
    if target is None or not rel.endswith(".md"):
        raise DocError(f"{rel} is not a .md file inside the group's {DOCS_DIR}/ folder", 403)
    return rel, target


def save_doc(groups_dir: Path, script: Script, language: str, text: str) -> tuple[str, str | None]:
    """Write ``language``'s document; return ``(relative path, previous text or None)``.

    The file is replaced atomically (written beside it, then renamed). Raises
    :class:`DocError`: unknown language, too long, or a path outside ``docs/``.
    """
    if language not in LANGUAGES:
        raise DocError(f"unknown language {language!r} (expected one of {', '.join(LANGUAGES)})")
    if len(text) > MAX_MARKDOWN_CHARS:
        raise DocError(
            f"the document has {len(text):,} characters; the limit is {MAX_MARKDOWN_CHARS:,}", 413
        )
    rel, target = _writable_target(groups_dir, script, language)
    before = _read(target) if target.is_file() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".doc-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text if text.endswith("\n") or not text else text + "\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rel, before


def template_for(script: Script, language: str) -> str:
    """A starting document for a script without one, in ``language``: title, purpose,
    parameters, output."""
    from manager.catalog.localize import localized
    from manager.i18n import translate

    def text(key: str) -> str:
        return translate(f"docs.tpl_{key}", language)

    meta = script.metadata_json or {}
    title = localized(meta.get("display_name"), language) or script.display_name or script.filename
    description = localized(meta.get("description"), language) or script.description or ""
    lines = [f"# {title}", "", description or text("purpose"), "", f"## {text('parameters')}", ""]
    parameters = [p for p in (script.parameters or []) if isinstance(p, dict)]
    if parameters:
        lines += [text("columns"), "|---|---|---|---|"]
        for p in parameters:
            label = localized(p.get("label"), language) or p.get("name", "")
            meaning = localized(p.get("description"), language) or ""
            default = p.get("default")
            shown = "" if default is None or p.get("type") == "secret" else f"`{default}`"
            lines.append(f"| {label} | {p.get('type', 'string')} | {meaning} | {shown} |")
    else:
        lines.append(text("no_parameters"))
    lines += ["", f"## {text('output')}", "", text("output_text"), "", "!!! note"]
    lines += [f"    {text('note')}", ""]
    return "\n".join(lines)


def docs_status(groups_dir: Path, scripts: list[Script]) -> list[dict[str, Any]]:
    """For each script: the languages with a document and those without."""
    rows = []
    for script in scripts:
        present = existing_languages(groups_dir, script)
        rows.append(
            {
                "script_id": script.id,
                "group_id": script.group_id,
                "group": script.group.name,
                "filename": script.filename,
                "name": script.display_name or script.filename,
                "languages": present,
                "missing": [lang for lang in LANGUAGES if lang not in present],
            }
        )
    return rows


def list_examples(groups_dir: Path, group: ScriptGroup) -> list[Example]:
    """Files under the group's ``examples/`` folder (recursively, hidden files left out)."""
    base = group_dir(groups_dir, group) / EXAMPLES_DIR
    if not base.is_dir():
        return []
    found: list[Example] = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if _inside(base, rel.as_posix()) is None:  # a link leading out of the folder
            continue
        found.append(Example(rel.as_posix(), path.stat().st_size))
        if len(found) >= MAX_EXAMPLES:
            break
    return found


def example_file(groups_dir: Path, group: ScriptGroup, name: str) -> Path:
    """The example file ``name``; raises DocError(404) for anything else."""
    base = group_dir(groups_dir, group) / EXAMPLES_DIR
    rel = PurePosixPath(name)
    target = _inside(base, name)
    if target is None or any(p.startswith(".") for p in rel.parts) or not target.is_file():
        raise DocError(f"No example {name!r} in this group.", 404)
    return target


def doc_image(groups_dir: Path, group: ScriptGroup, name: str) -> Path:
    """An image under the group's ``docs/`` folder (png, jpg, gif, webp; never SVG)."""
    base = group_dir(groups_dir, group) / DOCS_DIR
    target = _inside(base, name)
    if (
        target is None
        or target.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif", ".webp")
        or not target.is_file()
    ):
        raise DocError(f"No image {name!r} in this group's documentation.", 404)
    return target


def link_target(script: Script, href: str) -> tuple[Script, str, str] | None:
    """For a relative link to another ``.md`` of the group: (script, language, fragment)."""
    path, _, fragment = href.partition("#")
    if not path.endswith(".md"):
        return None
    current = PurePosixPath(doc_path(script, FALLBACK_LANGUAGE)).parent
    joined = os.path.normpath(str(current / path)).replace(os.sep, "/")
    for other in script.group.scripts:
        for language in LANGUAGES:
            if doc_path(other, language) == joined:
                return other, language, fragment
    return None


def render_for_script(
    script: Script,
    text: str,
    *,
    doc_url: Callable[[Script, str, str], str],
    image_url: Callable[[ScriptGroup, str], str],
) -> Rendered:
    """Render ``text`` as ``script``'s document: links to the group's other documents open in
    the viewer (``doc_url(script, language, fragment)``), images come from its ``docs/`` folder.
    """
    folder = PurePosixPath(doc_path(script, FALLBACK_LANGUAGE)).parent

    def resolve_link(href: str) -> str | None:
        found = link_target(script, href)
        return doc_url(*found) if found else None

    def resolve_image(src: str) -> str | None:
        joined = os.path.normpath(str(folder / src.split("#")[0].split("?")[0])).replace(
            os.sep, "/"
        )
        if not joined.startswith(f"{DOCS_DIR}/"):
            return None
        return image_url(script.group, joined.removeprefix(f"{DOCS_DIR}/"))

    return render_markdown(text, resolve_link=resolve_link, resolve_image=resolve_image)
