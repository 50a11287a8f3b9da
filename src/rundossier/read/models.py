"""What the Reader returns: pydantic models that are also the API's response models.

The JSON on the wire is the API contract (field names and order, nulls, ISO-8601 UTC times with
`Z`): the field order below is the order clients see. The CLI's `--json` prints the same models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from rundossier.core.dossier import Dossier
from rundossier.core.dossier.groups import FailureGroup, GroupState, group_state
from rundossier.core.logs import MinLevel
from rundossier.storage.db import Event, Run, Step
from rundossier.storage.db.models import Artifact

Orchestrator = Literal["airflow", "prefect", "python"]
StreamName = Literal["stdout", "stderr", "all"]


class ErrorInfo(BaseModel):
    """The one error shape of a run, step or failure group; `trace_url` only when a trace exists."""

    type: str | None
    message: str | None
    trace_url: str | None = Field(default=None, description="present only when a trace was captured")

    @model_serializer(mode="wrap")
    def _without_missing_url(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("trace_url") is None:
            data.pop("trace_url", None)
        return data

    @classmethod
    def of(cls, error_type: str | None, message: str | None, trace_url: str | None = None) -> ErrorInfo | None:
        if error_type is None and message is None:
            return None
        return cls(type=error_type, message=message, trace_url=trace_url)


class RunOut(BaseModel):
    """One run as the list, the detail and the live stream show it."""

    run_id: str
    orchestrator: str
    flow_id: str
    run_key: str
    parent_run_id: str | None
    status: str
    attempt: int
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: ErrorInfo | None
    failure_class: str | None
    fingerprint: str | None
    root_step_id: str | None
    root_try_number: int | None
    trace_bytes: int | None
    spooled: bool
    blobs_expired: bool
    blobs_expired_at: datetime | None
    host: str | None
    agent: str | None
    traceparent: str | None
    #: the OpenTelemetry trace the run belongs to (32 hex digits; RUNDOSSIER_OTEL on)
    trace_id: str | None = None
    params_hash: str | None
    code_version: str | None
    tags: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None

    @staticmethod
    def fields_of(run: Run, base: str = "") -> dict[str, Any]:
        trace_url = f"{base}/api/runs/{run.run_id}/trace" if run.trace_uri else None
        return {
            "run_id": run.run_id,
            "orchestrator": run.orchestrator,
            "flow_id": run.flow_id,
            "run_key": run.run_key,
            "parent_run_id": run.parent_run_id,
            "status": run.status,
            "attempt": run.attempt,
            "queued_at": run.queued_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration_ms": run.duration_ms,
            "error": ErrorInfo.of(run.error_type, run.error_message, trace_url),
            "failure_class": run.failure_class,
            "fingerprint": run.fingerprint,
            "root_step_id": run.root_step_id,
            "root_try_number": run.root_try_number,
            "trace_bytes": run.trace_bytes,
            "spooled": run.spooled,
            "blobs_expired": run.blobs_expired,
            "blobs_expired_at": run.blobs_expired_at,
            "host": run.host,
            "agent": run.agent,
            "traceparent": run.traceparent,
            "trace_id": run.trace_id,
            "params_hash": run.params_hash,
            "code_version": run.code_version,
            "tags": run.tags or {},
            "created_at": run.created_at,
            "updated_at": run.updated_at,
        }

    @classmethod
    def of(cls, run: Run, base: str = "") -> RunOut:
        # built from a row the store already typed: construct, do not validate again (a page of runs
        # is the API's hot path)
        return cls.model_construct(**cls.fields_of(run, base))


class LogLineCounts(BaseModel):
    stdout: int
    stderr: int


class StepOut(BaseModel):
    """One try of one step."""

    run_id: str
    step_id: str
    try_number: int
    task_id: str | None
    map_index: int | None
    status: str
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: ErrorInfo | None
    fingerprint: str | None
    trace_bytes: int | None
    has_log: bool
    log_bytes: int | None
    log_lines: LogLineCounts
    first_output_at: datetime | None
    last_output_at: datetime | None
    upstream: list[str]
    host: str | None
    spooled: bool

    @classmethod
    def of(cls, step: Step, base: str = "") -> StepOut:
        return cls.model_validate(cls.data_of(step, base))

    @staticmethod
    def data_of(step: Any, base: str = "") -> dict[str, Any]:
        """A step try as plain data, from any row with a step's columns (an ORM Step, a Core row);
        a list of them is validated in one call by `STEPS_OUT` (a 1,000-step run in a few ms)."""
        trace_url = None
        if step.trace_uri:
            trace_url = (
                f"{base}/api/runs/{step.run_id}/steps/{quote(step.step_id, safe='')}/trace?try={step.try_number}"
            )
        error = None
        if step.error_type is not None or step.error_message is not None:
            error = {"type": step.error_type, "message": step.error_message, "trace_url": trace_url}
        return {
            "run_id": step.run_id,
            "step_id": step.step_id,
            "try_number": step.try_number,
            "task_id": step.task_id,
            "map_index": step.map_index,
            "status": step.status,
            "queued_at": step.queued_at,
            "started_at": step.started_at,
            "finished_at": step.finished_at,
            "duration_ms": step.duration_ms,
            "error": error,
            "fingerprint": step.fingerprint,
            "trace_bytes": step.trace_bytes,
            "has_log": bool(step.log_uri),
            "log_bytes": step.log_bytes,
            "log_lines": {"stdout": step.log_lines_stdout, "stderr": step.log_lines_stderr},
            "first_output_at": step.first_output_at,
            "last_output_at": step.last_output_at,
            "upstream": step.upstream or [],
            "host": step.host,
            "spooled": step.spooled,
        }


#: a list of steps validated in one call (see `StepOut.data_of`)
STEPS_OUT: TypeAdapter[list[StepOut]] = TypeAdapter(list[StepOut])


class EventOut(BaseModel):
    """One entry of the run's ledger."""

    kind: str
    ts: datetime
    step_id: str | None
    try_number: int | None
    summary: str
    raw_ref: str | None
    data: dict[str, Any] | None

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls.model_construct(
            kind=event.kind,
            ts=event.ts,
            step_id=event.step_id,
            try_number=event.try_number,
            summary=event.summary,
            raw_ref=event.raw_ref,
            data=event.data,
        )


