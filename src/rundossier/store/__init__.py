"""Run history persistence (SQLModel over SQLite or PostgreSQL); knows rows, nothing of blobs."""

from .failuregroups import GroupCounts, GroupQuery, GroupRow
from .models import Event, FailureGroup, RetentionPolicy, Run, Step
from .records import EventRecord, StepRecord
from .runstore import MAX_PAGE, RunPage, RunQuery, RunStore, WriteBatch

__all__ = [
    "RunStore",
    "RunQuery",
    "RunPage",
    "WriteBatch",
    "MAX_PAGE",
    "Run",
    "Step",
    "Event",
    "RetentionPolicy",
    "FailureGroup",
    "GroupQuery",
    "GroupCounts",
    "GroupRow",
    "StepRecord",
    "EventRecord",
]
