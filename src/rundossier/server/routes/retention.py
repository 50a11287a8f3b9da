"""Routes for retention: the overview, setting and removing rules, and running a sweep.

    GET    /api/retention                       rules, each flow's effective policy and why, what a sweep would remove
    PUT    /api/retention/{pattern}             set a rule (exact flow id, glob, or "*"); body: keep_days, keep_last,
                                                blob_days (a missing or null limit is inherited; 0 means no limit)
    DELETE /api/retention/{pattern}             remove a rule
    POST   /api/retention/sweep?dry_run=        run a sweep (or count what it would remove); returns its report

Changing rules and sweeping call the access policy's `check_manage(request)` when it has one (the
Airflow integration makes that an admin check); reading is filtered to the flows the caller may read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rundossier.core.retention.policy import MAX_DAYS, MAX_PATTERN, MAX_RUNS, PolicySet, Rule
from rundossier.read.models import RetentionOverview, RuleRemoved, RuleSet, SweepOut
from rundossier.retention import sweep as run_sweep
from rundossier.retention import sweep_orphans
from rundossier.retention.overview import overview
from rundossier.retention.sweep import DEFAULT_BATCH, MAX_BATCH, flow_counts, load_rules
from rundossier.server.deps import AccessDep, BackendsDep
from rundossier.server.errors import error_body, error_doc
from rundossier.storage.spool import Spool

router = APIRouter(prefix="/api/retention", tags=["retention"])

Days = Annotated[int, Field(ge=0, le=MAX_DAYS, strict=True)]
Runs = Annotated[int, Field(ge=0, le=MAX_RUNS, strict=True)]


class PolicyBody(BaseModel):
    """A rule's limits. Missing or null: inherited from the default rule "*" (or the built-in); 0: no limit."""

    model_config = ConfigDict(extra="forbid")

    keep_days: Days | None = Field(default=None, description="delete finished runs that ended more than N days ago")
    keep_last: Runs | None = Field(default=None, description="keep only the newest K finished runs of the flow")
    blob_days: Days | None = Field(default=None, description="expire traces and logs after N days (the row stays)")


def _manage(request: Request) -> None:
    request.app.state.access.check_manage(request)


@router.get(
    "",
    summary="Retention rules, each flow's effective policy and why, and what a sweep would remove",
    response_model=RetentionOverview,
)
def get_retention(
    request: Request,
    b: BackendsDep,
    acc: AccessDep,
    preview: Annotated[bool, Query(description="count what a sweep would remove now")] = True,
    flow_id: Annotated[list[str] | None, Query(max_length=MAX_PATTERN, description="only these flows")] = None,
) -> RetentionOverview:
    readable = acc.readable_flows(request)
    flows: set[str] | None = set(flow_id) if flow_id else None
    if readable is not None:
        flows = set(readable) if flows is None else flows & set(readable)
    data = overview(b.store, b.blobs, with_preview=preview, cap_enabled=b.settings.retention_cap, flows=flows)
    if readable is not None:
        for rule in data["rules"]:
            rule["flows"] = [f for f in rule["flows"] if f in readable]
    return RetentionOverview.model_validate(data)


@router.put(
    "/{pattern:path}",
    summary="Set the rule for a flow id, a glob such as finance_*, or * (the default)",
    response_model=RuleSet,
)
def put_policy(pattern: str, body: PolicyBody, request: Request, b: BackendsDep) -> RuleSet:
    _manage(request)
    rule = Rule(pattern, **body.model_dump(), source="api")  # InvalidInput -> 422 with the error shape
    b.store.set_policy(pattern, **rule.limits(), source="api")
    stored = next(Rule.from_row(r) for r in b.store.list_policies() if r.flow_pattern == pattern)
    policies = PolicySet(load_rules(b.store))
    flows = [f for f, _ in flow_counts(b.store) if policies.choose(f)[0] == stored]
    return RuleSet.model_validate({"rule": {**stored.to_json(), "flows": flows}})


@router.delete(
    "/{pattern:path}",
    summary="Remove a rule (its flows fall back to the next matching rule)",
    response_model=RuleRemoved,
    responses={404: error_doc("no rule with this pattern")},
)
def delete_policy(pattern: str, request: Request, b: BackendsDep) -> RuleRemoved | JSONResponse:
    _manage(request)
    if not b.store.delete_policy(pattern):
        return JSONResponse(error_body("rule_not_found", f"no retention rule {pattern!r}"), status_code=404)
    return RuleRemoved(removed=pattern)


STOPPED = {
    "description": "the sweep stopped (the store or storage failed): the error shape, with the report so far",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error", "report"],
                "properties": {"error": {"type": "object"}, "report": {"type": "object"}},
            }
        }
    },
}


@router.post(
    "/sweep",
    summary="Run a retention sweep (or, with dry_run=true, report what it would remove)",
    response_model=SweepOut,
    responses={503: STOPPED},
)
def post_sweep(
    request: Request,
    b: BackendsDep,
    dry_run: bool = False,
    orphans: Annotated[bool, Query(description="then remove blobs no row points at")] = False,
    orphan_grace_s: Annotated[int, Query(ge=0, le=365 * 86400)] = 86400,
    batch_size: Annotated[int, Query(ge=1, le=MAX_BATCH)] = DEFAULT_BATCH,
    flow_id: Annotated[list[str] | None, Query(max_length=MAX_PATTERN, description="only these flows")] = None,
) -> SweepOut | JSONResponse:
    _manage(request)
    report = run_sweep(b.store, b.blobs, dry_run=dry_run, batch_size=batch_size, flows=flow_id)
    if orphans and report.complete:
        report.orphans = sweep_orphans(
            b.store,
            b.blobs,
            dry_run=dry_run,
            grace=timedelta(seconds=orphan_grace_s),
            spool=Spool(b.settings.spool_dir),
        )
    data = report.to_json()
    stopped = data["error"] or (data["orphans"] is not None and data["orphans"]["error"])
    if stopped:
        return JSONResponse({**error_body(stopped["type"], stopped["message"]), "report": data}, status_code=503)
    return SweepOut.model_validate(data)


__all__ = ["router", "PolicyBody"]
