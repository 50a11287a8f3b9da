"""The orphan sweep on local storage: blobs no row points at go; live and recent ones stay."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rundossier.retention import sweep_orphans
from rundossier.storage.blobs import BlobStore, blob_key, log_part_name
from rundossier.storage.db import RunStore
from tests.retention.helpers import NOW, all_keys, make_run, run_id_at


def _forget(store: RunStore, run_id: str) -> None:
    with store.transaction("forget a run") as conn:
        conn.exec_driver_sql(
            "DELETE FROM rd_run WHERE run_id = ?"
            if store.dialect == "sqlite"
            else "DELETE FROM rd_run WHERE run_id = %s",
            (run_id,),
        )


def test_orphans_are_removed_and_everything_else_stays(store: RunStore, blobs: BlobStore, tmp_path: Path) -> None:
    t = datetime.now(UTC)  # rows get the wall clock as updated_at: the sweep runs two days "later"
    live = make_run(store, blobs, "etl", age_days=3, failed_step=True, now=t)
    ghost = make_run(store, blobs, "etl", age_days=3, failed_step=True, now=t)
    _forget(store, ghost.run_id)
    expired = make_run(store, blobs, "etl", age_days=3, now=t)
    store.update_run(expired.run_id, blobs_expired=True, blobs_expired_at=NOW)
    running = make_run(store, blobs, "etl", age_days=3, status="running", now=t)
    part = blob_key("python", "etl", running.run_id, "work", 1, log_part_name(1))
    blobs.put(part, b"x")  # a running step's spilled log part: live
    # a finished run with a log part left by a crashed try and an interrupted atomic write
    stray_part = blob_key("python", "etl", live.run_id, "other", 1, log_part_name(1))
    blobs.put(stray_part, gzip.compress(b"{}"))
    temp = tmp_path / "blobs" / "python" / "etl" / live.run_id / ".tmp-0123abcd"
    temp.write_bytes(b"partial")
    # a blob written a moment ago whose row has not arrived yet
    fresh = run_id_at(t + timedelta(days=2, minutes=-5))
    blobs.put(blob_key("python", "etl", fresh, "work", 1, "log.jsonl.gz"), b"y")
    # things that are not ours to judge
    (tmp_path / "blobs" / "python" / "etl" / "not-a-run").mkdir()
    (tmp_path / "blobs" / "README").write_text("hands off")

    dry = sweep_orphans(store, blobs, now=t + timedelta(days=2), dry_run=True)
    before = all_keys(blobs)
    report = sweep_orphans(store, blobs, now=t + timedelta(days=2))
    assert dry.to_json() | {"dry_run": False} == report.to_json()
    assert report.complete
    assert (report.runs_without_row, report.expired_runs_cleaned, report.unreferenced_blobs) == (1, 1, 2)
    assert report.skipped_active == 1 and report.skipped_recent == 1 and report.unknown == 2
    assert report.blobs_removed == 4 + 2 + 2  # the ghost: log, its index, trace, JSON; the expired: log, index
    left = all_keys(blobs)
    assert before - left == {*ghost.keys, *expired.keys, stray_part}
    assert set(live.keys) <= left and part in left
    assert not temp.exists()
    assert (tmp_path / "blobs" / "README").exists()


def test_recently_updated_finished_runs_are_left_for_later(store: RunStore, blobs: BlobStore) -> None:
    live = make_run(store, blobs, "etl", age_days=3)
    stray = blob_key("python", "etl", live.run_id, "x", 1, "log.jsonl.gz")
    blobs.put(stray, b"x")
    report = sweep_orphans(store, blobs, grace=timedelta(days=365 * 50))
    assert report.unreferenced_blobs == 0 and stray in all_keys(blobs)


def test_an_empty_store_is_fine(store: RunStore, blobs: BlobStore) -> None:
    report = sweep_orphans(store, blobs)
    assert report.complete and report.run_folders_scanned == 0


def test_a_negative_grace_is_refused(store: RunStore, blobs: BlobStore) -> None:
    with pytest.raises(ValueError, match="grace"):
        sweep_orphans(store, blobs, grace=timedelta(seconds=-1))


def test_the_walk_does_not_follow_symlinks_out_of_the_root(store: RunStore, blobs: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    make_run(store, blobs, "etl", age_days=3)
    os.symlink(outside, tmp_path / "blobs" / "python" / "linked")
    sweep_orphans(store, blobs, now=NOW + timedelta(days=30))
    assert (outside / "precious").exists()


def test_a_killed_steps_published_log_is_its_log_and_stays(store: RunStore, blobs: BlobStore) -> None:
    from rundossier.storage.blobs import LOG_LIVE

    t = datetime.now(UTC)
    killed = make_run(store, blobs, "etl", age_days=3, status="failed", log=False, now=t)
    live = blob_key("python", "etl", killed.run_id, "work", 1, LOG_LIVE)
    part = blob_key("python", "etl", killed.run_id, "work", 1, log_part_name(1))
    blobs.put(live, b"snapshot")
    blobs.put(part, b"part")
    stored = make_run(store, blobs, "etl", age_days=3, now=t)  # stored its log: a left-over snapshot goes
    leftover = blob_key("python", "etl", stored.run_id, "work", 1, LOG_LIVE)
    blobs.put(leftover, b"old snapshot")
    report = sweep_orphans(store, blobs, now=t + timedelta(days=2))
    assert report.complete and report.unreferenced_blobs == 1
    left = all_keys(blobs)
    assert live in left and part in left and leftover not in left


def test_a_run_whose_rows_wait_in_the_spool_keeps_its_blobs(store: RunStore, blobs: BlobStore, tmp_path: Path) -> None:
    """The database refused a task's rows (say, too many clients): its blobs are in storage and
    its rows wait in the spool, however long past the grace. The sweep leaves that run alone;
    once the spool is delivered, the folder is an ordinary run's."""
    from rundossier.record.writer import Writer
    from rundossier.storage.db import WriteBatch
    from rundossier.storage.spool import Spool, SpoolItem

    t = datetime.now(UTC)
    waiting = make_run(store, blobs, "etl", age_days=3, failed_step=True, now=t)
    rows = WriteBatch()
    run_row = store.get_run(waiting.run_id)
    assert run_row is not None
    rows.run({k: getattr(run_row, k) for k in ("run_id", "orchestrator", "flow_id", "run_key", "status", "trace_uri")})
    for step in store.list_steps(waiting.run_id):
        rows.step({k: getattr(step, k) for k in ("run_id", "step_id", "try_number", "status", "trace_uri", "log_uri")})
    _forget(store, waiting.run_id)  # as if the rows never reached the database
    spool = Spool(tmp_path / "spool")
    spool.put(SpoolItem(batch=rows.to_json(), reason="too many clients"))
    # a spooled blob (not in storage yet) names its run too
    blob_only = run_id_at(t - timedelta(days=3))
    spool.put(SpoolItem(blobs=[(blob_key("python", "etl", blob_only, "work", 1, "trace.txt.gz"), b"t")]))
    blobs.put(blob_key("python", "etl", blob_only, "work", 1, "log.jsonl.gz"), b"l")
    assert spool.run_ids() == {waiting.run_id, blob_only}

    later = t + timedelta(days=2)
    report = sweep_orphans(store, blobs, now=later, spool=spool)
    assert report.complete and report.skipped_spooled == 2 and report.blobs_removed == 0
    assert set(waiting.keys) <= all_keys(blobs)
    without = sweep_orphans(store, blobs, now=later, dry_run=True)  # what a sweep blind to the spool did
    assert without.runs_without_row == 2

    writer = Writer(lambda: blobs, lambda: store, spool)
    assert writer.flush().delivered == 2 and spool.run_ids() == set()
    after = sweep_orphans(store, blobs, now=later, spool=spool)
    # the run's rows arrived: its blobs are referenced; the blobs no row ever came for are orphans now
    assert after.skipped_spooled == 0 and after.runs_without_row == 1
    assert set(waiting.keys) <= all_keys(blobs)
    assert not [k for k in all_keys(blobs) if blob_only in k]
