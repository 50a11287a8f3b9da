"""The artifact manifest rows: written in batches (idempotently), read by run (paged, in order),
by URI (newest first, paged), and the producer an input links to; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rundossier.core.artifacts import uri_key
from rundossier.storage.db import RunStore, WriteBatch

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _run(store: RunStore, key: str) -> str:
    return store.upsert_run({"orchestrator": "python", "flow_id": "etl", "run_key": key, "status": "running"})


def _art(run_id: str, step: str, role: str, uri: str, at: datetime, **extra: object) -> dict[str, object]:
    return {"run_id": run_id, "step_id": step, "try_number": 1, "role": role, "uri": uri, "recorded_at": at, **extra}


class ArtifactConformance:
    def test_a_batch_writes_artifacts_and_replaying_it_adds_nothing(self, store: RunStore) -> None:
        rid = _run(store, "a")
        batch = WriteBatch()
        for i in range(3):
            batch.artifact(_art(rid, "load", "output", f"s3://lake/part-{i}", T0, size=i, checksum=f"etag:{i}"))
        store.write(batch)
        store.write(WriteBatch.from_json(batch.to_json()))  # the spool delivers a batch again
        items, cursor = store.list_artifacts(rid)
        assert [(a.uri, a.size, a.checksum) for a in items] == [
            (f"s3://lake/part-{i}", i, f"etag:{i}") for i in range(3)
        ]
        assert cursor is None and all(a.uri_key == uri_key(a.uri) for a in items)

    def test_a_runs_artifacts_page_in_recording_order(self, store: RunStore) -> None:
        rid = _run(store, "a")
        batch = WriteBatch()
        for i in range(7):
            batch.artifact(_art(rid, "s", "input", f"file:///d/{i}", T0 + timedelta(seconds=i)))
        store.write(batch)
        seen: list[str] = []
        after = None
        while True:
            page, after = store.list_artifacts(rid, limit=3, after=after)
            seen += [a.uri for a in page]
            if after is None:
                break
        assert seen == [f"file:///d/{i}" for i in range(7)]
        assert [a.uri for a in store.list_artifacts(rid, role="output")[0]] == []

    def test_a_uri_lists_its_writes_and_reads_newest_first(self, store: RunStore) -> None:
        r1, r2, r3 = _run(store, "1"), _run(store, "2"), _run(store, "3")
        store.write(
            WriteBatch()
            .artifact(_art(r1, "extract", "output", "s3://lake/x", T0))
            .artifact(_art(r2, "load", "input", "s3://lake/x", T0 + timedelta(minutes=1)))
            .artifact(_art(r3, "load", "input", "s3://lake/x", T0 + timedelta(minutes=2)))
            .artifact(_art(r3, "load", "input", "s3://lake/other", T0 + timedelta(minutes=2)))
        )
        first, cursor = store.artifacts_of_uri("s3://lake/x", limit=2)
        assert [(a.run_id, a.role) for a in first] == [(r3, "input"), (r2, "input")]
        rest, end = store.artifacts_of_uri("s3://lake/x", limit=2, before=cursor)
        assert [(a.run_id, a.role) for a in rest] == [(r1, "output")] and end is None

    def test_the_producer_is_the_newest_earlier_write_by_another_step(self, store: RunStore) -> None:
        r1, r2, r3 = _run(store, "1"), _run(store, "2"), _run(store, "3")
        store.write(
            WriteBatch()
            .artifact(_art(r1, "extract", "output", "s3://lake/x", T0))
            .artifact(_art(r2, "extract", "output", "s3://lake/x", T0 + timedelta(minutes=5)))
            .artifact(_art(r3, "extract", "output", "s3://lake/x", T0 + timedelta(minutes=20)))
        )
        found = store.producer_of("s3://lake/x", before=T0 + timedelta(minutes=10), not_run_step=(r3, "load"))
        assert found is not None and (found.run_id, found.step_id) == (r2, "extract")
        # a step's own write is not its producer; nothing earlier: none
        assert store.producer_of("s3://lake/x", before=T0, not_run_step=(r1, "extract")) is None
        assert store.producer_of("s3://lake/y", before=T0 + timedelta(hours=1), not_run_step=(r3, "x")) is None

    def test_long_and_odd_uris_are_kept_whole_and_found(self, store: RunStore) -> None:
        rid = _run(store, "a")
        long_uri = "s3://lake/" + "p" * 5000
        store.write(WriteBatch().artifact(_art(rid, "s", "output", long_uri, T0, kind="k" * 300)))
        (row,) = store.artifacts_of_uri(long_uri)[0]
        assert row.uri == long_uri and row.kind is not None and len(row.kind) <= 80

    def test_bad_rows_are_refused(self, store: RunStore) -> None:
        rid = _run(store, "a")
        with pytest.raises(ValueError, match="unknown artifact columns"):
            store.write(WriteBatch().artifact({**_art(rid, "s", "input", "s3://x", T0), "colour": "red"}))
        with pytest.raises(ValueError, match="limit"):
            store.list_artifacts(rid, limit=0)


class TestSQLite(ArtifactConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store


class TestPostgres(ArtifactConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store
