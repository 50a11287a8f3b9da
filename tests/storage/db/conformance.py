"""The run store contract, run against every backend (SQLite and PostgreSQL) by subclassing.

A subclass provides a `store` fixture giving an empty RunStore.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from rundossier.core.ids import new_run_id
from rundossier.errors import RunNotFound
from rundossier.storage.db import RunQuery, RunStore, WriteBatch


def _run(store: RunStore, key: str, flow: str = "etl", **extra: object) -> str:
    values = {"orchestrator": "python", "flow_id": flow, "run_key": key, "status": "running", "attempt": 1}
    values.update(extra)
    return store.upsert_run(values)


class StoreConformance:
    # -- runs: idempotent upserts and merge rules --------------------------------------------------
    def test_upsert_is_idempotent_on_the_run_key(self, store: RunStore) -> None:
        a = _run(store, "k")
        b = _run(store, "k", status="success")
        assert a == b
        assert store.get_run(a).status == "success"
        assert store.count_runs() == 1

    def test_omitted_columns_keep_their_values(self, store: RunStore) -> None:
        rid = _run(store, "k", host="h1", tags={"team": "data"})
        _run(store, "k", status="failed", error_type="ValueError")
        run = store.get_run(rid)
        assert (run.host, run.tags, run.error_type, run.status) == ("h1", {"team": "data"}, "ValueError", "failed")

    @pytest.mark.parametrize("terminal", ["success", "failed", "crashed", "cancelled", "skipped", "upstream_failed"])
    @pytest.mark.parametrize("late", ["running", "queued", "paused"])
    def test_a_late_active_status_does_not_resurrect_a_finished_run(
        self, store: RunStore, terminal: str, late: str
    ) -> None:
        rid = _run(store, "k", status=terminal)
        _run(store, "k", status=late)
        assert store.get_run(rid).status == terminal

    def test_a_newer_attempt_starts_over(self, store: RunStore) -> None:
        rid = _run(store, "k", status="failed", error_type="E", error_message="m", trace_uri="memory://t")
        _run(store, "k", status="running", attempt=2)
        run = store.get_run(rid)
        assert (run.status, run.attempt, run.error_type, run.error_message, run.trace_uri) == (
            "running",
            2,
            None,
            None,
            None,
        )

    def test_an_older_attempt_never_wins(self, store: RunStore) -> None:
        rid = _run(store, "k", status="running", attempt=3)
        _run(store, "k", status="failed", attempt=2, error_type="Old")
        run = store.get_run(rid)
        assert (run.status, run.attempt, run.error_type) == ("running", 3, None)

    def test_unknown_attempt_merges_into_the_current_one(self, store: RunStore) -> None:
        rid = _run(store, "k", status="running", attempt=2)
        store.upsert_run(
            {"orchestrator": "python", "flow_id": "etl", "run_key": "k", "status": "failed", "error_type": "E"},
            attempt_known=False,
        )
        run = store.get_run(rid)
        assert (run.status, run.attempt, run.error_type) == ("failed", 2, "E")

    def test_same_key_in_another_orchestrator_is_another_run(self, store: RunStore) -> None:
        a = _run(store, "k")
        b = store.upsert_run({"orchestrator": "airflow", "flow_id": "etl", "run_key": "k", "status": "running"})
        assert a != b

    @pytest.mark.parametrize(
        "flow,key",
        [
            ("dag.with.dots", "manual__2026-11-22T00:00:00+00:00"),
            ("my flow/with slash", "scheduled__2026-01-01T00:00:00+00:00"),
            ("ünïcødé ✓", "key with 'quotes' and \"doubles\""),
            ("x" * 250, "y" * 250),
        ],
    )
    def test_odd_ids_round_trip(self, store: RunStore, flow: str, key: str) -> None:
        rid = _run(store, key, flow=flow)
        run = store.get_run(rid)
        assert (run.flow_id, run.run_key) == (flow, key)
        assert store.find_run("python", flow, key).run_id == rid

    def test_times_come_back_as_aware_utc(self, store: RunStore) -> None:
        start = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC)
        rid = _run(store, "k", started_at=start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")))
        got = store.get_run(rid).started_at
        assert got == start and got.tzinfo is not None and got.utcoffset() == timedelta(0)

    def test_error_message_on_the_row_is_bounded(self, store: RunStore) -> None:
        rid = _run(store, "k", status="failed", error_message="x" * 100_000)
        msg = store.get_run(rid).error_message
        assert len(msg) <= 4000 and "chars cut" in msg

    @pytest.mark.parametrize(
        "bad", ["nope", "run_../../etc/passwd", "run_'; DROP TABLE rd_run; --", "", "run_\n", "run_%00"]
    )
    def test_unknown_and_hostile_run_ids_are_not_found(self, store: RunStore, bad: str) -> None:
        _run(store, "k")
        with pytest.raises(RunNotFound):
            store.get_run(bad)

    def test_a_well_formed_but_unknown_id_is_not_found(self, store: RunStore) -> None:
        with pytest.raises(RunNotFound):
            store.get_run(new_run_id())

    # -- steps -------------------------------------------------------------------------------------
    def test_step_tries_are_separate_rows_and_merge_per_try(self, store: RunStore) -> None:
        rid = _run(store, "k")
        store.upsert_step({"run_id": rid, "step_id": "load", "try_number": 1, "status": "running", "upstream": ["t"]})
        store.upsert_step({"run_id": rid, "step_id": "load", "try_number": 1, "status": "failed", "error_type": "E"})
        store.upsert_step({"run_id": rid, "step_id": "load", "try_number": 2, "status": "success"})
        store.upsert_step({"run_id": rid, "step_id": "load", "try_number": 1, "status": "running"})  # late event
        steps = {(s.step_id, s.try_number): s for s in store.list_steps(rid)}
        assert steps["load", 1].status == "failed" and steps["load", 1].upstream == ["t"]
        assert steps["load", 1].error_type == "E"
        assert steps["load", 2].status == "success"
        assert store.get_step(rid, "load").try_number == 2
        assert store.get_step(rid, "load", 1).status == "failed"
        assert store.get_step(rid, "nope") is None

    def test_log_line_counts_only_grow(self, store: RunStore) -> None:
        rid = _run(store, "k")
        store.upsert_step({"run_id": rid, "step_id": "s", "try_number": 1, "status": "running", "log_lines_stdout": 10})
        store.upsert_step({"run_id": rid, "step_id": "s", "try_number": 1, "status": "success", "log_lines_stdout": 3})
        assert store.get_step(rid, "s").log_lines_stdout == 10

    # -- batches, root causes, events ------------------------------------------------------------
    def test_the_first_failing_step_is_the_root_cause(self, store: RunStore) -> None:
        rid = _run(store, "k")
        b = WriteBatch()
        b.root_cause({"run_id": rid, "root_step_id": "extract", "error_type": "First", "trace_uri": "memory://a"})
        b.root_cause({"run_id": rid, "root_step_id": "load", "error_type": "Second", "trace_uri": "memory://b"})
        store.write(b)
        run = store.get_run(rid)
        assert (run.root_step_id, run.error_type, run.trace_uri) == ("extract", "First", "memory://a")

    @pytest.mark.parametrize("order", [(1, 2, 3), (3, 2, 1), (2, 3, 1)])
    def test_the_root_steps_latest_failed_try_is_the_runs_error_in_any_order(
        self, store: RunStore, order: tuple[int, ...]
    ) -> None:
        rid = _run(store, "k")
        errors = {1: ("Timeout", "fp1"), 2: ("ValueError", "fp2"), 3: ("KeyError", None)}
        for n in order:
            error_type, fp = errors[n]
            cause = {"run_id": rid, "root_step_id": "load", "root_try_number": n, "error_type": error_type}
            cause |= {"trace_uri": f"memory://load/{n}/trace.txt.gz", "fingerprint": fp, "failure_class": f"c{n}"}
            store.write(WriteBatch().root_cause(cause))
        other = {"run_id": rid, "root_step_id": "other", "root_try_number": 9, "error_type": "X"}
        store.write(WriteBatch().root_cause(other))  # not the root step: changes nothing
        run = store.get_run(rid)
        assert (run.root_step_id, run.root_try_number, run.error_type) == ("load", 3, "KeyError")
        assert (run.trace_uri, run.failure_class) == ("memory://load/3/trace.txt.gz", "c3")
        assert run.fingerprint is None  # the latest try had none: not the earlier try's

    def test_a_batch_is_one_transaction(self, store: RunStore) -> None:
        rid = _run(store, "k")
        b = WriteBatch().step({"run_id": rid, "step_id": "a", "try_number": 1, "status": "success"})
        b.step({"run_id": rid, "step_id": "b", "try_number": 1})  # no status: refused
        with pytest.raises(ValueError):
            store.write(b)
        assert store.list_steps(rid) == []

    def test_batch_round_trips_through_json(self, store: RunStore) -> None:
        b = WriteBatch().run(
            {"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running", "attempt": 1}
        )
        b.event({"run_id": "x", "kind": "k", "summary": "s"})
        again = WriteBatch.from_json(b.to_json())
        assert again == b

    def test_events_come_back_in_time_order(self, store: RunStore) -> None:
        rid = _run(store, "k")
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        store.add_events(
            [
                {"run_id": rid, "kind": "b", "ts": t0 + timedelta(seconds=2), "summary": "second", "data": {"n": 2}},
                {"run_id": rid, "kind": "a", "ts": t0, "summary": "first"},
            ]
        )
        events = store.list_events(rid)
        assert [e.summary for e in events] == ["first", "second"]
        assert events[1].data == {"n": 2}

    # -- listing and pagination --------------------------------------------------------------------
    def test_runs_list_newest_first_with_filters(self, store: RunStore) -> None:
        ids = [
            _run(store, f"k{i}", flow="a" if i % 2 else "b", status="failed" if i % 3 == 0 else "success")
            for i in range(12)
        ]
        page = store.list_runs(limit=100)
        assert [r.run_id for r in page.items] == list(reversed(ids))
        assert {r.flow_id for r in store.list_runs(RunQuery(flow_id="a"), limit=100).items} == {"a"}
        failed = store.list_runs(RunQuery(status=("failed",)), limit=100).items
        assert len(failed) == 4 and all(r.status == "failed" for r in failed)
        assert store.list_runs(RunQuery(orchestrator="airflow"), limit=100).items == []

    def test_search_treats_like_wildcards_literally(self, store: RunStore) -> None:
        _run(store, "100%_done")
        _run(store, "100 percent")
        assert [r.run_key for r in store.list_runs(RunQuery(q="0%_"), limit=10).items] == ["100%_done"]
        assert len(store.list_runs(RunQuery(q="100"), limit=10).items) == 2

    @pytest.mark.parametrize(
        ("q", "found"),
        [
            ("peer reset", ["reset"]),
            ("PEER RESET", ["reset"]),
            ("reset by peer", ["reset"]),
            ("nightly  104", ["reset"]),  # every word, each in any column
            ("nightly peer timeout", []),
            ("connectionreset", ["reset"]),
            ("TimeoutError", ["timeout"]),
            ("Nightly", ["reset", "timeout", "ok"]),
            ("KEY-OK", ["ok"]),
            ("warehouse", []),
        ],
    )
    def test_search_covers_flow_key_and_error_in_any_case(self, store: RunStore, q: str, found: list[str]) -> None:
        _run(store, "key-ok", flow="Nightly_load", status="success")
        _run(
            store,
            "key-reset",
            flow="nightly_load",
            status="failed",
            error_type="ConnectionResetError",
            error_message="[Errno 104] Connection reset by peer",
        )
        _run(store, "key-timeout", flow="nightly_export", status="crashed", error_type="TimeoutError")
        page = store.list_runs(RunQuery(q=q), limit=10).items
        assert sorted(r.run_key.removeprefix("key-") for r in page) == sorted(found)

    def test_search_pages_through_matches_only(self, store: RunStore) -> None:
        ids = [
            _run(store, f"k{i}", status="failed" if i % 2 else "success", error_message="disk full" if i % 2 else None)
            for i in range(9)
        ]
        first = store.list_runs(RunQuery(q="DISK"), limit=2)
        second = store.list_runs(RunQuery(q="DISK"), limit=10, cursor=first.next_cursor)
        assert [r.run_id for r in first.items + second.items] == [ids[i] for i in (7, 5, 3, 1)]
        assert second.next_cursor is None

    def test_time_range_uses_when_the_run_was_recorded(self, store: RunStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        rid = _run(store, "k")
        assert [r.run_id for r in store.list_runs(RunQuery(since=before), limit=10).items] == [rid]
        assert store.list_runs(RunQuery(until=before), limit=10).items == []
        assert store.list_runs(RunQuery(since=datetime.now(UTC) + timedelta(hours=1)), limit=10).items == []

    def test_pagination_has_no_gaps_or_duplicates_while_runs_arrive(self, store: RunStore) -> None:
        for i in range(25):
            _run(store, f"old{i}")
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_runs(limit=7, cursor=cursor)
            seen += [r.run_id for r in page.items]
            _run(store, f"new{len(seen)}")  # a new run arrives between pages
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 25
        assert seen == sorted(seen, reverse=True)

    @pytest.mark.parametrize("limit", [0, -1, 501])
    def test_bad_limit_is_refused(self, store: RunStore, limit: int) -> None:
        with pytest.raises(ValueError):
            store.list_runs(limit=limit)

    @pytest.mark.parametrize("cursor", ["garbage", "run_../../x", "' OR 1=1 --"])
    def test_bad_cursor_is_refused(self, store: RunStore, cursor: str) -> None:
        with pytest.raises(ValueError):
            store.list_runs(cursor=cursor)

    def test_flows_are_distinct_and_sorted(self, store: RunStore) -> None:
        assert store.list_flows() == []
        for flow in ["b_flow", "a flow/with slash", "b_flow", "Z", "a flow/with slash"]:
            _run(store, f"k{new_run_id()}", flow=flow)
        assert store.list_flows() == sorted(["b_flow", "a flow/with slash", "Z"])
        assert store.list_flows(limit=1) == [sorted(["b_flow", "a flow/with slash", "Z"])[0]]

    @pytest.mark.parametrize("field", ["flow_id", "q", "orchestrator", "fingerprint"])
    def test_nul_characters_in_filters_are_refused(self, store: RunStore, field: str) -> None:
        with pytest.raises(ValueError, match="NUL"):
            store.list_runs(RunQuery(**{field: "a\x00b"}))

    def test_nul_characters_in_ids_find_nothing(self, store: RunStore) -> None:
        rid = _run(store, "k")
        assert store.find_run("python", "etl\x00", "k") is None
        assert store.get_step(rid, "s\x00") is None

    # -- retention policies ------------------------------------------------------------------------
    def test_policies_set_replace_list_delete(self, store: RunStore) -> None:
        store.set_policy("*", keep_days=30, keep_last=100, blob_days=None)
        store.set_policy("finance_*", keep_days=7, keep_last=None, blob_days=3)
        store.set_policy("finance_*", keep_days=14, keep_last=None, blob_days=3)
        policies = {p.flow_pattern: p for p in store.list_policies()}
        assert policies["finance_*"].keep_days == 14 and policies["*"].keep_last == 100
        assert store.delete_policy("finance_*") and not store.delete_policy("finance_*")

    # -- schema ------------------------------------------------------------------------------------
    def test_schema_matches_the_models_and_upgrade_is_idempotent(self, store: RunStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from rundossier.storage.db.models import SQLModel
        from rundossier.storage.db.schema import VERSION_TABLE, head_revision

        assert store.upgrade() == head_revision()
        with store._write.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
            version = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []
        assert version == head_revision()
