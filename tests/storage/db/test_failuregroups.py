"""Failure groups on SQLite and PostgreSQL: each failed run counted once, filtered, windowed by UTC days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from rundossier.core.ids import run_id_at
from rundossier.storage.db import GroupQuery, RunStore, WriteBatch
from rundossier.storage.db.schema import upgrade
from tests.pgdb import temporary_database

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _failed(
    store: RunStore,
    key: str,
    fp: str | None,
    at: datetime,
    flow: str = "etl",
    orchestrator: str = "python",
    **extra: object,
) -> str:
    """A failed run created and ended at `at` whose root cause has fingerprint `fp`."""
    rid = store.upsert_run(
        {
            "run_id": run_id_at(at),
            "orchestrator": orchestrator,
            "flow_id": flow,
            "run_key": key,
            "status": "failed",
            "started_at": at,
            "finished_at": at,
        }
    )
    _cause(store, rid, fp, at, **extra)
    return rid


def _cause(store: RunStore, run_id: str, fp: str | None, at: datetime, step: str = "load", **extra: object) -> None:
    cause = {"run_id": run_id, "root_step_id": step, "fingerprint": fp, "error_type": "E", "failed_at": at}
    cause.update(extra)
    store.write(WriteBatch().root_cause(cause))


class GroupConformance:
    def test_counts_each_failed_run_once(self, store: RunStore) -> None:
        rid = _failed(store, "k", "fp1", T0)
        _cause(store, rid, "fp1", T0 + timedelta(seconds=5), step="other")  # not the root cause
        assert store.failure_groups(GroupQuery()).counts == {"fp1": 1}
        _cause(store, rid, "fp1", T0 + timedelta(seconds=9), root_try_number=2)  # a later try of the root step
        assert store.failure_groups(GroupQuery()).counts == {"fp1": 1}
        _cause(store, rid, "fp2", T0 + timedelta(seconds=12), root_try_number=3)  # it failed otherwise at last
        assert store.failure_groups(GroupQuery()).counts == {"fp2": 1}

    def test_only_failed_and_crashed_runs_count(self, store: RunStore) -> None:
        run = {"orchestrator": "python", "flow_id": "etl", "run_key": "k", "status": "running"}
        rid = store.upsert_run({**run, "run_id": run_id_at(T0)})
        _cause(store, rid, "fp", T0)  # its step failed; a retry may still recover it
        assert store.failure_groups(GroupQuery()).order == []
        store.upsert_run({**run, "status": "crashed", "finished_at": T0})
        assert store.failure_groups(GroupQuery()).counts == {"fp": 1}
        ok = store.upsert_run({**run, "run_key": "ok", "run_id": run_id_at(T0), "status": "running"})
        _cause(store, ok, "fp", T0)
        store.write(WriteBatch().clear_outcome(ok))  # its retry recovered
        store.upsert_run({**run, "run_key": "ok", "status": "success"})
        assert store.failure_groups(GroupQuery()).counts == {"fp": 1}

    def test_no_fingerprint_no_group(self, store: RunStore) -> None:
        _failed(store, "k", None, T0)
        assert store.failure_groups(GroupQuery()).order == []

    def test_first_last_and_latest(self, store: RunStore) -> None:
        late = _failed(store, "late", "fp", T0 + timedelta(hours=2), error_message="the latest")
        _failed(store, "early", "fp", T0, error_message="an old one", failure_class="data")
        (row,) = store.failure_groups(GroupQuery()).rows
        assert (row.count, row.first_seen, row.last_seen) == (2, T0, T0 + timedelta(hours=2))
        assert (row.latest_run_id, row.error_message, row.failure_class) == (late, "the latest", None)

    def test_groups_span_flows_and_filters_apply(self, store: RunStore) -> None:
        _failed(store, "a", "fp", T0, flow="sales")
        _failed(store, "b", "fp", T0 + timedelta(seconds=1), flow="finance")
        _failed(store, "c", "other", T0 + timedelta(seconds=2), flow="finance", orchestrator="airflow")
        page = store.failure_groups(GroupQuery())
        assert page.order == ["other", "fp"] and page.counts == {"other": 1, "fp": 2}
        assert {r.flow_id for r in page.rows if r.fingerprint == "fp"} == {"sales", "finance"}
        assert store.failure_groups(GroupQuery(flow_id="sales")).counts == {"fp": 1}
        assert store.failure_groups(GroupQuery(orchestrator="airflow")).counts == {"other": 1}
        assert store.failure_groups(GroupQuery(flows=("sales",))).counts == {"fp": 1}
        assert {r.flow_id for r in store.failure_groups(GroupQuery(flows=("sales",))).rows} == {"sales"}
        assert store.failure_groups(GroupQuery(flows=())).order == []
        assert store.failure_groups(GroupQuery(fingerprint="fp")).order == ["fp"]

    def test_since_counts_whole_utc_days(self, store: RunStore) -> None:
        for i, days in enumerate((0, 1, 1, 3)):
            _failed(store, f"k{i}", "fp", T0 + timedelta(days=days))
        _failed(store, "x", "old", T0 - timedelta(days=10))
        page = store.failure_groups(GroupQuery(since=T0 + timedelta(days=1, hours=5)))
        assert page.counted_since == "2026-03-02"
        assert page.counts == {"fp": 3}
        assert store.failure_groups(GroupQuery(since=T0 + timedelta(days=30))).order == []

    @pytest.mark.parametrize("days_back", [0, 1, 3, 40, 101, 400])
    def test_window_counts(self, store: RunStore, days_back: int) -> None:
        now = datetime.now(UTC)
        ages = {"a": [100, 60, 2, 0], "b": [99, 98], "c": [1], "d": [100]}
        for fp, days in ages.items():
            for i, age in enumerate(days):
                _failed(store, f"{fp}{i}", fp, now - timedelta(days=age), flow=f"flow_{i % 2}")
        since = now - timedelta(days=days_back)
        day = since.date()
        expected = {
            fp: n for fp, days in ages.items() if (n := sum((now - timedelta(days=a)).date() >= day for a in days))
        }
        assert store.failure_groups(GroupQuery(since=since)).counts == expected
        flow0 = {
            fp: n
            for fp, days in ages.items()
            if (n := sum((now - timedelta(days=a)).date() >= day for i, a in enumerate(days) if i % 2 == 0))
        }
        assert store.failure_groups(GroupQuery(since=since, flow_id="flow_0")).counts == flow0

    def test_sort_by_count(self, store: RunStore) -> None:
        _failed(store, "a", "rare", T0 + timedelta(days=1))
        for i in range(3):
            _failed(store, f"b{i}", "common", T0 + timedelta(seconds=i))
        assert store.failure_groups(GroupQuery(sort="count")).order == ["common", "rare"]
        assert store.failure_groups(GroupQuery()).order == ["rare", "common"]
        assert store.failure_groups(GroupQuery(limit=1)).order == ["rare"]

    def test_trend_counts_each_utc_day_of_the_window(self, store: RunStore) -> None:
        for i, hours in enumerate((0, 30, 31, 75)):
            _failed(store, f"k{i}", "fp", T0 + timedelta(hours=hours))
        _failed(store, "o", "other", T0 + timedelta(days=1), flow="x")
        page = store.failure_groups(GroupQuery(since=T0, until=T0 + timedelta(days=4)))
        assert (page.trend_from, page.trend_days) == ("2026-03-01", 5)
        assert page.trends["fp"] == [1, 2, 0, 1, 0] and page.counts["fp"] == 4
        assert page.trends["other"] == [0, 1, 0, 0, 0]
        # until: through its UTC day
        assert store.failure_groups(GroupQuery(until=T0 + timedelta(days=1))).counts == {"fp": 3, "other": 1}
        assert store.failure_groups(GroupQuery(since=T0 + timedelta(days=2), until=T0 + timedelta(days=2))).order == []

    def test_class_filter_keeps_groups_with_a_run_of_that_class(self, store: RunStore) -> None:
        _failed(store, "a", "fp_data", T0, failure_class="data")
        _failed(store, "b", "fp_net", T0, failure_class="unavailable")
        assert store.failure_groups(GroupQuery(failure_class="data")).order == ["fp_data"]
        assert store.failure_groups(GroupQuery(failure_class="data", since=T0)).counts == {"fp_data": 1}
        assert store.failure_groups(GroupQuery(failure_class="data", until=T0)).counts == {"fp_data": 1}

    def test_resolve_regression_and_reopen(self, store: RunStore) -> None:
        _failed(store, "a", "fp", T0)
        assert store.resolve_failure("nope") is None and store.reopen_failure("nope") is None
        at = store.resolve_failure("fp", at=T0 + timedelta(hours=1))
        assert store.failure_groups(GroupQuery()).resolutions == {"fp": (at, T0)}
        _failed(store, "b", "fp", T0 + timedelta(hours=2), flow="other")
        assert store.failure_groups(GroupQuery()).resolutions == {"fp": (at, T0 + timedelta(hours=2))}
        # an access filter sees the last failure of its flows only
        assert store.failure_groups(GroupQuery(flows=("etl",))).resolutions == {"fp": (at, T0)}
        assert store.reopen_failure("fp") is True and store.reopen_failure("fp") is False
        assert store.failure_groups(GroupQuery()).resolutions == {}

    @pytest.mark.parametrize("bad", [GroupQuery(limit=0), GroupQuery(limit=501), GroupQuery(sort="name")])
    def test_bad_queries_are_refused(self, store: RunStore, bad: GroupQuery) -> None:
        with pytest.raises(ValueError):
            store.failure_groups(bad)

    def test_long_messages_are_bounded(self, store: RunStore) -> None:
        _failed(store, "a", "fp", T0, error_message="x" * 10_000)
        assert len(store.failure_groups(GroupQuery()).rows[0].error_message) == 1000


class TestSQLite(GroupConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store


@pytest.mark.postgres
class TestPostgres(GroupConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store


def _backfill_check(url: str) -> None:
    """Runs recorded before migration 0003 are counted when it adds the group tables."""
    store = RunStore(url, timeout=5, migrate=False)
    try:
        upgrade(store._write, "0002")
        with store._write.begin() as conn:
            for i, (flow, fp, day) in enumerate([("a", "fp", 0), ("b", "fp", 2), ("a", "other", 1)]):
                ts = (T0 + timedelta(days=day)).replace(tzinfo=None)
                conn.execute(
                    text(
                        "INSERT INTO rd_run (run_id, orchestrator, flow_id, run_key, status, attempt, fingerprint, "
                        "error_type, finished_at, spooled, blobs_expired, created_at, updated_at) VALUES "
                        "(:id, 'python', :flow, :key, 'failed', 1, :fp, 'E', :ts, false, false, :ts, :ts)"
                    ),
                    {"id": run_id_at(T0 + timedelta(days=day)), "flow": flow, "key": f"k{i}", "fp": fp, "ts": ts},
                )
        store.upgrade()
        page = store.failure_groups(GroupQuery())
        assert page.counts == {"fp": 2, "other": 1} and page.order == ["fp", "other"]
        fp_rows = [r for r in page.rows if r.fingerprint == "fp"]
        assert {r.flow_id for r in fp_rows} == {"a", "b"}
        assert max(r.last_seen for r in fp_rows) == T0 + timedelta(days=2)
        assert store.failure_groups(GroupQuery(since=T0 + timedelta(days=1))).counts == {"fp": 1, "other": 1}
    finally:
        store.close()


def test_migration_backfills_groups_on_sqlite(tmp_path: Path) -> None:
    _backfill_check(f"sqlite:///{tmp_path}/old.db")


@pytest.mark.postgres
def test_migration_backfills_groups_on_postgres(pg_url: str) -> None:
    with temporary_database() as url:
        _backfill_check(url)


def test_the_failed_runs_index_covers_exactly_the_runs_groups_count() -> None:
    from rundossier.core.status import FAILURES
    from rundossier.storage.db.models import FAILED_INDEX_WHERE

    statuses = ", ".join(f"'{s}'" for s in sorted(str(s) for s in FAILURES))
    assert FAILED_INDEX_WHERE == f"fingerprint IS NOT NULL AND status IN ({statuses})"
