"""Route for failure groups: `GET /api/failures`, failures grouped by fingerprint across runs and flows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from rundossier.core.dossier import group_json, merge_groups
from rundossier.server.routes_runs import AccessDep, BackendDep, Orchestrator, utc_param
from rundossier.storage.db import GroupQuery
from rundossier.storage.db.failuregroups import MAX_GROUPS

router = APIRouter(prefix="/api", tags=["failures"])


@router.get("/failures", summary="Failure groups by fingerprint: count, first and last seen, flows, latest run")
def list_failures(
    request: Request,
    b: BackendDep,
    acc: AccessDep,
    flow_id: Annotated[str | None, Query(max_length=250)] = None,
    since: Annotated[
        datetime | None, Query(description="ISO-8601; counts failures from the UTC day that contains it")
    ] = None,
    orchestrator: Orchestrator | None = None,
    sort: Literal["last_seen", "count"] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> dict[str, Any]:
    since = utc_param("since", since)
    readable = acc.readable_flows(request)
    query = GroupQuery(
        flow_id=flow_id,
        orchestrator=orchestrator,
        since=since,
        flows=tuple(sorted(readable)) if readable is not None else None,
        sort=sort,
        limit=limit,
    )
    page = b.store.failure_groups(query)
    groups = merge_groups(page.order, page.counts, page.rows)
    return {
        "items": [group_json(g) for g in groups],
        "counted_since": f"{page.counted_since}T00:00:00Z" if page.counted_since else None,
    }


__all__ = ["router"]
