"""The retention sweep's row work: batched reads and writes of run rows, as SQLAlchemy Core statements.

A sweep reads a flow's runs a page at a time and, per batch of runs, reads where their steps' blobs
are, marks the runs "expiring", and later deletes their rows or dates their expiry. The statements
and transactions are the sweep's own (see `retention.sweep`): reads are single SELECTs; each write
is one short transaction (`RunStore.transaction`: BEGIN IMMEDIATE on SQLite), and every write
re-checks that the run is finished. A swept run's steps, events and artifacts go with it; failure
groups and their resolutions are per fingerprint, not per run, and stay. Errors come out as
StoreError, like every store call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import BindParameter, bindparam, delete, select, true, update

from rundossier.core.status import TERMINAL
from rundossier.storage.db.models import ARTIFACT_TABLE, EVENT_TABLE, RUN_TABLE, STEP_TABLE
from rundossier.storage.db.runstore import RunStore

#: the statuses a sweep may act on (finished runs), in a stable order
TERMINAL_STATUSES = sorted(s.value for s in TERMINAL)


class RunRow(NamedTuple):
    """What the sweep's planner needs of one run, and the run's own trace."""

    run_id: str
    orchestrator: str
    status: str
    finished_at: datetime | None
    started_at: datetime | None
    created_at: datetime | None
    blobs_expired: bool
    blobs_expired_at: datetime | None
    trace_uri: str | None
    trace_bytes: int | None


class StepBlobs(NamedTuple):
    """Where one step try's blobs are, and their recorded sizes."""

    run_id: str
    trace_uri: str | None
    trace_bytes: int | None
    log_uri: str | None
    log_bytes: int | None


_RUN = RUN_TABLE.c
_FINISHED = _RUN.status.in_(TERMINAL_STATUSES)
# Built once, with the run ids as one expanding parameter: a statement built per call (and an IN
# list of literal values coerced one by one) cost as much as the sweep's SQL itself.
_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_RUNS_PAGE = select(*(_RUN[f] for f in RunRow._fields)).order_by(_RUN.run_id.desc()).limit(bindparam("limit"))
_FLOW_PAGE = _RUNS_PAGE.where(_RUN.flow_id == bindparam("flow_id"))
_FLOW_PAGE_BEFORE = _FLOW_PAGE.where(_RUN.run_id < bindparam("before"))
_STEP_BLOBS = select(*(STEP_TABLE.c[f] for f in StepBlobs._fields)).where(STEP_TABLE.c.run_id.in_(_IDS))
_MARK = (
    update(RUN_TABLE)
    .where(_RUN.run_id.in_(_IDS), _FINISHED)
    .values(blobs_expired=True, blobs_expired_at=None)
    .returning(_RUN.run_id)
)
_DELETE_RUNS = delete(RUN_TABLE).where(_RUN.run_id.in_(_IDS), _FINISHED).returning(_RUN.run_id)
_DELETE_STEPS = delete(STEP_TABLE).where(STEP_TABLE.c.run_id.in_(_IDS))
_DELETE_EVENTS = delete(EVENT_TABLE).where(EVENT_TABLE.c.run_id.in_(_IDS))
_DELETE_ARTIFACTS = delete(ARTIFACT_TABLE).where(ARTIFACT_TABLE.c.run_id.in_(_IDS))
_DATE_EXPIRY = (
    update(RUN_TABLE)
    .where(_RUN.run_id.in_(_IDS), _RUN.blobs_expired == true(), _RUN.blobs_expired_at.is_(None))
    .values(blobs_expired_at=bindparam("when", type_=RUN_TABLE.c.blobs_expired_at.type), updated_at=bindparam("when"))
    .returning(_RUN.run_id)
)


class SweepRows:
    """Batched reads and writes of run rows for one store; thread-safe like the store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    # -- reads -----------------------------------------------------------------------------------
    def runs_page(self, flow_id: str, before: str | None, limit: int) -> list[RunRow]:
        """Up to `limit` runs of a flow, newest first, with ids below `before` (keyset page)."""
        stmt = _FLOW_PAGE if before is None else _FLOW_PAGE_BEFORE
        with self.store.reading("read runs to sweep") as conn:
            return [RunRow._make(r) for r in conn.execute(stmt, {"flow_id": flow_id, "before": before, "limit": limit})]

    def step_blobs(self, run_ids: Sequence[str]) -> list[StepBlobs]:
        """The blob pointers of every step try of these runs."""
        if not run_ids:
            return []
        with self.store.reading("read the steps of runs to sweep") as conn:
            return [StepBlobs._make(r) for r in conn.execute(_STEP_BLOBS, {"ids": list(run_ids)})]

    # -- writes ----------------------------------------------------------------------------------
    def mark_expiring(self, run_ids: Sequence[str]) -> set[str]:
        """Say the blobs of these finished runs are going (expired, no date yet); returns the marked."""
        if not run_ids:
            return set()
        with self.store.transaction("mark runs for retention") as conn:
            return set(conn.execute(_MARK, {"ids": list(run_ids)}).scalars())

    def finish(
        self, delete_ids: Sequence[str], expire_ids: Sequence[str], when: datetime
    ) -> tuple[set[str], int, int, set[str]]:
        """In one short transaction: delete the finished runs in `delete_ids` with their steps,
        events and artifacts, and date the expiry of the marked runs in `expire_ids` (`when`).

        Returns (deleted run ids, steps deleted, events deleted, expired run ids)."""
        deleted: set[str] = set()
        expired: set[str] = set()
        steps_n = events_n = 0
        if not delete_ids and not expire_ids:
            return deleted, steps_n, events_n, expired
        with self.store.transaction("delete expired runs") as conn:
            if delete_ids:
                deleted = set(conn.execute(_DELETE_RUNS, {"ids": list(delete_ids)}).scalars())
                if deleted:
                    gone = {"ids": sorted(deleted)}
                    steps_n = max(conn.execute(_DELETE_STEPS, gone).rowcount, 0)
                    events_n = max(conn.execute(_DELETE_EVENTS, gone).rowcount, 0)
                    conn.execute(_DELETE_ARTIFACTS, gone)
            if expire_ids:
                expired = set(conn.execute(_DATE_EXPIRY, {"ids": list(expire_ids), "when": when}).scalars())
        return deleted, steps_n, events_n, expired


__all__ = ["SweepRows", "RunRow", "StepBlobs", "TERMINAL_STATUSES"]
