"""Light rows: named tuples of steps and events, for readers that go through many of them.

`rundossier.core.dossier.build_dossier` reads attributes of whatever rows it is given; the ORM objects
work, but reading an attribute of one costs about ten times more than of a named tuple. The read
side loads these instead (`RunStore.list_step_records` / `list_event_records`), which is what
keeps a dossier of 1,000 steps and 100,000 events fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class StepRecord(NamedTuple):
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
    id: int | None
    run_id: str
    step_id: str | None
    try_number: int | None
    kind: str
    ts: datetime
    summary: str
    raw_ref: str | None
    data: dict[str, Any] | None


STEP_FIELDS: tuple[str, ...] = StepRecord._fields
EVENT_FIELDS: tuple[str, ...] = EventRecord._fields


def step_record(step: Any) -> StepRecord:
    """A StepRecord from any object with the same attributes (an ORM Step, for instance)."""
    return StepRecord(*(getattr(step, f) for f in STEP_FIELDS))


def event_record(event: Any) -> EventRecord:
    return EventRecord(*(getattr(event, f) for f in EVENT_FIELDS))


__all__ = ["StepRecord", "EventRecord", "STEP_FIELDS", "EVENT_FIELDS", "step_record", "event_record"]
