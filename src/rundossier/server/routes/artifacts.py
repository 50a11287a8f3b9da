"""Routes for the artifact manifest: a run's artifacts, and who wrote and read one URI."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from rundossier.read.models import ArtifactPage
from rundossier.server.deps import AccessDep, ReaderDep, readable_run
from rundossier.storage.db import MAX_PAGE

router = APIRouter(prefix="/api", tags=["artifacts"])

Cursor = Annotated[str | None, Query(max_length=40, description="the next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def _page(page: ArtifactPage) -> Response:
    return Response(page.model_dump_json(), media_type="application/json")


@router.get(
    "/runs/{run_id}/artifacts",
    summary="What the run's steps read and wrote, in recording order, paged; inputs name their producer",
    response_model=ArtifactPage,
)
def run_artifacts(
    run_id: str,
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    step_id: Annotated[str | None, Query(max_length=250)] = None,
    role: Literal["input", "output"] | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    run = readable_run(request, reader, acc, run_id)
    flows = acc.readable_flows(request)
    return _page(reader.run_artifacts(run, limit=limit, cursor=cursor, step_id=step_id, role=role, flows=flows))


@router.get(
    "/artifacts",
    summary="Who wrote and who read one URI, newest first, paged",
    response_model=ArtifactPage,
)
def uri_artifacts(
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    uri: Annotated[str, Query(min_length=1, max_length=8000)],
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    return _page(reader.uri_artifacts(uri, limit=limit, cursor=cursor, flows=acc.readable_flows(request)))


__all__ = ["router"]