class ProducerOut(BaseModel):
    """The step try that wrote an input's URI last before it was read (lineage)."""

    run_id: str
    flow_id: str | None
    step_id: str | None
    try_number: int | None
    recorded_at: datetime


class ArtifactOut(BaseModel):
    """One artifact of a step try: a URI it read (`input`) or wrote (`output`)."""

    uri: str = Field(description="masked like any other text")
    role: Literal["input", "output"]
    run_id: str
    flow_id: str | None
    step_id: str | None
    try_number: int | None
    size: int | None
    checksum: str | None = Field(description='"sha256:...", "etag:...", "md5:..." or as given; null: unknown')
    kind: str | None
    present: bool | None = Field(description="false: the URI did not exist when recorded; null: not looked up")
    note: str | None = Field(description="why size or checksum are missing, when a lookup said so")
    producer: ProducerOut | None = Field(
        default=None, description="inputs only: the step that wrote this URI last before it was read"
    )
    recorded_at: datetime

    @classmethod
    def of(cls, a: Artifact, flow_id: str | None, producer: ProducerOut | None = None) -> ArtifactOut:
        return cls.model_construct(
            uri=a.uri,
            role=a.role,
            run_id=a.run_id,
            flow_id=flow_id,
            step_id=a.step_id,
            try_number=a.try_number,
            size=a.size,
            checksum=a.checksum,
            kind=a.kind,
            present=a.present,
            note=a.note,
            producer=producer,
            recorded_at=a.recorded_at,
        )


class ArtifactPage(BaseModel):
    """A page of artifacts; pass `next_cursor` as `cursor` for the next page (null: the last)."""

    items: list[ArtifactOut]
    next_cursor: str | None


