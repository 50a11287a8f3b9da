"""Routes for runs: list, detail, traces (run and step), step logs and their download."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from rundossier.core.ids import is_run_id
from rundossier.core.logs import format_line
from rundossier.core.status import Status
from rundossier.errors import InvalidInput, RunNotFound, TraceExpired, TraceNotFound
from rundossier.read.reader import (
    StepLogSource,
    TraceText,
    child_runs,
    log_page,
    run_dossier,
    run_trace,
    run_trace_doc,
    step_log_source,
    step_trace,
    step_trace_doc,
)
from rundossier.read.serialize import event_json, run_json, step_json
from rundossier.server.access import Access
from rundossier.server.app import Backend
from rundossier.server.errors import error_doc
from rundossier.storage.db import MAX_PAGE, GroupQuery, Run, RunQuery, Step
from rundossier.storage.db.models import MAX_TRY

router = APIRouter(prefix="/api", tags=["runs"])
log = logging.getLogger("rundossier")

Orchestrator = Literal["airflow", "prefect", "python"]
StreamName = Literal["stdout", "stderr", "all"]
TRACE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error_doc("no such run or step, or no trace captured (the message says why)"),
    410: error_doc("expired by retention"),
    500: error_doc("the stored trace is damaged (`blob_corrupt`, naming the blob), or an unexpected error"),
}


def backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


def access(request: Request) -> Access:
    return request.app.state.access  # type: ignore[no-any-return]


BackendDep = Annotated[Backend, Depends(backend)]
AccessDep = Annotated[Access, Depends(access)]

TryNumber = Annotated[int | None, Query(alias="try", ge=1, le=MAX_TRY, description="the try (latest when omitted)")]


def utc_param(name: str, ts: datetime | None) -> datetime | None:
    """A time parameter in UTC (naive times are UTC); InvalidInput when UTC cannot hold it
    (`0001-01-01T00:00:00+14:00` is a time before year 1 in UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{name}: {ts.isoformat()} is outside the times rundossier can compare (years 1 to 9999 in UTC)"
        ) from None


