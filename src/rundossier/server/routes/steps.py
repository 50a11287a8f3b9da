"""Routes for what a run and its steps left behind: traces (text and structured), step logs and
their download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from rundossier.core.logs import MinLevel, format_line
from rundossier.errors import TraceExpired, TraceNotFound
from rundossier.read.models import LogPageOut, StreamName, TraceDocument
from rundossier.read.reader import TraceText
from rundossier.server.deps import AccessDep, ReaderDep, TryNumber, readable_run
from rundossier.server.errors import error_doc

router = APIRouter(prefix="/api", tags=["runs"])

TRACE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: error_doc("no such run or step, or no trace captured (the message says why)"),
    410: error_doc("expired by retention"),
    500: error_doc("the stored trace is damaged (`blob_corrupt`, naming the blob), or an unexpected error"),
}
TEXT = {"text/plain": {"schema": {"type": "string"}}}
TRACE_TEXT: dict[int | str, dict[str, Any]] = {200: {"description": "the trace as text", "content": TEXT}}
LOG_TEXT: dict[int | str, dict[str, Any]] = {200: {"description": "the log as text", "content": TEXT}}


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


def _document(doc: dict[str, Any]) -> JSONResponse:
    # the document goes out as it was stored (documented by TraceDocument, not rebuilt from it)
    return JSONResponse(doc)


@router.get(
    "/runs/{run_id}/trace",
    summary="Download the run's root-cause trace",
    response_class=PlainTextResponse,
    responses={**TRACE_TEXT, **TRACE_ERRORS},
)
def get_run_trace(run_id: str, request: Request, reader: ReaderDep, acc: AccessDep) -> PlainTextResponse:
    readable_run(request, reader, acc, run_id)
    return _attachment(reader.run_trace(run_id))


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/trace",
    summary="Download one step's trace (latest try unless `try` is given)",
    response_class=PlainTextResponse,
    responses={**TRACE_TEXT, **TRACE_ERRORS},
)
def get_step_trace(
    run_id: str, step_id: str, request: Request, reader: ReaderDep, acc: AccessDep, try_number: TryNumber = None
) -> PlainTextResponse:
    readable_run(request, reader, acc, run_id)
    return _attachment(reader.step_trace(run_id, step_id, try_number))


@router.get(
    "/runs/{run_id}/trace.json",
    summary="The run's root-cause trace as a structured document (exception chain, frames, log tail)",
    response_model=TraceDocument,
    responses=TRACE_ERRORS,
)
def get_run_trace_doc(run_id: str, request: Request, reader: ReaderDep, acc: AccessDep) -> JSONResponse:
    readable_run(request, reader, acc, run_id)
    return _document(reader.run_trace_doc(run_id))


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/trace.json",
    summary="One step's trace as a structured document (latest try unless `try` is given)",
    response_model=TraceDocument,
    responses=TRACE_ERRORS,
)
def get_step_trace_doc(
    run_id: str, step_id: str, request: Request, reader: ReaderDep, acc: AccessDep, try_number: TryNumber = None
) -> JSONResponse:
    readable_run(request, reader, acc, run_id)
    return _document(reader.step_trace_doc(run_id, step_id, try_number))


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/logs", summary="A page of a step's log, with search", response_model=LogPageOut
)
def get_step_logs(
    run_id: str,
    step_id: str,
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    stream: StreamName = "all",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=5000)] = 500,
    q: Annotated[str | None, Query(max_length=200)] = None,
    level: Annotated[
        MinLevel | None,
        Query(description="only lines of this level or worse (no level: stderr counts as warning, stdout as info)"),
    ] = None,
    try_number: TryNumber = None,
    last: Annotated[
        bool, Query(description="the last page, whatever its number (`page` is ignored): what Follow asks for")
    ] = False,
) -> LogPageOut:
    """A page of the log (lines numbered from 1 after the stream and level filters; `matches` are
    the numbers of every line containing `q`). While the step runs, `live` is true and the lines
    are those its worker last published (every few seconds): ask again for more."""
    run = readable_run(request, reader, acc, run_id)
    step = reader.step(run_id, step_id, try_number)
    return reader.log_page(run, step, stream=stream, page=page, page_size=page_size, q=q, level=level, last=last)


@router.get(
    "/runs/{run_id}/steps/{step_id:path}/logs/download",
    summary="A step's whole log as a text file",
    response_class=StreamingResponse,
    responses={**LOG_TEXT, **TRACE_ERRORS},
)
def download_step_logs(
    run_id: str,
    step_id: str,
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    stream: StreamName = "all",
    try_number: TryNumber = None,
) -> StreamingResponse:
    run = readable_run(request, reader, acc, run_id)
    step = reader.step(run_id, step_id, try_number)
    source = reader.log_source(run, step)
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


__all__ = ["router"]
