"""The retention sweep's row work, in batches, straight on the DBAPI connection (I/O).

A sweep reads a flow's runs a page at a time and, per batch of runs, reads where their steps' blobs
are, marks the runs "expiring", and later deletes their rows or dates their expiry. Through
SQLAlchemy's execution path each of these statements cost about as much again as the SQL itself
(the IN list rendered anew per call, every value through the result processors), on the thread
that also keeps the blob deletes fed. Here the SQL text is built once per IN-list length and only
the values whose column type needs it are converted (datetimes; booleans on SQLite).

The statements and transactions are the sweep's own (see `retention.sweep`): reads are single
SELECTs; each write is one short transaction (BEGIN IMMEDIATE on SQLite), and every write
re-checks that the run is finished. Errors come out as StoreError, like every store call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from rundossier.core.status import TERMINAL
from rundossier.storage.db.fastwrite import sqlite_utc
from rundossier.storage.db.models import ARTIFACT_TABLE
from rundossier.storage.db.runstore import EVENT_TABLE, RunStore
from rundossier.storage.db.upserts import RUN_TABLE, STEP_TABLE

#: the statuses a sweep may act on (finished runs), as statement parameters
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


class SweepRows:
    """Batched reads and writes of run rows for one store; thread-safe like the store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        sqlite = store.dialect == "sqlite"
        self._p = "?" if sqlite else "%s"
        self._when = sqlite_utc if sqlite else (lambda value: value)
        self._terminal = f"status IN ({', '.join(self._p for _ in TERMINAL_STATUSES)})"
        self._lists: dict[int, str] = {}

    def _in(self, n: int) -> str:
        """`(?, ?, ...)` for n values (a sweep sees a few batch lengths: kept)."""
        text = self._lists.get(n)
        if text is None:
            text = self._lists[n] = "(" + ", ".join(self._p for _ in range(n)) + ")"
        return text

    # -- reads -----------------------------------------------------------------------------------
    def runs_page(self, flow_id: str, before: str | None, limit: int) -> list[RunRow]:
        """Up to `limit` runs of a flow, newest first, with ids below `before` (keyset page)."""
        where, params = "flow_id = {p}", [flow_id]
        if before is not None:
            where += " AND run_id < {p}"
            params.append(before)
        return self.store._raw_read(RUN_TABLE, RunRow._fields, where, params, "run_id DESC", RunRow, limit=limit)

    def step_blobs(self, run_ids: Sequence[str]) -> list[StepBlobs]:
        """The blob pointers of every step try of these runs."""
        if not run_ids:
            return []
        where = f"run_id IN {self._in(len(run_ids))}"
        return self.store._raw_read(STEP_TABLE, StepBlobs._fields, where, list(run_ids), None, StepBlobs)

    # -- writes ----------------------------------------------------------------------------------
    def mark_expiring(self, run_ids: Sequence[str]) -> set[str]:
        """Say the blobs of these finished runs are going (expired, no date yet); returns the marked."""
        if not run_ids:
            return set()
        p = self._p
        sql = (
            f"UPDATE {RUN_TABLE.name} SET blobs_expired = {p}, blobs_expired_at = NULL "
            f"WHERE run_id IN {self._in(len(run_ids))} AND {self._terminal} RETURNING run_id"
        )
        with self.store._fast("mark runs for retention") as cur:
            cur.execute(sql, [True, *run_ids, *TERMINAL_STATUSES])
            return {r[0] for r in cur.fetchall()}

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
        p = self._p
        with self.store._fast("delete expired runs") as cur:
            if delete_ids:
                cur.execute(
                    f"DELETE FROM {RUN_TABLE.name} WHERE run_id IN {self._in(len(delete_ids))} "
                    f"AND {self._terminal} RETURNING run_id",
                    [*delete_ids, *TERMINAL_STATUSES],
                )
                deleted = {r[0] for r in cur.fetchall()}
                if deleted:
                    gone = sorted(deleted)
                    cur.execute(f"DELETE FROM {STEP_TABLE.name} WHERE run_id IN {self._in(len(gone))}", gone)
                    steps_n = max(cur.rowcount, 0)
                    cur.execute(f"DELETE FROM {EVENT_TABLE.name} WHERE run_id IN {self._in(len(gone))}", gone)
                    events_n = max(cur.rowcount, 0)
                    cur.execute(f"DELETE FROM {ARTIFACT_TABLE.name} WHERE run_id IN {self._in(len(gone))}", gone)
            if expire_ids:
                stamp = self._when(when)
                cur.execute(
                    f"UPDATE {RUN_TABLE.name} SET blobs_expired_at = {p}, updated_at = {p} "
                    f"WHERE run_id IN {self._in(len(expire_ids))} AND blobs_expired = {p} "
                    "AND blobs_expired_at IS NULL RETURNING run_id",
                    [stamp, stamp, *expire_ids, True],
                )
                expired = {r[0] for r in cur.fetchall()}
        return deleted, steps_n, events_n, expired


def _check_fields() -> None:
    """The named tuples name real columns (a renamed column fails at import, not mid-sweep)."""
    for table, record in ((RUN_TABLE, RunRow), (STEP_TABLE, StepBlobs)):
        missing = [f for f in record._fields if f not in table.c]
        if missing:
            raise RuntimeError(f"{record.__name__} names columns {table.name} lacks: {missing}")


_check_fields()

__all__ = ["SweepRows", "RunRow", "StepBlobs", "TERMINAL_STATUSES"]
