"""The one status vocabulary shared by every orchestrator, the store, the API and the UI."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCESS = "success"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_failure(self) -> bool:
        return self in FAILURES


#: Statuses a run or step never leaves on its own (retention may delete these).
TERMINAL = frozenset(
    {
        Status.SUCCESS,
        Status.FAILED,
        Status.CRASHED,
        Status.CANCELLED,
        Status.SKIPPED,
        Status.UPSTREAM_FAILED,
    }
)
#: Statuses that are never deleted by retention, whatever their age.
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED})
#: Statuses that mean "something went wrong here".
FAILURES = frozenset({Status.FAILED, Status.CRASHED})
#: A failure, or not run because of one upstream.
UNSUCCESSFUL = FAILURES | {Status.UPSTREAM_FAILED}
#: What a replay redoes: whatever did not end well.
NOT_DONE = UNSUCCESSFUL | {Status.CANCELLED}

# Members are `str`s: `"running" in ACTIVE` holds, so rows' plain strings are looked up directly.

__all__ = ["Status", "TERMINAL", "ACTIVE", "FAILURES", "UNSUCCESSFUL", "NOT_DONE"]
