"""One run's log as a PDF: the run's header fields, then every output line in a monospace font.

A Unicode TTF (DejaVu Sans Mono, Debian's ``fonts-dejavu-core``) is used when the host has one;
characters the font has no glyph for (CJK, emoji with DejaVu) print as ``?``. Without a TTF the
PDF core font Courier is used and everything outside Latin-1 prints as ``?``. Either way a log
never makes the export fail. Long logs paginate; a log past ``max_lines`` stops with a note
pointing at the TXT download, which has no such cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF

from manager.logs.store import Line

PDF_MAX_LINES = 10_000  # a PDF of more than this is no longer read; the TXT download has all
PDF_MAX_LINE_CHARS = 2_000
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
)
FONT_SIZE = 7.5
LINE_HEIGHT = 3.6


def find_font(candidates: Sequence[str | Path] = FONT_CANDIDATES) -> Path | None:
    """The first monospace TTF of ``candidates`` that exists, or None."""
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


class _Printable:
    """Makes text printable with the chosen font: unknown characters become ``?``."""

    def __init__(self, pdf: FPDF, font: Path | None):
        self.codepoints: set[int] | None = None
        if font is not None:
            pdf.add_font("logmono", fname=str(font))
            pdf.set_font("logmono", size=FONT_SIZE)
            loaded = pdf.fonts["logmono"]
            self.codepoints = set(getattr(loaded, "cmap", None) or range(256))
        else:
            pdf.set_font("Courier", size=FONT_SIZE)

    def __call__(self, text: str) -> str:
        text = text.replace("\t", "    ")
        if text.isascii() and text.isprintable():  # most log lines: every font has these
            return text
        out = []
        for char in text:
            code = ord(char)
            if code < 32 or code == 127:
                out.append("?")
            elif self.codepoints is None:
                out.append(char if code < 256 else "?")
            else:
                out.append(char if code in self.codepoints else "?")
        return "".join(out)


def header_lines(record: dict[str, Any]) -> list[str]:
    """The run's fields printed above its output."""
    env = record.get("environment") or {}
    return [
        f"Run: {record.get('execution_id')}",
        f"Script: {record.get('script_name')} (id {record.get('script_id')})",
        f"User: {record.get('username')}",
        f"Project: {record.get('project_name')}",
        f"Start: {record.get('execution_start')}",
        f"End: {record.get('execution_end')}",
        f"Duration: {record.get('duration_seconds')} s",
        f"Status: {record.get('status')}   Exit code: {record.get('exit_code')}",
        "Parameters: "
        + json.dumps(
            record.get("parameters") or {}, sort_keys=True, default=str, ensure_ascii=False
        ),
        f"Environment: {env.get('conda_env')} ({env.get('image')})",
    ]


def run_pdf(
    record: dict[str, Any],
    lines: Iterable[Line],
    *,
    max_lines: int = PDF_MAX_LINES,
    font: Path | None = None,
    use_default_font: bool = True,
) -> bytes:
    """The PDF document of a run (``record`` as ``log_record`` builds it) and its lines."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(10, 10, 10)
    pdf.set_title(f"Run {record.get('execution_id')}")
    pdf.set_creator("ScriptsManager")
    pdf.add_page()
    printable = _Printable(pdf, font or (find_font() if use_default_font else None))
    width = pdf.epw
    # Monospace: wrap by character count and print cells (multi_cell is ten times slower).
    per_line = max(20, int(width / pdf.get_string_width("M")))

    def write(text: str) -> None:
        text = printable(text)
        for start in range(0, max(len(text), 1), per_line):
            pdf.cell(
                width, LINE_HEIGHT, text[start : start + per_line], new_x="LMARGIN", new_y="NEXT"
            )

    for text in header_lines(record):
        write(text)
    write("-" * 100)
    count = 0
    for line in lines:
        if count >= max_lines:
            write(f"[The PDF stops after {max_lines} lines: download the log as TXT for the rest.]")
            break
        count += 1
        text = line.text
        if len(text) > PDF_MAX_LINE_CHARS:
            text = text[:PDF_MAX_LINE_CHARS] + f" [... {len(line.text) - PDF_MAX_LINE_CHARS} more]"
        stamp = f"{line.ts} " if line.ts else ""
        write(f"{stamp}[{line.stream}] {text}")
    if count == 0:
        write("(no output)")
    return bytes(pdf.output())
