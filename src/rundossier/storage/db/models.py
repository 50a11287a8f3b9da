"""The run history tables: Run, Step, Event, Artifact, RetentionPolicy (SQLModel).

Keys and indexes serve the questions the API asks:
  - a run is unique on (orchestrator, flow_id, run_key): every write is an idempotent upsert;
  - run ids sort by creation time, so "newest first" and time ranges page on the primary key;
  - (flow_id, run_id) serves "newest runs of a flow", (status, run_id) "failed runs since T",
    (fingerprint, run_id) failure groups;
  - failure groups count failed runs through (fingerprint, run_id) and (status, run_id), so they
    agree with the runs list; rd_failure_group / rd_failure_day are still written as root causes
    are (the first says a fingerprint was seen, after retention removed its runs), not read for counts;
  - an artifact is found by its run (run_id, id: the run's manifest, paged) and by its URI
    (uri_key, recorded_at: who wrote and who read a URI, newest first; the key is a hash, as URIs
    can be longer than a btree entry allows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from rundossier.storage.db.types import UTCDateTime

#: Error messages kept on rows are bounded; the full text lives in the trace blob.
ERROR_MESSAGE_MAX = 4000
SUMMARY_MAX = 1000
#: the largest try number a row holds (an INTEGER column: 32 bits on PostgreSQL)
MAX_TRY = 2**31 - 1


#: the index failure groups read (see `failuregroups`): failed and crashed runs with a fingerprint
FAILED_INDEX_COLUMNS = ("flow_id", "fingerprint", "orchestrator", "run_id", "finished_at", "updated_at")
FAILED_INDEX_WHERE = "fingerprint IS NOT NULL AND status IN ('crashed', 'failed')"


def _dt(**kw: Any) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), **kw))


class Run(SQLModel, table=True):
    """One execution of a flow or DAG."""

    __tablename__ = "rd_run"
    __table_args__ = (
        UniqueConstraint("orchestrator", "flow_id", "run_key", name="uq_rd_run_key"),
        Index("ix_rd_run_flow", "flow_id", "run_id"),
        Index("ix_rd_run_status", "status", "run_id"),
        Index("ix_rd_run_fingerprint", "fingerprint", "run_id"),
        Index("ix_rd_run_orchestrator", "orchestrator", "run_id"),
        Index("ix_rd_run_updated", "updated_at"),
        # failure groups: one ordered pass over the failed runs, read from the index alone
        Index(
            "ix_rd_run_failed",
            *FAILED_INDEX_COLUMNS,
            postgresql_where=text(FAILED_INDEX_WHERE),
            sqlite_where=text(FAILED_INDEX_WHERE),
        ),
    )

    run_id: str = Field(sa_column=Column(String(30), primary_key=True))
    orchestrator: str = Field(sa_column=Column(String(16), nullable=False))
    flow_id: str = Field(sa_column=Column(String(250), nullable=False))
    run_key: str = Field(sa_column=Column(String(250), nullable=False))
    parent_run_id: str | None = Field(default=None, sa_column=Column(String(30)))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    attempt: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))
    queued_at: datetime | None = _dt()
    started_at: datetime | None = _dt()
    finished_at: datetime | None = _dt()
    duration_ms: int | None = None
    error_type: str | None = Field(default=None, sa_column=Column(String(200)))
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    failure_class: str | None = Field(default=None, sa_column=Column(String(40)))
    fingerprint: str | None = Field(default=None, sa_column=Column(String(32)))
    root_step_id: str | None = Field(default=None, sa_column=Column(String(250)))
    #: the try of `root_step_id` whose failure the run shows (a later failed try replaces it)
    root_try_number: int | None = None
    trace_uri: str | None = Field(default=None, sa_column=Column(Text))
    trace_bytes: int | None = None
    spooled: bool = False
    blobs_expired: bool = False
    blobs_expired_at: datetime | None = _dt()
    host: str | None = Field(default=None, sa_column=Column(String(250)))
    agent: str | None = Field(default=None, sa_column=Column(String(250)))
    #: the W3C traceparent of the run's span (RUNDOSSIER_OTEL on): steps recorded by any process
    #: are its children; `trace_id` is its trace (the joined traceparent's, or a new one)
    traceparent: str | None = Field(default=None, sa_column=Column(String(60)))
    trace_id: str | None = Field(default=None, sa_column=Column(String(32)))
    #: when the process recording this running run last said it was alive, and until when that
    #: holds: past it the run is crashed (None: nobody holds a lease, e.g. Airflow's scheduler)
    heartbeat_at: datetime | None = _dt()
    lease_until: datetime | None = _dt()
    #: the process that holds the lease ("host/pid/token")
    lease_holder: str | None = Field(default=None, sa_column=Column(String(100)))
    params_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    code_version: str | None = Field(default=None, sa_column=Column(String(100)))
    tags: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime | None = _dt(nullable=False)
    updated_at: datetime | None = _dt(nullable=False)


class Step(SQLModel, table=True):
    """One try of one task inside a run."""

    __tablename__ = "rd_step"
    __table_args__ = (Index("ix_rd_step_fingerprint", "fingerprint"),)

    run_id: str = Field(sa_column=Column(String(30), primary_key=True))
    step_id: str = Field(sa_column=Column(String(250), primary_key=True))
    try_number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    task_id: str | None = Field(default=None, sa_column=Column(String(250)))
    map_index: int | None = None
    status: str = Field(sa_column=Column(String(20), nullable=False))
    queued_at: datetime | None = _dt()
    started_at: datetime | None = _dt()
    finished_at: datetime | None = _dt()
    duration_ms: int | None = None
    error_type: str | None = Field(default=None, sa_column=Column(String(200)))
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    fingerprint: str | None = Field(default=None, sa_column=Column(String(32)))
    trace_uri: str | None = Field(default=None, sa_column=Column(Text))
    trace_bytes: int | None = None
    log_uri: str | None = Field(default=None, sa_column=Column(Text))
    log_bytes: int | None = None
    log_lines_stdout: int = 0
    log_lines_stderr: int = 0
    first_output_at: datetime | None = _dt()
    last_output_at: datetime | None = _dt()
    upstream: list[str] | None = Field(default=None, sa_column=Column(JSON))
    host: str | None = Field(default=None, sa_column=Column(String(250)))
    spooled: bool = False
    #: when the process running this try last said it was alive, and until when that holds
    heartbeat_at: datetime | None = _dt()
    lease_until: datetime | None = _dt()
    #: the process that holds the lease ("host/pid/token")
    lease_holder: str | None = Field(default=None, sa_column=Column(String(100)))
    updated_at: datetime | None = _dt(nullable=False)


class Event(SQLModel, table=True):
    """The ledger: state transitions and classified milestones of a run."""

    __tablename__ = "rd_event"
    __table_args__ = (
        Index("ix_rd_event_run", "run_id", "ts"),
        # the dossier reads only the kinds it knows: a run's 100,000 other events stay unread
        Index("ix_rd_event_run_kind", "run_id", "kind", "ts"),
        # chosen by the writer: a spooled batch replayed twice adds each event once
        Index("uq_rd_event_uid", "uid", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    run_id: str = Field(sa_column=Column(String(30), nullable=False))
    step_id: str | None = Field(default=None, sa_column=Column(String(250)))
    try_number: int | None = None
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    ts: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw_ref: str | None = Field(default=None, sa_column=Column(Text))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    uid: str | None = Field(default=None, sa_column=Column(String(32)))


class Artifact(SQLModel, table=True):
    """The manifest: one URI a step try read (`input`) or wrote (`output`), with what it was then."""

    __tablename__ = "rd_artifact"
    __table_args__ = (
        Index("ix_rd_artifact_run", "run_id", "id"),
        Index("ix_rd_artifact_uri", "uri_key", "recorded_at"),
        # chosen by the writer: a spooled batch replayed twice adds each artifact once
        Index("uq_rd_artifact_uid", "uid", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    run_id: str = Field(sa_column=Column(String(30), nullable=False))
    step_id: str | None = Field(default=None, sa_column=Column(String(250)))
    try_number: int | None = None
    role: str = Field(sa_column=Column(String(10), nullable=False))
    #: the URI as recorded (masked)
    uri: str = Field(sa_column=Column(Text, nullable=False))
    #: a hash of `uri` (core.artifacts.uri_key): the index lineage and URI lookups use
    uri_key: str = Field(sa_column=Column(String(32), nullable=False))
    kind: str | None = Field(default=None, sa_column=Column(String(80)))
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    #: "sha256:<hex>", "etag:<value>", "md5:<hex>" ... (None: not computed)
    checksum: str | None = Field(default=None, sa_column=Column(String(200)))
    #: False: the URI did not exist when it was recorded; None: it was not (or could not be) looked at
    present: bool | None = Field(default=None, sa_column=Column(Boolean))
    #: why size/checksum are missing when the lookup failed (bounded)
    note: str | None = Field(default=None, sa_column=Column(String(500)))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    uid: str | None = Field(default=None, sa_column=Column(String(32)))


class RetentionPolicy(SQLModel, table=True):
    """Per-flow retention (an exact flow id or a glob; `*` is the default)."""

    __tablename__ = "rd_retention_policy"

    flow_pattern: str = Field(sa_column=Column(String(250), primary_key=True))
    keep_days: int | None = None
    keep_last: int | None = None
    blob_days: int | None = None
    #: who set it: "cli", "api", "airflow.cfg", "prefect-block:NAME"; None for rules set by hand before 0004
    source: str | None = Field(default=None, sa_column=Column(String(80)))
    updated_at: datetime | None = _dt(nullable=False)


class FailureGroup(SQLModel, table=True):
    """Failures of one fingerprint in one flow: kept up to date as failures are recorded.

    Written once per run attempt's root cause; `GET /api/failures` counts runs instead (see
    `failuregroups`), and reads this table only to know a fingerprint someone may resolve.
    """

    __tablename__ = "rd_failure_group"
    __table_args__ = (Index("ix_rd_failure_group_last_seen", "last_seen"),)

    fingerprint: str = Field(sa_column=Column(String(32), primary_key=True))
    flow_id: str = Field(sa_column=Column(String(250), primary_key=True))
    orchestrator: str = Field(sa_column=Column(String(16), primary_key=True))
    count: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    first_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    latest_run_id: str = Field(sa_column=Column(String(30), nullable=False))
    error_type: str | None = Field(default=None, sa_column=Column(String(200)))
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    failure_class: str | None = Field(default=None, sa_column=Column(String(40)))


class FailureDay(SQLModel, table=True):
    """How many failures of one fingerprint one flow had on one UTC day (for `since` filters)."""

    __tablename__ = "rd_failure_day"

    day: str = Field(sa_column=Column(String(10), primary_key=True))
    fingerprint: str = Field(sa_column=Column(String(32), primary_key=True))
    flow_id: str = Field(sa_column=Column(String(250), primary_key=True))
    orchestrator: str = Field(sa_column=Column(String(16), primary_key=True))
    count: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class FailureResolution(SQLModel, table=True):
    """A failure group someone marked resolved, and when: a failure of it after that time is a
    regression (the group shows reopened); reopening by hand deletes the row."""

    __tablename__ = "rd_failure_resolution"

    fingerprint: str = Field(sa_column=Column(String(32), primary_key=True))
    resolved_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def _table(model: type[SQLModel]) -> Table:
    """The model's Core table (SQLModel sets `__table__` on each table class; its stubs don't say so)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


