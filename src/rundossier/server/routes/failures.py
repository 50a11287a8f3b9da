"""Route for failure groups: `GET /api/failures`, failures grouped by fingerprint across runs and flows."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from rundossier.read.models import FailureGroups, Orchestrator
from rundossier.server.deps import TIME_FORMS, TIME_MAX, AccessDep, ReaderDep, time_param
from rundossier.storage.db import GroupQuery
from rundossier.storage.db.failuregroups import MAX_GROUPS

router = APIRouter(prefix="/api", tags=["failures"])


@router.get(
    "/failures",
    summary="Failure groups by fingerprint: count, first and last seen, flows, latest run",
    response_model=FailureGroups,
)
def list_failures(
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    flow_id: Annotated[str | None, Query(max_length=250)] = None,
    since: Annotated[
        str | None,
        Query(max_length=TIME_MAX, description=f"counts failures from the UTC day that contains it: {TIME_FORMS}"),
    ] = None,
    orchestrator: Orchestrator | None = None,
    sort: Literal["last_seen", "count"] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> FailureGroups:
    readable = acc.readable_flows(request)
    query = GroupQuery(
        flow_id=flow_id,
        orchestrator=orchestrator,
        since=time_param("since", since),
        flows=tuple(sorted(readable)) if readable is not None else None,
        sort=sort,
        limit=limit,
    )
    return reader.failure_groups(query)


__all__ = ["router"]
