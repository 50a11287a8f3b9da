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

from sqlalchemy import delete, select, true, update

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
_RUNS_PAGE = select(*(_RUN[f] for f in RunRow._fields)).order_by(_RUN.run_id.desc())
_STEP_BLOBS = select(*(STEP_TABLE.c[f] for f in StepBlobs._fields))


class SweepRows:
    """Batched reads and writes of run rows for one store; thread-safe like the store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    # -- reads -----------------------------------------------------------------------------------
    def runs_page(self, flow_id: str, before: str | None, limit: int) -> list[RunRow]:
        """Up to `limit` runs of a flow, newest first, with ids below `before` (keyset page)."""
        stmt = _RUNS_PAGE.where(_RUN.flow_id == flow_id).limit(limit)
        if before is not None:
            stmt = stmt.where(_RUN.run_id < before)
        with self.store.reading("read runs to sweep") as conn:
            return [RunRow._make(r) for r in conn.execute(stmt)]

    def step_blobs(self, run_ids: Sequence[str]) -> list[StepBlobs]:
        """The blob pointers of every step try of these runs."""
        if not run_ids:
            return []
        stmt = _STEP_BLOBS.where(STEP_TABLE.c.run_id.in_(run_ids))
        with self.store.reading("read the steps of runs to sweep") as conn:
            return [StepBlobs._make(r) for r in conn.execute(stmt)]

    # -- writes ----------------------------------------------------------------------------------
    def mark_expiring(self, run_ids: Sequence[str]) -> set[str]:
        """Say the blobs of these finished runs are going (expired, no date yet); returns the marked."""
        if not run_ids:
            return set()
        stmt = (
            update(RUN_TABLE)
            .where(_RUN.run_id.in_(run_ids), _FINISHED)
            .values(blobs_expired=True, blobs_expired_at=None)
            .returning(_RUN.run_id)
        )
        with self.store.transaction("mark runs for retention") as conn:
            return set(conn.execute(stmt).scalars())

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
                gone = delete(RUN_TABLE).where(_RUN.run_id.in_(delete_ids), _FINISHED).returning(_RUN.run_id)
                deleted = set(conn.execute(gone).scalars())
                if deleted:
                    ids = sorted(deleted)
                    steps_n = max(conn.execute(delete(STEP_TABLE).where(STEP_TABLE.c.run_id.in_(ids))).rowcount, 0)
                    events_n = max(conn.execute(delete(EVENT_TABLE).where(EVENT_TABLE.c.run_id.in_(ids))).rowcount, 0)
                    conn.execute(delete(ARTIFACT_TABLE).where(ARTIFACT_TABLE.c.run_id.in_(ids)))
            if expire_ids:
                dated = (
                    update(RUN_TABLE)
                    .where(_RUN.run_id.in_(expire_ids), _RUN.blobs_expired == true(), _RUN.blobs_expired_at.is_(None))
                    .values(blobs_expired_at=when, updated_at=when)
                    .returning(_RUN.run_id)
                )
                expired = set(conn.execute(dated).scalars())
        return deleted, steps_n, events_n, expired


__all__ = ["SweepRows", "RunRow", "StepBlobs", "TERMINAL_STATUSES"]
