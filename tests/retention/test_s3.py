"""Sweeps against S3 (moto's server on loopback): deletes go in DeleteObjects batches of 1000 keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rundossier.retention import sweep, sweep_orphans
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.retention.helpers import NOW, all_keys, make_run, put_all
from tests.s3server import create_bucket, storage_options

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_blobs(s3_server: str) -> BlobStore:
    return BlobStore(f"s3://{create_bucket(s3_server)}/rd", storage_options(s3_server))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(f"sqlite:///{tmp_path}/runs.db")
    yield s
    s.close()


@pytest.fixture
def s3_calls(s3_blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every S3 API call the blob store makes: (operation, keys in a DeleteObjects call)."""
    calls: list[tuple[str, int]] = []
    fs = s3_blobs.fs
    real = fs._call_s3

    async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        keys = len(kwargs.get("Delete", {}).get("Objects", ()))
        calls.append((method, keys))
        return await real(method, *args, **kwargs)

    monkeypatch.setattr(fs, "_call_s3", counting)
    return calls


def test_a_sweep_deletes_in_batches_of_1000_keys(
    sqlite_store: RunStore, s3_blobs: BlobStore, s3_calls: list[tuple[str, int]]
) -> None:
    pending: list[tuple[str, bytes]] = []
    for i in range(340):  # 340 expired runs x (log + its index + trace text + trace json) = 1360 keys
        make_run(sqlite_store, s3_blobs, "etl", age_days=40 + i / 100, failed_step=True, seq=i, defer=pending)
    kept = [make_run(sqlite_store, s3_blobs, "etl", age_days=1, failed_step=True, defer=pending)]
    put_all(s3_blobs, pending)
    s3_calls.clear()

    report = sweep(sqlite_store, s3_blobs, now=NOW, batch_size=500)

    assert report.complete and report.totals()["runs_removed"] == 340
    assert report.totals()["blobs_removed"] == 1360
    deletes = [n for op, n in s3_calls if op == "delete_objects"]
    assert deletes == [1000, 360]
    assert not [op for op, _ in s3_calls if op == "delete_object"]  # never one request per blob
    assert all_keys(s3_blobs) == set(kept[0].keys)


def test_smaller_sweep_batches_make_one_call_per_batch(
    sqlite_store: RunStore, s3_blobs: BlobStore, s3_calls: list[tuple[str, int]]
) -> None:
    pending: list[tuple[str, bytes]] = []
    for i in range(60):
        make_run(sqlite_store, s3_blobs, "etl", age_days=40, failed_step=True, seq=i, defer=pending)
    put_all(s3_blobs, pending)
    s3_calls.clear()
    sweep(sqlite_store, s3_blobs, now=NOW, batch_size=25)
    assert [n for op, n in s3_calls if op == "delete_objects"] == [
        100,
        100,
        40,
    ]  # 4 blobs per run (log, its index, trace text, trace json)
    assert not all_keys(s3_blobs)


def test_orphans_on_s3(sqlite_store: RunStore, s3_blobs: BlobStore) -> None:
    live = make_run(sqlite_store, s3_blobs, "etl", age_days=3, failed_step=True)
    ghost = make_run(sqlite_store, s3_blobs, "etl", age_days=3, failed_step=True)
    with sqlite_store.transaction("forget a run") as conn:
        conn.exec_driver_sql("DELETE FROM rd_run WHERE run_id = ?", (ghost.run_id,))
    report = sweep_orphans(sqlite_store, s3_blobs, now=NOW)
    assert report.complete and report.runs_without_row == 1 and report.blobs_removed == 4
    assert all_keys(s3_blobs) == set(live.keys)
