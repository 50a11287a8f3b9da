"""Light step and event records read the same values as the ORM rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from rundossier.storage.db import RunStore
from rundossier.storage.db.models import EventRecord, StepRecord

STEP_FIELDS, EVENT_FIELDS = StepRecord._fields, EventRecord._fields

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _fill(store: RunStore) -> str:
    rid = store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "failed", "attempt": 1})
    store.upsert_step(
        {"run_id": rid, "step_id": "a", "try_number": 1, "status": "success", "started_at": T0,
         "finished_at": T0 + timedelta(seconds=2), "upstream": ["x", "y"], "spooled": True, "log_lines_stdout": 3}
    )  # fmt: skip
    store.upsert_step({"run_id": rid, "step_id": "b", "try_number": 2, "status": "running"})
    store.add_events(
        [
            {"run_id": rid, "kind": "first_work", "ts": T0 + timedelta(seconds=1), "step_id": "a", "try_number": 1},
            {"run_id": rid, "kind": "noise", "ts": T0, "data": {"n": 1, "nested": [1, "two"]}},
            {
                "run_id": rid,
                "kind": "step_failed",
                "ts": T0 + timedelta(seconds=3),
                "summary": "E: x",
                "data": {"chain": [{"type": "E", "message": "x"}]},
            },
        ]  # fmt: skip
    )
    return rid


class RecordConformance:
    def test_step_records_match_the_orm_rows(self, store: RunStore) -> None:
        rid = _fill(store)
        records = {(r.step_id, r.try_number): r for r in store.list_step_records(rid)}
        orm = {(s.step_id, s.try_number): s for s in store.list_steps(rid)}
        assert records.keys() == orm.keys()
        for key, rec in records.items():
            assert rec == tuple(getattr(orm[key], f) for f in STEP_FIELDS)
        a = records[("a", 1)]
        assert a.started_at == T0 and a.started_at.tzinfo is not None and a.upstream == ["x", "y"]
        assert a.spooled is True and records[("b", 2)].spooled is False

    def test_event_records_match_and_filter_by_kind(self, store: RunStore) -> None:
        rid = _fill(store)
        records = store.list_event_records(rid)
        orm = store.list_events(rid)
        assert [tuple(r) for r in records] == [tuple(getattr(e, f) for f in EVENT_FIELDS) for e in orm]
        assert records[0].data == {"n": 1, "nested": [1, "two"]}
        kinds = [r.kind for r in store.list_event_records(rid, {"first_work", "step_failed"})]
        assert kinds == ["first_work", "step_failed"]
        assert store.list_event_records(rid, set()) == []
        assert store.list_event_records("run_01JGNOSUCHRUN0000000000000") == []


class TestSQLite(RecordConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store

    def test_times_stored_with_an_offset_read_as_utc(self, store: RunStore) -> None:
        """Rows written by another tool may keep an offset in SQLite's text: records read them as UTC."""
        rid = _fill(store)
        with store.transaction("set a time with an offset") as conn:
            conn.execute(text("UPDATE rd_event SET ts = '2026-03-01T14:00:00+02:00' WHERE kind = 'noise'"))
            conn.execute(text("UPDATE rd_step SET started_at = '2026-03-01 12:00:00' WHERE step_id = 'a'"))
        noise = next(r for r in store.list_event_records(rid) if r.kind == "noise")
        assert noise.ts == datetime(2026, 3, 1, 12, 0, tzinfo=UTC) and noise.ts.utcoffset() == timedelta(0)
        a = next(r for r in store.list_step_records(rid) if r.step_id == "a")
        assert a.started_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.postgres
class TestPostgres(RecordConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store
