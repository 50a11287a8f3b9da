"""Never break the host, never lose the trace: storage down and database locked during a failure."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.config import Settings
from rundossier.readside import run_trace
from tests.s3server import free_port


class PipelineError(RuntimeError):
    pass


def _fail() -> None:
    raise PipelineError("the step's own error")


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings.resolve(explicit={"home": str(tmp_path / "home"), **extra})


def test_storage_unreachable_keeps_the_exception_and_spools_the_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = _settings(
        tmp_path,
        storage_url="s3://rundossier-test/blobs",
        storage_options={
            "key": "k",
            "secret": "s",
            "client_kwargs": {"endpoint_url": dead, "region_name": "us-east-1"},
        },
    )
    rec = Recorder(down)
    with caplog.at_level(logging.WARNING, logger="rundossier"), pytest.raises(PipelineError) as excinfo:
        with rec.run("f") as run, run.step("s"):
            print("some output")
            _fail()
    assert str(excinfo.value) == "the step's own error"
    assert any("spooled" in r.getMessage() for r in caplog.records)
    row = rec.store.get_run(run.run_id)
    assert row.status == "failed" and row.spooled and row.error_type.endswith("PipelineError")
    assert len(rec.spool.pending()) == 1

    # storage comes back (here: the same settings with local storage), `flush` delivers it
    up = Recorder(_settings(tmp_path))
    report = up.flush()
    assert (report.delivered, report.failed, report.remaining) == (1, 0, 0)
    assert up.spool.pending() == []
    row = up.store.get_run(run.run_id)
    assert not row.spooled and not up.store.get_step(run.run_id, "s").spooled
    # the URI recorded while storage was down is the one the trace now lives at
    assert row.trace_uri.startswith("s3://rundossier-test/blobs/")


def test_spooled_trace_is_delivered_to_the_uri_the_row_points_at(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the storage directory should be")
    rec = Recorder(_settings(tmp_path, storage_url=f"file://{blocker}/blobs"))
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert rec.store.get_run(run.run_id).spooled
    blocker.unlink()  # storage is fixed
    assert rec.flush().delivered == 1
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert "PipelineError: the step's own error" in text


def test_database_locked_keeps_the_exception_and_flush_delivers_rows_and_trace(tmp_path: Path) -> None:
    settings = _settings(tmp_path, db_timeout=0.2)
    rec = Recorder(settings)
    _ = rec.store  # create the schema before locking
    db = settings.db_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(PipelineError) as excinfo:
            with rec.run("locked_flow", run_key="k1") as run, run.step("s"):
                _fail()
        assert str(excinfo.value) == "the step's own error"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert rec.store.find_run("python", "locked_flow", "k1") is None
    assert len(rec.spool.pending()) >= 1
    report = rec.flush()
    assert report.failed == 0 and rec.spool.pending() == []
    row = rec.store.find_run("python", "locked_flow", "k1")
    assert row is not None and row.status == "failed" and not row.spooled
    assert "PipelineError" in run_trace(rec.store, rec.blobs, row.run_id).text
    assert rec.store.get_step(row.run_id, "s").status == "failed"


def test_the_next_successful_write_flushes_the_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rundossier import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "SPOOL_CHECK_EVERY_S", 0.0)
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    rec = Recorder(_settings(tmp_path, storage_url=f"file://{blocker}/b"))
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert rec.spool.pending()
    blocker.unlink()
    with rec.run("g") as ok, ok.step("t"):
        pass
    assert rec.spool.pending() == []
    assert not rec.store.get_run(run.run_id).spooled


def test_a_broken_recorder_never_changes_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(_settings(tmp_path))

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("bug inside rundossier")

    monkeypatch.setattr(rec.store, "upsert_step", boom)
    monkeypatch.setattr(rec.delivery, "deliver", boom)
    with rec.run("f") as run, run.step("s"):
        value = 42
    assert value == 42
    with pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()


def test_an_unwritable_home_still_lets_the_exception_through(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    settings = Settings.resolve(explicit={"home": str(home), "storage_url": f"file://{blocker}/b"})
    rec = Recorder(settings)
    _ = rec.store
    (home / "spool").write_text("not a directory")  # the spool cannot be created
    with caplog.at_level(logging.WARNING, logger="rundossier"), pytest.raises(PipelineError):
        with rec.run("f") as run, run.step("s"):
            _fail()
    assert any("could not" in r.getMessage() for r in caplog.records)
