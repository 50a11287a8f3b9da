"""Retention decisions: given a flow's runs (newest first), its policy and the time, what to do with each (pure).

For each run, in order from the newest:

* queued, running or paused (or any status we do not know): **keep**, whatever its age; it does
  not count towards the last K;
* a finished run is counted; beyond the newest `keep_last`, or ended more than `keep_days` ago:
  **delete** (blobs, then the rows);
* otherwise, ended more than `blob_days` ago: **expire** its traces and logs (the row stays and
  says when); and a run whose expiry was interrupted (marked expired, not yet done) is finished;
* everything else: **keep**.

A run's end is its finish time (else start, else when it was recorded). Runs are ordered by run
id, which sorts by when they were first recorded. The planner holds two counters, so a sweep can
stream millions of runs through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from rundossier.core.retention.policy import Policy
from rundossier.core.status import TERMINAL


class Action(StrEnum):
    KEEP = "keep"
    DELETE = "delete"
    EXPIRE = "expire"


class Because(StrEnum):
    """Why: the rule that decided (the report counts runs per reason)."""

    ACTIVE = "active"  # queued, running, paused: never deleted
    WITHIN = "within_policy"
    KEEP_LAST = "keep_last"
    KEEP_DAYS = "keep_days"
    BLOB_DAYS = "blob_days"
    RESUME = "resume"  # an interrupted expiry is finished


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a decision needs to know about one run."""

    run_id: str
    status: str
    ended_at: datetime | None
    blobs_expired: bool = False
    blobs_expired_at: datetime | None = None

    @property
    def blobs_gone(self) -> bool:
        """Expired and done: its traces and logs were deleted."""
        return self.blobs_expired and self.blobs_expired_at is not None

    @property
    def expiry_pending(self) -> bool:
        """Marked expired by a sweep that stopped before its blobs were all deleted."""
        return self.blobs_expired and self.blobs_expired_at is None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Decision:
    run: RunFacts
    action: Action
    because: Because


def ended_at(finished_at: datetime | None, started_at: datetime | None, created_at: datetime | None) -> datetime | None:
    """When a run ended, for its age: finish, else start, else when it was recorded."""
    return finished_at or started_at or created_at


class FlowPlanner:
    """Decides for one flow's runs, fed newest first (one call per run)."""

    def __init__(self, policy: Policy, now: datetime) -> None:
        self.policy = policy
        self.now = now
        self.row_cutoff = now - timedelta(days=policy.keep_days) if policy.keep_days else None
        self.blob_cutoff = now - timedelta(days=policy.blob_days) if policy.blob_days else None
        self.finished_seen = 0

    def decide(self, run: RunFacts) -> Decision:
        if not run.terminal:
            return Decision(run, Action.KEEP, Because.ACTIVE)
        self.finished_seen += 1
        keep_last = self.policy.keep_last
        if keep_last and self.finished_seen > keep_last:
            return Decision(run, Action.DELETE, Because.KEEP_LAST)
        end = run.ended_at
        if self.row_cutoff is not None and end is not None and end < self.row_cutoff:
            return Decision(run, Action.DELETE, Because.KEEP_DAYS)
        if run.blobs_gone:
            return Decision(run, Action.KEEP, Because.WITHIN)
        if self.blob_cutoff is not None and end is not None and end < self.blob_cutoff:
            return Decision(run, Action.EXPIRE, Because.BLOB_DAYS)
        if run.expiry_pending:
            return Decision(run, Action.EXPIRE, Because.RESUME)
        return Decision(run, Action.KEEP, Because.WITHIN)


def plan_flow(runs: Iterable[RunFacts], policy: Policy, now: datetime) -> list[Decision]:
    """Decisions for one flow's runs, given newest first."""
    planner = FlowPlanner(policy, now)
    return [planner.decide(r) for r in runs]


__all__ = ["Action", "Because", "RunFacts", "Decision", "FlowPlanner", "plan_flow", "ended_at"]
