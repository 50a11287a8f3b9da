"""Recording artifacts: size and checksum from fsspec (local files, S3 on a moto server), missing
inputs, masking, batching of huge manifests, the current step, and the writer's spool when the
database is locked."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import rundossier
from rundossier import Recorder
from rundossier.record import recorder as recorder_module
from rundossier.settings import Settings
from tests.s3server import create_bucket, moto_s3_server, s3_client, storage_options


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings.resolve(explicit={"home": str(tmp_path / "home"), **extra})


def _artifacts(rec: Recorder, run_id: str) -> list[object]:
    return rec.store.list_artifacts(run_id, limit=500)[0]


def test_a_local_output_gets_its_size_and_sha256_and_a_missing_input_is_recorded_missing(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path))
    out = tmp_path / "out.csv"
    out.write_bytes(b"a,b\n1,2\n")
    with rec.run("etl") as run, run.step("load") as step:
        step.artifact(str(tmp_path / "nowhere.csv"), role="input", kind="csv")  # no error for the task
        step.artifact(str(out), kind="csv")
        step.artifact(f"file://{tmp_path}", role="input")
    missing, written, folder = _artifacts(rec, run.run_id)
    assert (missing.role, missing.present, missing.size, missing.kind) == ("input", False, None, "csv")
    assert missing.uri == f"file://{tmp_path}/nowhere.csv"
    assert (written.role, written.present, written.size) == ("output", True, 8)
    assert written.checksum == "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (folder.present, folder.size, folder.note) == (True, None, "a directory")
    assert rec.store.get_step(run.run_id, "load").status == "success"


def test_given_size_and_checksum_are_kept_and_big_files_are_not_hashed(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path, artifact_hash_max_bytes=4))
    big = tmp_path / "big.bin"
    big.write_bytes(b"0123456789")
    with rec.run("etl") as run, run.step("s") as step:
        step.artifact("bigquery://project/dataset.table", size=123, checksum="rows:42", kind="table")
        step.artifact(str(big))
    given, not_hashed = _artifacts(rec, run.run_id)
    assert (given.size, given.checksum, given.present, given.kind) == (123, "rows:42", None, "table")
    assert (not_hashed.size, not_hashed.checksum) == (10, None)
    assert "RUNDOSSIER_ARTIFACT_HASH_MAX_BYTES" in (not_hashed.note or "")


def test_credentials_in_a_uri_are_masked(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path))
    secret = "hunter2-very-secret-password"
    with rec.run("etl") as run, run.step("s") as step:
        step.artifact(f"postgresql://loader:{secret}@db.internal:5432/warehouse", role="input", size=0)
        step.artifact(f"https://example.com/data.csv?token={secret}", role="input", size=1)
    rows = _artifacts(rec, run.run_id)
    assert len(rows) == 2 and all(secret not in r.uri for r in rows)
    assert rows[0].uri.startswith("postgresql://loader:") and "db.internal" in rows[0].uri


def test_bad_calls_warn_and_never_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(_settings(tmp_path))
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        with rec.run("etl") as run, run.step("s") as step:
            step.artifact("s3://b/k", role="written")
            step.artifact("   ")
            step.artifact("s3://b/k", size=-1)
        assert rundossier.artifact("s3://b/k") is False  # outside any step
    text = caplog.text
    assert "'input' or 'output'" in text and "needs a URI" in text and "number of bytes" in text
    assert "no step is being recorded here" in text
    assert _artifacts(rec, run.run_id) == []


def test_rundossier_artifact_records_on_the_current_step(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path))
    with rec.run("etl") as run:
        with run.step("extract"):
            assert rundossier.artifact("s3://lake/raw", size=5, checksum="etag:x") is True
        with run.step("load"):
            rundossier.artifact("s3://lake/raw", role="input", size=5, checksum="etag:x")
    rows = _artifacts(rec, run.run_id)
    assert [(r.step_id, r.role) for r in rows] == [("extract", "output"), ("load", "input")]


def test_a_huge_manifest_is_written_in_bounded_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(_settings(tmp_path))
    writes: list[int] = []
    real = rec._write_artifacts

    def counting(step: recorder_module.StepHandle) -> None:
        writes.append(len(step.pending_artifacts))
        real(step)

    monkeypatch.setattr(rec, "_write_artifacts", counting)
    n = 100_000
    most = 0
    with rec.run("etl") as run, run.step("fan_out") as step:
        for i in range(n):
            step.artifact(f"s3://lake/part-{i:06d}.parquet", size=i, checksum=f"etag:{i}")
            most = max(most, len(step.pending_artifacts))
    assert most < recorder_module.ARTIFACT_BATCH
    assert max(writes) <= recorder_module.ARTIFACT_BATCH and sum(writes) == n
    assert rec.store.count_artifacts(run.run_id) == n
    page, cursor = rec.store.list_artifacts(run.run_id, limit=500)
    assert len(page) == 500 and cursor is not None


def test_a_locked_database_spools_artifacts_and_flush_delivers_them(tmp_path: Path) -> None:
    settings = _settings(tmp_path, db_timeout=0.2)
    rec = Recorder(settings)
    _ = rec.store
    db = settings.db_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with rec.run("locked_flow", run_key="k1") as run, run.step("s") as step:
            step.artifact("s3://lake/a", size=1, checksum="etag:a")
            step.artifact("s3://lake/b", role="input", size=2, checksum="etag:b")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert rec.spool.pending()
    report = rec.flush()
    assert report.failed == 0 and rec.spool.pending() == []
    row = rec.store.find_run("python", "locked_flow", "k1")
    assert row is not None
    assert [(a.uri, a.role) for a in _artifacts(rec, row.run_id)] == [
        ("s3://lake/a", "output"),
        ("s3://lake/b", "input"),
    ]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


def test_s3_artifacts_take_the_etag(tmp_path: Path, s3_endpoint: str) -> None:
    bucket = create_bucket(s3_endpoint)
    client = s3_client(s3_endpoint)
    try:
        put = client.put_object(Bucket=bucket, Key="lake/x.parquet", Body=b"parquet bytes")
    finally:
        client.close()
    rec = Recorder(_settings(tmp_path, storage_url=f"s3://{bucket}/rd", storage_options=storage_options(s3_endpoint)))
    with rec.run("etl") as run, run.step("s") as step:
        step.artifact(f"s3://{bucket}/lake/x.parquet")
        step.artifact(f"s3://{bucket}/lake/missing.parquet", role="input")
    found, missing = _artifacts(rec, run.run_id)
    assert (found.present, found.size, found.checksum) == (True, 13, "etag:" + put["ETag"].strip('"'))
    assert (missing.present, missing.size) == (False, None)
