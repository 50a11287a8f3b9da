"""Run history persistence (SQLModel over SQLite or PostgreSQL); knows rows, nothing of blobs."""

from rundossier.storage.db.failuregroups import GroupCounts, GroupQuery, GroupRow
from rundossier.storage.db.models import Event, EventRecord, FailureGroup, RetentionPolicy, Run, Step, StepRecord
from rundossier.storage.db.runstore import MAX_PAGE, RunPage, RunQuery, RunStore, WriteBatch

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
