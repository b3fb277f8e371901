"""Run logs as files: the seed's JSON log record, TXT, CSV, and bulk ZIP / JSON lines.

TXT and CSV are written from the run's log file (every line with its time and stream, in order)
and fall back to the row's output columns when there is no file. CSV cells that a spreadsheet
would run as a formula (starting with ``= + - @``, tab or CR) get a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from manager.logs.store import STREAMS, Line, iter_lines
from manager.models import Execution

FORMATS = ("txt", "json", "csv")
MIME = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "zip": "application/zip",
}
CSV_COLUMNS = ("execution_id", "seq", "timestamp", "stream", "text")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RunNames:
    """Names shown next to a run's ids."""

    script_name: str | None = None
    username: str | None = None
    project_name: str | None = None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def log_record(
    execution: Execution, names: RunNames, *, viewers: int | None = None
) -> dict[str, Any]:
    """The seed's "Log Content Structure" for one run."""
    return {
        "execution_id": execution.execution_uuid,
        "script_id": execution.script_id,
        "script_name": names.script_name,
        "user_id": execution.user_id,
        "username": names.username,
        "project_id": execution.project_id,
        "project_name": names.project_name,
        "execution_start": _iso(execution.start_time),
        "execution_end": _iso(execution.end_time),
        "duration_seconds": execution.duration_seconds,
        "status": execution.status,
        "exit_code": execution.exit_code,
        "parameters": execution.parameters or {},
        "environment": {
            "conda_env": execution.conda_environment,
            "image": execution.image,
            "interactive": execution.interactive,
            "limits": execution.limits or {},
            "oom_killed": execution.oom_killed,
            "timed_out": execution.timed_out,
            "peak_memory_bytes": execution.peak_memory_bytes,
            "variables": execution.environment or {},
        },
        "output": {
            "stdout": execution.output or "",
            "stderr": execution.error_output or "",
            "debug": execution.debug_output or "",
        },
        "session_info": {
            "browser_session": execution.session_id,
            "interface_url": execution.proxy_url,
            "real_time_viewers": viewers,
        },
    }


def run_lines(execution: Execution, path: Path | None) -> Iterator[Line]:
    """The run's lines from its file, else from the output columns (no times, stream order)."""
    if path is not None and path.is_file():
        yield from iter_lines(path)
        return
    seq = 0
    columns = zip(
        STREAMS, (execution.output, execution.error_output, execution.debug_output), strict=True
    )
    for stream, text in columns:
        for line in (text or "").splitlines():
            seq += 1
            yield Line(seq, "", stream, line)


def txt_chunks(record: dict[str, Any], lines: Iterable[Line]) -> Iterator[str]:
    """A readable text file: a header, then one line per output line with time and stream."""
    env = record["environment"]
    header = [
        f"Execution: {record['execution_id']}",
        f"Script: {record['script_name']} (id {record['script_id']})",
        f"User: {record['username']} (id {record['user_id']})",
        f"Project: {record['project_name']} (id {record['project_id']})",
        f"Start: {record['execution_start']}",
        f"End: {record['execution_end']}",
        f"Duration: {record['duration_seconds']} s",
        f"Status: {record['status']}",
        f"Exit code: {record['exit_code']}",
        f"Parameters: {json.dumps(record['parameters'], sort_keys=True, default=str)}",
        f"Environment: {env['conda_env']} ({env['image']})",
        "-" * 72,
    ]
    yield "\n".join(header) + "\n"
    batch: list[str] = []
    for line in lines:
        stamp = f"{line.ts} " if line.ts else ""
        batch.append(f"{stamp}[{line.stream}] {line.text}\n")
        if len(batch) >= 1000:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_chunks(runs: Iterable[tuple[str, Iterable[Line]]], *, header: bool = True) -> Iterator[str]:
    """CSV of ``(execution_id, lines)`` pairs: one row per output line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for execution_id, lines in runs:
        for count, line in enumerate(lines, 1):
            writer.writerow([execution_id, line.seq, line.ts, line.stream, _safe_cell(line.text)])
            if count % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def json_text(record: dict[str, Any]) -> str:
    """A log record as an indented JSON document."""
    return json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"


def export_one(
    fmt: str, record: dict[str, Any], execution: Execution, path: Path | None
) -> Iterator[str]:
    """One run in ``fmt`` (txt, json or csv), as text chunks."""
    if fmt == "json":
        return iter([json_text(record)])
    if fmt == "csv":
        return csv_chunks([(record["execution_id"], run_lines(execution, path))])
    return txt_chunks(record, run_lines(execution, path))


def bulk_zip(items: Iterable[tuple[dict[str, Any], Execution, Path | None]], fmt: str) -> bytes:
    """A ZIP holding ``execution_<uuid>.<fmt>`` per run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record, execution, path in items:
            name = f"execution_{record['execution_id']}.{fmt}"
            with archive.open(name, "w") as member:
                for chunk in export_one(fmt, record, execution, path):
                    member.write(chunk.encode("utf-8"))
    return buffer.getvalue()


def jsonl_chunks(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON log record per line."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False, default=str) + "\n"


def table_export(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows (audit events, system log lines) as JSON, CSV or TXT (tab-separated)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_safe_cell(_cell(row.get(column))) for column in columns])
        return buffer.getvalue()
    return "".join("\t".join(_cell(row.get(c)) for c in columns) + "\n" for row in rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