RUN_TABLE = _table(Run)
STEP_TABLE = _table(Step)
EVENT_TABLE = _table(Event)
ARTIFACT_TABLE = _table(Artifact)
POLICY_TABLE = _table(RetentionPolicy)
GROUP_TABLE = _table(FailureGroup)
DAY_TABLE = _table(FailureDay)
RESOLUTION_TABLE = _table(FailureResolution)
TABLES = [
    RUN_TABLE,
    STEP_TABLE,
    EVENT_TABLE,
    ARTIFACT_TABLE,
    POLICY_TABLE,
    GROUP_TABLE,
    DAY_TABLE,
    RESOLUTION_TABLE,
]


class StepRecord(NamedTuple):
    """One step try, light: for readers that go through many (the dossier). Reading an attribute of
    an ORM row costs about ten times more than of a named tuple; the fields are `rd_step` columns."""

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
    error_type: str | None
    error_message: str | None
    fingerprint: str | None
    trace_uri: str | None
    log_uri: str | None
    log_lines_stdout: int
    log_lines_stderr: int
    first_output_at: datetime | None
    last_output_at: datetime | None
    upstream: list[str] | None
    host: str | None
    spooled: bool


class EventRecord(NamedTuple):
    """One event, light (see StepRecord); the fields are `rd_event` columns."""

    id: int | None
    run_id: str
    step_id: str | None
    try_number: int | None
    kind: str
    ts: datetime
    summary: str
    raw_ref: str | None
    data: dict[str, Any] | None