class RunPage(BaseModel):
    """A page of runs, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[RunOut]
    next_cursor: str | None


class LatestFailure(BaseModel):
    run_id: str
    flow_id: str
    error: ErrorInfo | None


class FailureGroupOut(BaseModel):
    """One bug (one fingerprint) across runs and flows. `count`: the runs the runs list shows with
    this fingerprint and status failed or crashed, created in the window (a run once, whatever its tries)."""

    fingerprint: str
    count: int
    first_seen: datetime
    last_seen: datetime
    flows: list[str]
    orchestrators: list[str]
    failure_class: str | None
    latest: LatestFailure
    state: GroupState = Field(
        default="open",
        description="open; resolved (marked so, no failure since); regression (failed again after it was resolved)",
    )
    resolved_at: datetime | None = Field(default=None, description="when it was last marked resolved")
    trend: list[int] = Field(
        default_factory=list,
        description="failed runs per UTC day of their creation from the list's `trend_from` day (`trend_days` numbers)",
    )

    @classmethod
    def of(
        cls,
        g: FailureGroup,
        *,
        trend: list[int] | None = None,
        resolution: tuple[datetime, datetime | None] | None = None,
    ) -> FailureGroupOut:
        resolved_at = resolution[0] if resolution else None
        return cls.model_construct(
            state=group_state(resolved_at, resolution[1] if resolution else None),
            resolved_at=resolved_at,
            trend=trend or [],
            fingerprint=g.fingerprint,
            count=g.count,
            first_seen=g.first_seen,
            last_seen=g.last_seen,
            flows=list(g.flows),
            orchestrators=list(g.orchestrators),
            failure_class=g.failure_class,
            latest=LatestFailure.model_construct(
                run_id=g.latest_run_id, flow_id=g.latest_flow_id, error=ErrorInfo.of(g.error_type, g.error_message)
            ),
        )


class FailureGroups(BaseModel):
    items: list[FailureGroupOut]
    counted_since: str | None = Field(description="ISO-8601: the UTC day counts start from, when `since` was given")
    trend_from: str | None = Field(default=None, description="ISO-8601 day of each group's first `trend` number")
    trend_days: int = Field(default=0, description="how many days each group's `trend` covers")


class FailureState(BaseModel):
    """A failure group's resolution after `resolve` or `reopen`."""

    fingerprint: str
    state: GroupState
    resolved_at: datetime | None


class RunDossier(BaseModel):
    """The run's dossier (what failed, why, compared with the flow's last success) and its failure group."""

    model_config = ConfigDict(arbitrary_types_allowed=False)

    dossier: Dossier
    group: FailureGroupOut | None

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {**data["dossier"], "group": data["group"]}


class RunRecord(RunOut):
    """One run with its steps and its ledger."""

    steps: list[StepOut]
    events: list[EventOut]


#: how much of the dossier's per-step timing a run's detail carries
DossierSteps = Literal["all", "failed"]


class RunDetail(RunRecord):
    """One run with its steps, its ledger, its dossier (null when it could not be built) and its subflow runs."""

    dossier: RunDossier | None
    children: list[RunOut]
    #: the run's trace in the user's trace viewer (RUNDOSSIER_TRACE_URL_TEMPLATE and a trace id)
    trace_viewer_url: str | None = None


class RunShow(RunRecord):
    """What `rundossier show --json` prints: the run, its steps, its ledger and its dossier."""

    dossier: Dossier | None


class Lookup(BaseModel):
    run_id: str
    status: str
    root_step_id: str | None


class Flows(BaseModel):
    items: list[str]


class LogLineOut(BaseModel):
    n: int = Field(description="line number, from 1, after the stream filter")
    ts: float = Field(description="seconds since the epoch")
    stream: str
    level: str | None
    message: str


class LogPageOut(BaseModel):
    """A page of a step's log (lines numbered from 1 after the stream and level filters; `matches`
    are the numbers of every line containing `q`). While the step runs, `live` is true."""

    run_id: str
    step_id: str
    try_number: int
    status: str
    available: bool
    reason: str | None
    live: bool
    snapshot_at: str | None
    stream: StreamName
    page: int
    page_size: int
    total: int
    pages: int
    counts: dict[str, int]
    lines: list[LogLineOut]
    q: str | None
    matches: list[int]
    matches_truncated: bool
    total_exact: bool = Field(
        default=True,
        description="false when a filtered page was read by stopping once it was full: `total`, `pages` and "
        "(with `level`) `counts` are then lower bounds; ask with `last=true` for the last page",
    )
    level: MinLevel | None = Field(
        default=None,
        description="the level filter: only lines of this level or worse (a line without a level counts as "
        "a warning on stderr, info on stdout); `counts` and `total` are of those lines",
    )


class TraceFrame(BaseModel):
    filename: str
    lineno: int | None
    name: str
    line: str | None
    in_app: bool
    repeat: int


