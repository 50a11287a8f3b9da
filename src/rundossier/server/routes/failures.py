"""Routes for failure groups: failures grouped by fingerprint across runs and flows.

    GET  /api/failures                          groups with counts, trend, first/last seen, flows, state
    POST /api/failures/{fingerprint}/resolve    mark a group resolved (a failure after it: a regression)
    POST /api/failures/{fingerprint}/reopen     forget that it was resolved

Resolving and reopening call the access policy's `check_manage(request)` (the Airflow integration
makes that an admin check) and need the API token when one is set, as every route does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request

from rundossier.read.models import FailureGroups, FailureState, Orchestrator
from rundossier.server.deps import TIME_FORMS, TIME_MAX, AccessDep, ReaderDep, time_param
from rundossier.server.errors import error_doc
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
        Query(
            max_length=TIME_MAX,
            description=f"counts failed runs created from the UTC day that contains it: {TIME_FORMS}",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            max_length=TIME_MAX,
            description=f"counts failed runs created up to the end of the UTC day that contains it: {TIME_FORMS}",
        ),
    ] = None,
    orchestrator: Orchestrator | None = None,
    failure_class: Annotated[
        str | None, Query(max_length=40, description="only groups whose latest failure has this class")
    ] = None,
    sort: Literal["last_seen", "count"] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> FailureGroups:
    readable = acc.readable_flows(request)
    query = GroupQuery(
        flow_id=flow_id,
        orchestrator=orchestrator,
        failure_class=failure_class,
        until=time_param("until", until),
        since=time_param("since", since),
        flows=tuple(sorted(readable)) if readable is not None else None,
        sort=sort,
        limit=limit,
    )
    return reader.failure_groups(query)


Fingerprint = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9a-zA-Z_-]+$")]
STATE_ERRORS: dict[int | str, dict[str, Any]] = {404: error_doc("no failure of a readable flow has this fingerprint")}


def _change(request: Request, reader: ReaderDep, acc: AccessDep, fingerprint: str, *, resolve: bool) -> FailureState:
    request.app.state.access.check_manage(request)
    readable = acc.readable_flows(request)
    missing = HTTPException(404, f"no failure group has fingerprint {fingerprint!r}")
    if (
        readable is not None
        and not reader.failure_groups(GroupQuery(fingerprint=fingerprint, flows=tuple(sorted(readable)), limit=1)).items
    ):
        raise missing
    state = reader.failure_state(fingerprint, resolve=resolve)
    if state is None:
        raise missing
    return state


@router.post(
    "/failures/{fingerprint}/resolve",
    summary="Mark a failure group resolved: a failure of it after now shows it as a regression",
    response_model=FailureState,
    responses=STATE_ERRORS,
)
def resolve_failure(fingerprint: Fingerprint, request: Request, reader: ReaderDep, acc: AccessDep) -> FailureState:
    return _change(request, reader, acc, fingerprint, resolve=True)


@router.post(
    "/failures/{fingerprint}/reopen",
    summary="Reopen a failure group marked resolved",
    response_model=FailureState,
    responses=STATE_ERRORS,
)
def reopen_failure(fingerprint: Fingerprint, request: Request, reader: ReaderDep, acc: AccessDep) -> FailureState:
    return _change(request, reader, acc, fingerprint, resolve=False)


__all__ = ["router"]
