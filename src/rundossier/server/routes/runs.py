"""Routes for runs: the list, the flows, a lookup by the orchestrator's ids, and one run's detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from rundossier.core.ids import is_run_id
from rundossier.errors import InvalidInput, RunNotFound
from rundossier.read.models import DossierSteps, Flows, Lookup, Orchestrator, RunDetail, RunPage
from rundossier.server.deps import TIME_FORMS, TIME_MAX, AccessDep, ReaderDep, base, readable_run, statuses, time_param
from rundossier.storage.db import MAX_PAGE, RunQuery

router = APIRouter(prefix="/api", tags=["runs"])


def _page(page: RunPage) -> Response:
    # the runs list is the API's hot path: the Reader's models are serialized once, not dumped and
    # validated again against the response_model (FastAPI's way, which cost ~1 ms per page of 50)
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/runs", summary="Runs, newest first, with filters and keyset pagination", response_model=RunPage)
def list_runs(
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    flow_id: Annotated[str | None, Query(max_length=250)] = None,
    status: Annotated[list[str] | None, Query(description="one or more statuses, comma-separated or repeated")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="text in the flow id, run key, error type or error message (any case)"),
    ] = None,
    since: Annotated[
        str | None, Query(max_length=TIME_MAX, description=f"runs recorded at or after: {TIME_FORMS}")
    ] = None,
    until: Annotated[str | None, Query(max_length=TIME_MAX, description=f"runs recorded before: {TIME_FORMS}")] = None,
    orchestrator: Orchestrator | None = None,
    fingerprint: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    if cursor is not None and not is_run_id(cursor):
        raise InvalidInput("cursor: not a cursor this API returned; pass the next_cursor of a previous page")
    readable = acc.readable_flows(request)
    if readable is not None and flow_id is not None and flow_id not in readable:
        return _page(RunPage(items=[], next_cursor=None))
    query = RunQuery(
        flow_id=flow_id,
        status=statuses(status),
        orchestrator=orchestrator,
        q=q or None,
        since=time_param("since", since),
        until=time_param("until", until),
        fingerprint=fingerprint,
        flows=tuple(sorted(readable)) if readable is not None and flow_id is None else None,
    )
    return _page(reader.runs(query, limit=limit, cursor=cursor, base=base(request)))


@router.get("/flows", summary="The flow ids that have runs, sorted (for the UI's flow filter)", response_model=Flows)
def list_flows(request: Request, reader: ReaderDep, acc: AccessDep) -> Flows:
    flows = reader.flows()
    readable = acc.readable_flows(request)
    if readable is not None:
        flows = [f for f in flows if f in readable]
    return Flows(items=flows)


@router.get(
    "/lookup",
    summary="Find our run id from the orchestrator's own ids (for links from Airflow/Prefect)",
    response_model=Lookup,
)
def lookup(
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    orchestrator: Orchestrator,
    flow_id: Annotated[str, Query(min_length=1, max_length=250)],
    run_key: Annotated[str, Query(min_length=1, max_length=250)],
) -> Lookup:
    missing = RunNotFound(f"no {orchestrator} run {run_key!r} of {flow_id!r} has been recorded")
    run = reader.find_run(orchestrator, flow_id, run_key)
    if run is None:
        raise missing
    try:
        acc.check_flow(request, run.flow_id)
    except Exception:  # an access policy refuses in its own way; the run is not disclosed
        raise missing from None
    return Lookup(run_id=run.run_id, status=run.status, root_step_id=run.root_step_id)


@router.get("/runs/{run_id}", summary="One run with its steps, events and dossier", response_model=RunDetail)
def get_run(
    run_id: str,
    request: Request,
    reader: ReaderDep,
    acc: AccessDep,
    dossier_steps: Annotated[
        DossierSteps,
        Query(
            description="`failed`: the dossier's per-step timing (`dossier.steps`) of the failed step only, "
            "not of every step (what the run page asks for)"
        ),
    ] = "all",
) -> Response:
    run = readable_run(request, reader, acc, run_id)
    detail = reader.run_detail(run, flows=acc.readable_flows(request), base=base(request), dossier_steps=dossier_steps)
    return Response(detail.model_dump_json(), media_type="application/json")  # serialized once, as `_page`


__all__ = ["router"]
