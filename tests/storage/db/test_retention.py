"""Tests for SweepRows: the retention sweep's batched row reads and writes (Core), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rundossier.errors import StoreError
from rundossier.storage.db import GroupQuery, RunStore, WriteBatch
from rundossier.storage.db.retention import RunRow, StepBlobs, SweepRows

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _run_id(n: int) -> str:
    return f"run_01JG{n:022d}"


def _seed(store: RunStore, n: int = 6, flow: str = "etl", first: int = 0) -> list[str]:
    """n runs of `flow` (run 2 still running), each with two step tries and two events."""
    ids = []
    for i in range(n):
        rid = _run_id(first + i)
        status = "running" if i == 2 else ("failed" if i % 2 else "success")
        batch = WriteBatch().run(
            {
                "run_id": rid,
                "orchestrator": "python",
                "flow_id": flow,
                "run_key": rid,
                "status": status,
                "started_at": T0 + timedelta(minutes=i),
                "finished_at": None if status == "running" else T0 + timedelta(minutes=i, seconds=30),
                "trace_uri": f"file:///b/{rid}/work.1.trace.txt.gz" if i % 2 else None,
                "trace_bytes": 100 + i if i % 2 else None,
            }
        )
        for attempt in (1, 2):
            batch.step(
                {
                    "run_id": rid,
                    "step_id": "work",
                    "try_number": attempt,
                    "status": status,
                    "log_uri": f"file:///b/{rid}/work.{attempt}.log.jsonl.gz",
                    "log_bytes": 10 * attempt,
                }
            )
        for kind in ("run_started", "run_finished"):
            batch.event({"run_id": rid, "kind": kind, "ts": T0, "summary": kind})
        batch.artifact({"run_id": rid, "step_id": "work", "try_number": 1, "role": "output", "uri": f"s3://b/{rid}"})
        store.write(batch)
        ids.append(rid)
    return ids


class SweepRowsConformance:
    @pytest.fixture
    def store(self) -> RunStore:
        raise NotImplementedError

    def test_runs_page_is_newest_first_with_a_keyset_cursor(self, store: RunStore) -> None:
        ids = _seed(store)
        _seed(store, 2, flow="other", first=100)
        rows = SweepRows(store)
        first = rows.runs_page("etl", None, 4)
        assert [r.run_id for r in first] == ids[::-1][:4]
        rest = rows.runs_page("etl", first[-1].run_id, 4)
        assert [r.run_id for r in rest] == ids[::-1][4:]
        assert rows.runs_page("etl", ids[0], 4) == []
        assert rows.runs_page("nobody", None, 4) == []

    def test_runs_page_converts_values_as_the_column_types_do(self, store: RunStore) -> None:
        ids = _seed(store)
        row = next(r for r in SweepRows(store).runs_page("etl", None, 10) if r.run_id == ids[1])
        assert isinstance(row, RunRow)
        assert row.finished_at == T0 + timedelta(minutes=1, seconds=30) and row.finished_at.tzinfo is not None
        assert row.blobs_expired is False and row.blobs_expired_at is None
        assert (row.orchestrator, row.status, row.trace_bytes) == ("python", "failed", 101)
        running = next(r for r in SweepRows(store).runs_page("etl", None, 10) if r.run_id == ids[2])
        assert running.finished_at is None and running.status == "running"

    def test_step_blobs(self, store: RunStore) -> None:
        ids = _seed(store)
        rows = SweepRows(store)
        found = sorted(rows.step_blobs(ids[:2]))
        assert all(isinstance(r, StepBlobs) for r in found)
        assert [(r.run_id, r.log_bytes) for r in found] == [(ids[0], 10), (ids[0], 20), (ids[1], 10), (ids[1], 20)]
        assert found[0].log_uri == f"file:///b/{ids[0]}/work.1.log.jsonl.gz"
        assert rows.step_blobs([]) == [] and rows.step_blobs(["run_nobody"]) == []

    def test_mark_touches_only_finished_runs(self, store: RunStore) -> None:
        ids = _seed(store)
        rows = SweepRows(store)
        assert rows.mark_expiring(ids[:4] + ["run_nobody"]) == {ids[0], ids[1], ids[3]}
        assert rows.mark_expiring([]) == set()
        marked = {r.run_id: r for r in rows.runs_page("etl", None, 10)}
        assert marked[ids[0]].blobs_expired is True and marked[ids[0]].blobs_expired_at is None
        assert marked[ids[2]].blobs_expired is False  # running: never marked
        assert marked[ids[4]].blobs_expired is False  # not asked

    def test_finish_deletes_finished_runs_with_their_steps_and_events(self, store: RunStore) -> None:
        ids = _seed(store)
        rows = SweepRows(store)
        deleted, steps_n, events_n, expired = rows.finish(ids[:3], [], T0)
        assert deleted == {ids[0], ids[1]} and (steps_n, events_n) == (4, 4) and expired == set()
        assert [r.run_id for r in rows.runs_page("etl", None, 10)] == ids[:1:-1]
        assert rows.step_blobs(ids[:2]) == [] and len(rows.step_blobs([ids[2]])) == 2
        assert store.list_events(ids[0]) == [] and len(store.list_events(ids[2])) == 2
        assert store.count_artifacts(ids[0]) == 0 and store.count_artifacts(ids[2]) == 1

    def test_finish_dates_only_marked_expiries(self, store: RunStore) -> None:
        ids = _seed(store)
        rows = SweepRows(store)
        rows.mark_expiring([ids[0], ids[1]])
        when = T0 + timedelta(days=40, microseconds=123456)
        assert rows.finish([], [ids[0], ids[3]], when) == (set(), 0, 0, {ids[0]})
        after = {r.run_id: r for r in rows.runs_page("etl", None, 10)}
        assert after[ids[0]].blobs_expired_at == when
        assert after[ids[1]].blobs_expired_at is None  # marked, not finished: still "expiring"
        assert after[ids[3]].blobs_expired is False  # never marked: not expired by a stray id
        assert store.get_run(ids[0]).updated_at == when
        assert rows.finish([], [], when) == (set(), 0, 0, set())

    def test_finish_takes_a_runs_artifacts_and_its_group_count_and_keeps_resolutions(self, store: RunStore) -> None:
        ids = _seed(store, 4)
        failed = WriteBatch().root_cause(
            {
                "run_id": ids[1],
                "root_step_id": "work",
                "error_type": "KeyError",
                "error_message": "k",
                "fingerprint": "f" * 32,
            }
        )
        store.write(failed)
        assert store.resolve_failure("f" * 32, at=T0) == T0
        assert store.failure_groups(GroupQuery()).counts == {"f" * 32: 1}
        rows = SweepRows(store)
        assert rows.finish([ids[1]], [], T0)[0] == {ids[1]}
        assert store.count_artifacts(ids[1]) == 0
        assert [store.count_artifacts(i) for i in (ids[0], ids[2], ids[3])] == [1, 1, 1]
        assert store.list_artifacts(ids[0])[0][0].uri == f"s3://b/{ids[0]}"
        assert store.failure_groups(GroupQuery()).counts == {}  # a removed run is no longer counted
        assert store.reopen_failure("f" * 32) is True  # the resolution was still there

    @pytest.mark.parametrize("n", [1, 999, 1000, 2500])
    def test_long_batches(self, store: RunStore, n: int) -> None:
        ids = _seed(store, 3)
        asked = ids + [f"run_missing{i:06d}" for i in range(n)]
        rows = SweepRows(store)
        assert rows.mark_expiring(asked) == {ids[0], ids[1]}
        assert rows.finish(asked, [], T0)[0] == {ids[0], ids[1]}


class TestSQLite(SweepRowsConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store


@pytest.mark.postgres
class TestPostgres(SweepRowsConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store


def test_a_locked_database_is_a_store_error_and_nothing_changes(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path}/runs.db", timeout=0.2)
    ids = _seed(store, 2)
    holder = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    rows = SweepRows(store)
    try:
        with pytest.raises(StoreError, match="locked"):
            rows.mark_expiring(ids)
        with pytest.raises(StoreError, match="locked"):
            rows.finish(ids, [], T0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert all(r.blobs_expired is False for r in rows.runs_page("etl", None, 10))
    assert rows.finish(ids, [], T0)[0] == set(ids)  # the connection recovered
    store.close()