class TraceNode(BaseModel):
    """One exception of the chain (a group's members are chains of their own)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    frames: list[TraceFrame]
    omitted_frames: int
    notes: list[str]
    relation: str | None
    group: list[list[TraceNode]]
    omitted_exceptions: int


class TraceHeader(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str | None
    flow_id: str | None
    step_id: str | None
    try_number: int | None
    orchestrator: str | None
    host: str | None
    started_at: str | None
    failed_at: str | None
    extra: list[list[str]]


class TraceDocument(BaseModel):
    """A trace as a structured document (as stored: version 1)."""

    model_config = ConfigDict(extra="allow")

    version: int
    header: TraceHeader
    error_type: str | None
    error_message: str | None
    chain: list[TraceNode]
    traceback_text: str
    captured: bool
    reason: str | None
    log_tail: list[str]
    omitted_log_lines: int
    truncated: bool


class Health(BaseModel):
    status: Literal["ok"]


class About(BaseModel):
    version: str
    orchestrator_urls: dict[str, str] = Field(description="orchestrator -> its UI's root, relative to the page")


# -- retention (built from the dicts `rundossier.retention` reports; the field order is theirs) ---


class Limits(BaseModel):
    keep_days: int | None
    keep_last: int | None
    blob_days: int | None


class BuiltinPolicy(Limits):
    describe: str


class RetentionCap(BaseModel):
    enabled: bool


class RuleOut(BaseModel):
    """A stored rule (None: inherited) and the flows it decides."""

    flow_pattern: str
    kind: str
    keep_days: int | None
    keep_last: int | None
    blob_days: int | None
    source: str | None
    updated_at: str | None
    flows: list[str]


class WouldRemove(BaseModel):
    runs: int
    runs_expired: int
    steps: int
    events: int
    blobs: int
    bytes: int
    by_rule: dict[str, int]


class FlowRetention(BaseModel):
    """One flow's effective policy, the rule that chose it and why, and what a sweep would remove now."""

    flow_id: str
    runs: int
    policy: Limits
    describe: str
    rule: str | None
    rule_kind: str
    rule_source: str | None
    reason: str
    fields_from: dict[str, str]
    would_remove: WouldRemove | None


class RetentionPreview(BaseModel):
    computed_at: str | None
    complete: bool
    error: str | None
    totals: dict[str, int]


class RetentionOverview(BaseModel):
    builtin: BuiltinPolicy
    cap: RetentionCap
    rules: list[RuleOut]
    flows: list[FlowRetention]
    preview: RetentionPreview | None


class RuleSet(BaseModel):
    rule: RuleOut


class RuleRemoved(BaseModel):
    removed: str


class ProblemInfo(BaseModel):
    type: str
    message: str


class FlowSweep(BaseModel):
    model_config = ConfigDict(extra="allow")

    flow_id: str
    policy: Limits
    rule: str | None
    reason: str
    runs_scanned: int
    active_runs: int
    runs_removed: int
    runs_expired: int
    steps_removed: int
    events_removed: int
    blobs_removed: int
    bytes_removed: int
    foreign_blobs: int
    by_rule: dict[str, int]


class OrphanSweep(BaseModel):
    model_config = ConfigDict(extra="allow")

    dry_run: bool
    grace_s: float
    complete: bool
    error: ProblemInfo | None
    run_folders_scanned: int
    runs_without_row: int
    expired_runs_cleaned: int
    unreferenced_blobs: int
    blobs_removed: int
    bytes_removed: int
    skipped_recent: int
    skipped_active: int
    #: run folders left alone because rows waiting in the spool of the host that swept write for them
    skipped_spooled: int = 0
    unknown: int
    samples: list[str]


class SweepOut(BaseModel):
    """A sweep's account, per flow and in total; `complete` is false when it stopped on an error."""

    dry_run: bool
    complete: bool
    error: ProblemInfo | None
    now: str | None
    started_at: str | None
    finished_at: str | None
    duration_s: float
    totals: dict[str, int]
    flows: list[FlowSweep]
    orphans: OrphanSweep | None


__all__ = [
    "ArtifactOut",
    "ArtifactPage",
    "ProducerOut",
    "About",
    "BuiltinPolicy",
    "FlowRetention",
    "FlowSweep",
    "Limits",
    "OrphanSweep",
    "ProblemInfo",
    "RetentionOverview",
    "RetentionPreview",
    "RuleOut",
    "RuleRemoved",
    "RuleSet",
    "SweepOut",
    "WouldRemove",
    "ErrorInfo",
    "EventOut",
    "FailureGroupOut",
    "FailureGroups",
    "FailureState",
    "Flows",
    "Health",
    "LatestFailure",
    "LogLineOut",
    "LogPageOut",
    "Lookup",
    "Orchestrator",
    "RunDetail",
    "RunDossier",
    "RunOut",
    "RunRecord",
    "RunShow",
    "RunPage",
    "StepOut",
    "StreamName",
    "TraceDocument",
    "TraceFrame",
    "TraceHeader",
    "TraceNode",
]
