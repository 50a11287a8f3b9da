"""Leases, idempotent events and guessed start times: the store contract on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rundossier.core.dossier.classify import error_class
from rundossier.storage.db import RunStore, WriteBatch
from rundossier.storage.db.leases import LEASE_BEATS, LOST_HEARTBEAT_CLASS, LOST_HEARTBEAT_TYPE

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BEAT = timedelta(seconds=30)
LEASE = BEAT * LEASE_BEATS
HOLDER = "host/1/aa"


def _running_run(store: RunStore, key: str, beat: datetime = T0) -> str:
    return store.upsert_run(
        {
            "orchestrator": "python",
            "flow_id": "f",
            "run_key": key,
            "status": "running",
            "started_at": beat,
            "heartbeat_at": beat,
            "lease_until": beat + LEASE,
            "lease_holder": HOLDER,
        }
    )


def _running_step(
    store: RunStore, run_id: str, step_id: str, beat: datetime, *, lease: bool = True, holder: str = "host/1/aa"
) -> None:
    store.upsert_step(
        {
            "run_id": run_id,
            "step_id": step_id,
            "try_number": 1,
            "status": "running",
            "started_at": beat,
            "heartbeat_at": beat if lease else None,
            "lease_until": beat + LEASE if lease else None,
            "lease_holder": holder if lease else None,
        }
    )


class LeaseConformance:
    def test_a_run_past_its_lease_is_crashed_with_the_step_that_was_running(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        store.upsert_step({"run_id": run_id, "step_id": "done", "try_number": 1, "status": "success", "started_at": T0})
        # the process died before its first heartbeat; the step started after the run, so its own
        # lease outlives the run's by a little: it still died with the run
        _running_step(store, run_id, "work", T0 + timedelta(seconds=5))
        assert not store.reap_expired(now=T0 + LEASE - timedelta(seconds=1))
        reaped = store.reap_expired(now=T0 + LEASE + timedelta(seconds=1))
        assert (reaped.runs, reaped.steps) == ([run_id], [(run_id, "work", 1)])
        run = store.get_run(run_id)
        assert (run.status, run.root_step_id, run.error_type, run.failure_class) == (
            "crashed",
            "work",
            LOST_HEARTBEAT_TYPE,
            "killed",
        )
        assert run.finished_at == T0 and "no heartbeat since 2026-12-01T12:00:00+00:00" in (run.error_message or "")
        assert store.get_step(run_id, "done").status == "success"
        step = store.get_step(run_id, "work")
        assert step.status == "crashed" and step.error_type == LOST_HEARTBEAT_TYPE
        assert [e.kind for e in store.list_events(run_id)].count("heartbeat_lost") == 2

    def test_renewed_leases_are_not_reaped(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        _running_step(store, run_id, "work", T0)
        later = T0 + LEASE * 3
        store.renew_leases([run_id], [(run_id, "work", 1)], now=later, until=later + LEASE)
        assert not store.reap_expired(now=later + LEASE - timedelta(seconds=1))
        assert store.get_run(run_id).status == "running"

    def test_finished_rows_are_not_renewed_or_reaped(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "success"})
        store.renew_leases([run_id], [], now=T0 + LEASE, until=T0 + LEASE * 2)
        assert store.get_run(run_id).heartbeat_at == T0
        assert not store.reap_expired(now=T0 + LEASE * 10)
        assert store.get_run(run_id).status == "success"

    def test_rows_without_a_lease_are_left_to_their_orchestrator(self, store: RunStore) -> None:
        run_id = store.upsert_run({"orchestrator": "airflow", "flow_id": "dag", "run_key": "r", "status": "running"})
        _running_step(store, run_id, "task", T0, lease=False)
        assert not store.reap_expired(now=T0 + timedelta(days=30))

    def test_a_step_alive_in_another_process_outlives_its_run(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        now = T0 + LEASE + timedelta(seconds=1)
        _running_step(store, run_id, "remote", now - timedelta(seconds=10), holder="other/2/bb")
        reaped = store.reap_expired(now=now)
        assert reaped.runs == [run_id] and reaped.steps == []
        assert store.get_step(run_id, "remote").status == "running"
        assert store.get_run(run_id).root_step_id == "_run"

    def test_an_only_step_lease_crashes_the_step_and_not_the_run(self, store: RunStore) -> None:
        run_id = store.upsert_run({"orchestrator": "airflow", "flow_id": "dag", "run_key": "r", "status": "running"})
        _running_step(store, run_id, "task", T0)
        reaped = store.reap_expired(now=T0 + LEASE + timedelta(seconds=1))
        assert (reaped.runs, reaped.steps) == ([], [(run_id, "task", 1)])
        assert store.get_run(run_id).status == "running"

    def test_reaping_twice_or_from_two_readers_changes_nothing_more(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        now = T0 + LEASE * 2
        assert store.reap_expired(now=now)
        assert not store.reap_expired(now=now)
        assert [e.kind for e in store.list_events(run_id)].count("heartbeat_lost") == 1

    def test_the_real_end_replaces_a_crash_found_while_the_database_was_out_of_reach(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        store.reap_expired(now=T0 + LEASE * 2)
        store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "success"})
        store.clear_run_outcome(run_id)
        run = store.get_run(run_id)
        assert (run.status, run.error_type, run.root_step_id) == ("success", None, None)

    # -- replaying a batch --------------------------------------------------------------------------
    def test_a_batch_replayed_twice_adds_its_events_once(self, store: RunStore) -> None:
        run_id = _running_run(store, "k")
        batch = WriteBatch().event({"run_id": run_id, "kind": "first_work", "ts": T0, "summary": "go"})
        data = batch.to_json()
        store.write(WriteBatch.from_json(data))
        store.write(WriteBatch.from_json(data))
        assert [e.kind for e in store.list_events(run_id)] == ["first_work"]

    # -- guessed start times -------------------------------------------------------------------------
    def test_a_guessed_start_fills_a_new_row_and_never_replaces_a_known_one(self, store: RunStore) -> None:
        key = {"orchestrator": "prefect", "flow_id": "f", "run_key": "r"}
        guess = T0 + timedelta(hours=1)
        new = store.write(WriteBatch().run({**key, "status": "running", "started_at": T0}))
        assert new.started_at == [T0]
        merged = store.write(
            WriteBatch().run(
                {**key, "status": "crashed", "started_at": guess}, attempt_known=False, fill=["started_at"]
            )
        )
        assert merged.started_at == [T0]
        assert store.get_run(merged.run_ids[0]).started_at == T0
        other = {"orchestrator": "prefect", "flow_id": "f", "run_key": "fresh"}
        fresh = store.write(WriteBatch().run({**other, "status": "running", "started_at": guess}, fill=["started_at"]))
        assert fresh.started_at == [guess]


def test_the_lease_class_is_what_the_classifier_calls_a_dead_process() -> None:
    assert error_class("crashed", (), LOST_HEARTBEAT_TYPE, "no heartbeat since ...") == LOST_HEARTBEAT_CLASS


class TestSQLite(LeaseConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store


@pytest.mark.postgres
class TestPostgres(LeaseConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store