def step_record(step: Any) -> StepRecord:
    """A StepRecord from any object with the same attributes (an ORM Step, for instance)."""
    return StepRecord._make(getattr(step, f) for f in StepRecord._fields)


def event_record(event: Any) -> EventRecord:
    """An EventRecord from any object with the same attributes (an ORM Event, for instance)."""
    return EventRecord._make(getattr(event, f) for f in EventRecord._fields)


def _check_records() -> None:
    """The light rows name real columns (a renamed column fails at import, not mid-read)."""
    records: tuple[tuple[Table, type[tuple[Any, ...]]], ...] = ((STEP_TABLE, StepRecord), (EVENT_TABLE, EventRecord))
    for table, record in records:
        missing = [f for f in getattr(record, "_fields", ()) if f not in table.c]
        if missing:
            raise RuntimeError(f"{record.__name__} names columns {table.name} lacks: {missing}")


_check_records()

__all__ = [
    "Run",
    "Step",
    "Event",
    "StepRecord",
    "EventRecord",
    "step_record",
    "event_record",
    "Artifact",
    "RetentionPolicy",
    "FailureGroup",
    "FailureDay",
    "FailureResolution",
    "TABLES",
    "RUN_TABLE",
    "STEP_TABLE",
    "EVENT_TABLE",
    "ARTIFACT_TABLE",
    "POLICY_TABLE",
    "GROUP_TABLE",
    "DAY_TABLE",
    "RESOLUTION_TABLE",
    "ERROR_MESSAGE_MAX",
    "SUMMARY_MAX",
    "MAX_TRY",
]