def _statuses(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(Status(part).value)
            except ValueError:
                known = ", ".join(s.value for s in Status)
                raise InvalidInput(f"status: unknown status {part!r}; use one of {known}") from None
    return tuple(out)


@router.get("/runs", summary="Runs, newest first, with filters and keyset pagination")
def list_runs(
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    flow_id: Annotated[str | None, Query(max_length=250)] = None,
    status: Annotated[list[str] | None, Query(description="one or more statuses, comma-separated or repeated")] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the flow id or run key")] = None,
    since: Annotated[datetime | None, Query(description="ISO-8601; runs recorded at or after")] = None,
    until: Annotated[datetime | None, Query(description="ISO-8601; runs recorded before")] = None,
    orchestrator: Orchestrator | None = None,
    fingerprint: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    if cursor is not None and not is_run_id(cursor):
        raise InvalidInput("cursor: not a cursor this API returned; pass the next_cursor of a previous page")
    readable = acc.readable_flows(request)
    if readable is not None and flow_id is not None and flow_id not in readable:
        return {"items": [], "next_cursor": None}
    query = RunQuery(
        flow_id=flow_id,
        status=_statuses(status),
        orchestrator=orchestrator,
        q=q or None,
        since=utc_param("since", since),
        until=utc_param("until", until),
        fingerprint=fingerprint,
        flows=tuple(sorted(readable)) if readable is not None and flow_id is None else None,
    )
    b.reap_due()
    page = b.store.list_runs(query, limit=limit, cursor=cursor)
    return {"items": [run_json(r, base=_base(request)) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/flows", summary="The flow ids that have runs, sorted (for the UI's flow filter)")
def list_flows(request: Request, b: BackendDep, acc: AccessDep) -> dict[str, Any]:
    flows = b.store.list_flows()
    readable = acc.readable_flows(request)
    if readable is not None:
        flows = [f for f in flows if f in readable]
    return {"items": flows}


@router.get("/lookup", summary="Find our run id from the orchestrator's own ids (for links from Airflow/Prefect)")
def lookup(
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    orchestrator: Orchestrator,
    flow_id: Annotated[str, Query(min_length=1, max_length=250)],
    run_key: Annotated[str, Query(min_length=1, max_length=250)],
) -> dict[str, Any]:
    run = b.store.find_run(orchestrator, flow_id, run_key)
    if run is None:
        raise RunNotFound(f"no {orchestrator} run {run_key!r} of {flow_id!r} has been recorded")
    try:
        acc.check_flow(request, run.flow_id)
    except Exception:
        raise RunNotFound(f"no {orchestrator} run {run_key!r} of {flow_id!r} has been recorded") from None
    return {"run_id": run.run_id, "status": run.status, "root_step_id": run.root_step_id}


def _base(request: Request) -> str:
    """Where this app is mounted ("" standalone, "/rundossier" inside Airflow): links stay correct."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def readable_run(request: Request, b: Backend, acc: Access, run_id: str) -> Run:
    """The run, if it exists and the caller may read its flow (404 otherwise, never 403: the
    existence of a run in a flow one cannot read is not disclosed)."""
    b.reap_due()
    run = b.store.get_run(run_id)
    try:
        acc.check_flow(request, run.flow_id)
    except Exception:
        raise RunNotFound(f"no run with id {run_id!r}") from None
    return run


@router.get("/runs/{run_id}", summary="One run with its steps, events and dossier")
def get_run(run_id: str, request: Request, b: BackendDep, acc: AccessDep) -> dict[str, Any]:
    run = readable_run(request, b, acc, run_id)
    steps = b.store.list_steps(run.run_id)
    events = b.store.list_events(run.run_id)
    data = run_json(run, base=_base(request))
    data["steps"] = [step_json(s) for s in steps]
    data["events"] = [event_json(e) for e in events]
    data["dossier"] = _dossier(request, b, acc, run)
    readable = acc.readable_flows(request)
    data["children"] = [
        run_json(c, base=_base(request))
        for c in child_runs(b.store, run)
        if readable is None or c.flow_id in readable
    ]
    return data


def _dossier(request: Request, b: Backend, acc: Access, run: Run) -> dict[str, Any] | None:
    """The run's dossier (compared with the flow's last successful run) and its failure group.
    A fault here is logged and leaves the dossier out: it never hides the run."""
    from rundossier.core.dossier import dossier_json, group_json, merge_groups

    try:
        data = dossier_json(run_dossier(b.store, run))
        data["group"] = None
        if run.fingerprint:
            readable = acc.readable_flows(request)
            flows = tuple(sorted(readable)) if readable is not None else None
            page = b.store.failure_groups(GroupQuery(fingerprint=run.fingerprint, flows=flows))
            groups = merge_groups(page.order, page.counts, page.rows)
            data["group"] = group_json(groups[0]) if groups else None
        return data
    except Exception as exc:  # noqa: BLE001 - the run must show even if its dossier cannot be built
        log.warning("rundossier could not build the dossier of %s: %s: %s", run.run_id, type(exc).__name__, exc)
        return None


def _attachment(trace: TraceText) -> PlainTextResponse:
    # the filename is built from a validated run id only: no quotes, no newlines, no slashes
    return PlainTextResponse(
        trace.text,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{trace.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/runs/{run_id}/trace",
    summary="Download the run's root-cause trace",
    response_class=PlainTextResponse,
    responses=TRACE_ERRORS,
)
def get_run_trace(run_id: str, request: Request, b: BackendDep, acc: AccessDep) -> PlainTextResponse:
    readable_run(request, b, acc, run_id)
    return _attachment(run_trace(b.store, b.blobs, run_id))


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/trace",
    summary="Download one step's trace (latest try unless `try` is given)",
    response_class=PlainTextResponse,
    responses=TRACE_ERRORS,
)
def get_step_trace(
    run_id: str,
    step_id: str,
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    try_number: TryNumber = None,
) -> PlainTextResponse:
    readable_run(request, b, acc, run_id)
    return _attachment(step_trace(b.store, b.blobs, run_id, step_id, try_number))


@router.get(
    "/runs/{run_id}/trace.json",
    summary="The run's root-cause trace as a structured document (exception chain, frames, log tail)",
    responses=TRACE_ERRORS,
)
def get_run_trace_doc(run_id: str, request: Request, b: BackendDep, acc: AccessDep) -> dict[str, Any]:
    readable_run(request, b, acc, run_id)
    return run_trace_doc(b.store, b.blobs, run_id)


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/trace.json",
    summary="One step's trace as a structured document (latest try unless `try` is given)",
    responses=TRACE_ERRORS,
)
def get_step_trace_doc(
    run_id: str,
    step_id: str,
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    try_number: TryNumber = None,
) -> dict[str, Any]:
    readable_run(request, b, acc, run_id)
    return step_trace_doc(b.store, b.blobs, run_id, step_id, try_number)


def _step(b: Backend, run_id: str, step_id: str, try_number: int | None) -> Step:
    step = b.store.get_step(run_id, step_id, try_number)
    if step is None:
        raise TraceNotFound(f"run {run_id} has no step {step_id!r}" + (f" try {try_number}" if try_number else ""))
    return step


@router.get("/runs/{run_id}/steps/{step_id:path}/logs", summary="A page of a step's log, with search")
def get_step_logs(
    run_id: str,
    step_id: str,
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    stream: StreamName = "all",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=5000)] = 500,
    q: Annotated[str | None, Query(max_length=200)] = None,
    try_number: TryNumber = None,
) -> dict[str, Any]:
    """A page of the log (lines numbered from 1 after the stream filter; `matches` are the numbers
    of every line containing `q`). While the step runs, `live` is true and the lines are those its
    worker last published (every few seconds): ask again for more."""
    run = readable_run(request, b, acc, run_id)
    step = _step(b, run_id, step_id, try_number)
    source = step_log_source(b.blobs, run, step)
    result = log_page(source.lines(), stream=stream, page=page, page_size=page_size, q=q or None)
    return {
        "run_id": run_id,
        "step_id": step.step_id,
        "try_number": step.try_number,
        "status": step.status,
        "available": source.available,
        "reason": source.reason,
        "live": source.live,
        "snapshot_at": _iso_ts(source.snapshot_ts),
        "stream": stream,
        "page": result.page,
        "page_size": result.page_size,
        "total": result.total,
        "pages": max(1, -(-result.total // result.page_size)),
        "counts": {"stdout": step.log_lines_stdout, "stderr": step.log_lines_stderr, **result.counts},
        "lines": result.lines,
        "q": q,
        "matches": result.matches,
        "matches_truncated": result.matches_truncated,
    }


def _iso_ts(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@router.get("/runs/{run_id}/steps/{step_id:path}/logs/download", summary="A step's whole log as a text file")
def download_step_logs(
    run_id: str,
    step_id: str,
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    stream: StreamName = "all",
    try_number: TryNumber = None,
) -> StreamingResponse:
    run = readable_run(request, b, acc, run_id)
    step = _step(b, run_id, step_id, try_number)
    source: StepLogSource = step_log_source(b.blobs, run, step)
    if not source.available:
        if run.blobs_expired:
            raise TraceExpired(source.reason or "log expired by retention")
        raise TraceNotFound(source.reason or "no log")

    def body() -> Iterator[bytes]:
        for line in source.lines():
            if stream == "all" or line.stream == stream:
                yield (format_line(line) + "\n").encode("utf-8")

    filename = f"{run_id}_step_{step.try_number}_log.txt"
    return StreamingResponse(
        body(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


__all__ = ["router", "backend", "access", "readable_run"]
