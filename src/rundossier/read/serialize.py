"""Rows to JSON: the one shape runs, steps, events and errors have in the API, CLI and UI."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rundossier.core.failure import error_json
from rundossier.core.timefmt import iso
from rundossier.storage.db import Event, Run, Step


def run_json(run: Run, *, base: str = "") -> dict[str, Any]:
    trace_url = f"{base}/api/runs/{run.run_id}/trace" if run.trace_uri else None
    return {
        "run_id": run.run_id,
        "orchestrator": run.orchestrator,
        "flow_id": run.flow_id,
        "run_key": run.run_key,
        "parent_run_id": run.parent_run_id,
        "status": run.status,
        "attempt": run.attempt,
        "queued_at": iso(run.queued_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_ms": run.duration_ms,
        "error": error_json(run.error_type, run.error_message, trace_url),
        "failure_class": run.failure_class,
        "fingerprint": run.fingerprint,
        "root_step_id": run.root_step_id,
        "root_try_number": run.root_try_number,
        "trace_bytes": run.trace_bytes,
        "spooled": run.spooled,
        "blobs_expired": run.blobs_expired,
        "blobs_expired_at": iso(run.blobs_expired_at),
        "host": run.host,
        "agent": run.agent,
        "traceparent": run.traceparent,
        "params_hash": run.params_hash,
        "code_version": run.code_version,
        "tags": run.tags or {},
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
    }


def step_json(step: Step, *, base: str = "") -> dict[str, Any]:
    path = f"{base}/api/runs/{step.run_id}/steps/{quote(step.step_id, safe='')}"
    trace_url = f"{path}/trace?try={step.try_number}" if step.trace_uri else None
    return {
        "run_id": step.run_id,
        "step_id": step.step_id,
        "try_number": step.try_number,
        "task_id": step.task_id,
        "map_index": step.map_index,
        "status": step.status,
        "queued_at": iso(step.queued_at),
        "started_at": iso(step.started_at),
        "finished_at": iso(step.finished_at),
        "duration_ms": step.duration_ms,
        "error": error_json(step.error_type, step.error_message, trace_url),
        "fingerprint": step.fingerprint,
        "trace_bytes": step.trace_bytes,
        "has_log": bool(step.log_uri),
        "log_bytes": step.log_bytes,
        "log_lines": {"stdout": step.log_lines_stdout, "stderr": step.log_lines_stderr},
        "first_output_at": iso(step.first_output_at),
        "last_output_at": iso(step.last_output_at),
        "upstream": step.upstream or [],
        "host": step.host,
        "spooled": step.spooled,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "ts": iso(event.ts),
        "step_id": event.step_id,
        "try_number": event.try_number,
        "summary": event.summary,
        "raw_ref": event.raw_ref,
        "data": event.data,
    }


__all__ = ["run_json", "step_json", "event_json", "error_json", "iso"]
