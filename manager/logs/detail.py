"""One run's log as the detail page and the downloads need it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import func, select

from manager.catalog.schema import SECRET_MASK
from manager.extensions import DbSession
from manager.logs.export import RunNames, log_record
from manager.logs.queries import LIVE_STATUSES, summary
from manager.logs.store import (
    STREAMS,
    Line,
    count_lines,
    file_size,
    log_path,
    read_lines,
    tail_lines,
)
from manager.models import Execution, Script, User, UserProject
from manager.proxy.links import public_proxy_url
from manager.workspace.artifacts import artifacts_view

MAX_LINES = 5000


@dataclass
class Run:
    """A run with the names around it and where its log file is."""

    execution: Execution
    names: RunNames
    path: Path
    script: Script | None

    @property
    def uuid(self) -> str:
        return self.execution.execution_uuid


def find_run(db: DbSession, log_dir: str | Path, execution_id: str) -> Run | None:
    """The run by its uuid (or numeric id), with names; None when it does not exist."""
    key = (
        Execution.id == int(execution_id)
        if execution_id.isdigit()
        else Execution.execution_uuid == execution_id
    )
    row = db.execute(
        select(
            Execution,
            Script,
            UserProject.project_name,
            User.username,
        )
        .outerjoin(Script, Script.id == Execution.script_id)
        .outerjoin(UserProject, UserProject.id == Execution.project_id)
        .join(User, User.id == Execution.user_id)
        .where(key)
    ).first()
    if row is None:
        return None
    execution, script, project_name, username = row
    script_name = (script.display_name or script.filename) if script else None
    path = log_path(log_dir, execution.user_id, execution.start_time, execution.execution_uuid)
    return Run(execution, RunNames(script_name, username, project_name), path, script)


def secret_parameters(run: Run) -> list[str]:
    """Names of the run's secret parameters: masked in storage, asked again for a re-run."""
    names = {
        d["name"]
        for d in (run.script.parameters if run.script else None) or []
        if isinstance(d, dict) and d.get("type") == "secret" and d.get("name")
    }
    names |= {k for k, v in (run.execution.parameters or {}).items() if v == SECRET_MASK}
    return sorted(names)


def viewer_count(execution_uuid: str) -> int | None:
    """How many people watch the run live (this process), when live streaming is set up."""
    live = current_app.extensions.get("sm_live_logs") if has_app_context() else None
    if live is None:
        return None
    return int(live.viewer_count(execution_uuid))


def parse_streams(raw: str | None) -> list[str] | None:
    """``stdout,stderr`` → a list; ValueError naming an unknown stream."""
    if not raw:
        return None
    wanted = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STREAMS]
    if unknown:
        raise ValueError(f"Unknown stream {unknown[0]!r}; use {', '.join(STREAMS)}.")
    return wanted


def _lines_from_columns(run: Run, streams: list[str] | None) -> list[Line]:
    execution = run.execution
    lines: list[Line] = []
    texts = (execution.output, execution.error_output, execution.debug_output)
    for stream, text in zip(STREAMS, texts, strict=True):
        for line in (text or "").splitlines():
            if streams is None or stream in streams:
                lines.append(Line(len(lines) + 1, "", stream, line))
    return lines


def read_run_lines(
    run: Run,
    *,
    tail: int | None = None,
    after_seq: int | None = None,
    limit: int = MAX_LINES,
    streams: list[str] | None = None,
) -> dict[str, Any]:
    """Lines of the run's log: the last ``tail``, or ``limit`` after ``after_seq``."""
    if run.path.is_file():
        source = "file"
        if tail is not None:
            lines = tail_lines(run.path, tail, streams=streams)
        else:
            lines = read_lines(run.path, after_seq=after_seq or 0, limit=limit, streams=streams)
    else:
        source = "database"
        everything = _lines_from_columns(run, streams)
        if tail is not None:
            lines = everything[-tail:] if tail else []
        else:
            lines = [line for line in everything if line.seq > (after_seq or 0)][:limit]
    return {
        "source": source,
        "lines": [
            {"seq": li.seq, "ts": li.ts or None, "stream": li.stream, "text": li.text}
            for li in lines
        ],
        "last_seq": lines[-1].seq if lines else after_seq or 0,
    }


def output_sizes(db: DbSession, execution_id: int) -> dict[str, int]:
    """Characters in each output column, without loading them."""
    row = db.execute(
        select(
            func.coalesce(func.length(Execution.output), 0),
            func.coalesce(func.length(Execution.error_output), 0),
            func.coalesce(func.length(Execution.debug_output), 0),
        ).where(Execution.id == execution_id)
    ).one()
    return dict(zip(STREAMS, (int(n) for n in row), strict=True))


def run_detail(db: DbSession, run: Run, *, with_outputs: bool = True) -> dict[str, Any]:
    """Everything the detail page shows; outputs left out when ``with_outputs`` is False."""
    execution = run.execution
    viewers = viewer_count(run.uuid)
    record = log_record(execution, run.names, viewers=viewers)
    secrets = secret_parameters(run)
    body = summary(execution, run.names.script_name, run.names.project_name, run.names.username)
    body.update(
        {
            "parameters": record["parameters"],
            "secret_parameters": secrets,
            "environment": record["environment"],
            "conda_environment": execution.conda_environment,
            "image": execution.image,
            "limits": execution.limits or {},
            "oom_killed": execution.oom_killed,
            "timed_out": execution.timed_out,
            "log_truncated": execution.log_truncated,
            "peak_memory_bytes": execution.peak_memory_bytes,
            "proxy_url": (
                public_proxy_url(execution.proxy_url) if execution.status in LIVE_STATUSES else None
            ),
            "session_info": record["session_info"],
            "viewers": viewers,
            "output_sizes": output_sizes(db, execution.id),
            "log_file": {
                "exists": run.path.is_file(),
                "size": file_size(run.path),
                "lines": count_lines(run.path),
            },
            "rerun": {
                "script_id": execution.script_id,
                "project_id": execution.project_id,
                "method": "POST",
                "url": f"/api/scripts/{execution.script_id}/execute"
                if execution.script_id
                else None,
                "parameters": {
                    k: v for k, v in (execution.parameters or {}).items() if k not in secrets
                },
                "secret_parameters": secrets,
            },
        }
    )
    data_dir = current_app.config["SM_DATA_DIR"] if has_app_context() else None
    if data_dir:  # the files the run created or changed in its workspace
        body["artifacts"] = artifacts_view(db, execution, run.script, data_dir)
    if with_outputs:
        body["output"] = record["output"]
    return body
