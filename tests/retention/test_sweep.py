"""The sweep on SQLite and PostgreSQL with local blobs: what goes, what stays, accounting, resuming."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rundossier.core.retention.plan import Action, Because
from rundossier.core.retention.policy import PolicySet
from rundossier.errors import TraceExpired
from rundossier.read.reader import run_trace, step_trace
from rundossier.retention import sweep
from rundossier.retention.sweep import FlowReport, Sweeper, Target
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import GroupQuery, RunStore, WriteBatch
from tests.retention.helpers import NOW, all_keys, make_run, runs_of

TIMING = ("now", "started_at", "finished_at", "duration_s", "dry_run")


def _comparable(report: Any) -> dict[str, Any]:
    data = report.to_json()
    for k in TIMING:
        data.pop(k)
    return data


def _seed(store: RunStore, blobs: BlobStore) -> dict[str, list[Any]]:
    made: dict[str, list[Any]] = {"etl": [], "finance_daily": [], "keep": []}
    for i in range(12):  # one run every 5 days, every third failed with a trace
        made["etl"].append(make_run(store, blobs, "etl", age_days=i * 5, failed_step=i % 3 == 0, seq=i))
    made["etl"].append(make_run(store, blobs, "etl", age_days=200, status="running"))
    made["etl"].append(make_run(store, blobs, "etl", age_days=300, status="queued", log=False))
    for i in range(6):
        made["finance_daily"].append(make_run(store, blobs, "finance_daily", age_days=i, failed_step=True, seq=i))
    for i in range(3):
        made["keep"].append(make_run(store, blobs, "keep", age_days=i * 100, seq=i))
    store.set_policy("finance_*", keep_days=None, keep_last=2, blob_days=None)
    store.set_policy("keep", keep_days=0, keep_last=0, blob_days=0)
    store.set_policy("*", keep_days=40, keep_last=None, blob_days=12)
    return made


def test_sweep_removes_what_the_policy_says_and_accounts_for_it(store: RunStore, blobs: BlobStore) -> None:
    made = _seed(store, blobs)
    before = all_keys(blobs)
    report = sweep(store, blobs, now=NOW)
    assert report.complete and report.error is None
    etl = report.flow("etl")
    assert etl is not None
    # ages 45, 50, 55 are older than 40 days; 15..40 are older than blob_days 12
    assert (etl.runs_removed, etl.runs_expired, etl.active_runs) == (3, 6, 2)
    assert etl.by_rule == {"keep_days": 3, "blob_days": 6}
    assert etl.steps_removed == 3 and etl.events_removed == 3
    fin = report.flow("finance_daily")
    assert fin is not None and (fin.runs_removed, fin.by_rule) == (4, {"keep_last": 4})
    assert fin.blobs_removed == 4 * 4  # log, its index, trace text, trace json per run
    keep = report.flow("keep")
    assert keep is not None and keep.runs_removed == keep.runs_expired == 0

    left = {r.run_id: r for r in runs_of(store)}
    assert {m.run_id for m in made["etl"][9:12]}.isdisjoint(left)
    assert all(m.run_id in left for m in made["etl"][12:])  # old but active: kept
    assert {m.run_id for m in made["finance_daily"]} & set(left) == {m.run_id for m in made["finance_daily"][:2]}
    expired = [m for m in made["etl"][3:9]]
    for m in expired:
        assert left[m.run_id].blobs_expired and left[m.run_id].blobs_expired_at is not None
        assert not any(k in all_keys(blobs) for k in m.keys)
    removed_keys = before - all_keys(blobs)
    assert len(removed_keys) == report.totals()["blobs_removed"]
    assert report.totals()["bytes_removed"] == sum(f.bytes_removed for f in report.flows) > 0


def test_a_dry_run_reports_exactly_what_the_real_sweep_removes(store: RunStore, blobs: BlobStore) -> None:
    _seed(store, blobs)
    keys, count = all_keys(blobs), store.count_runs()
    dry = sweep(store, blobs, now=NOW, dry_run=True)
    assert all_keys(blobs) == keys and store.count_runs() == count  # nothing touched
    real = sweep(store, blobs, now=NOW)
    assert dry.dry_run and not real.dry_run
    assert _comparable(dry) == _comparable(real)
    assert real.totals()["runs_removed"] > 0
    again = sweep(store, blobs, now=NOW)
    assert again.totals()["runs_removed"] == again.totals()["runs_expired"] == 0


@pytest.mark.parametrize("batch_size", [1, 3, 5000])
def test_batch_size_does_not_change_the_outcome(store: RunStore, blobs: BlobStore, batch_size: int) -> None:
    _seed(store, blobs)
    report = sweep(store, blobs, now=NOW, batch_size=batch_size)
    assert report.totals()["runs_removed"] == 7 and report.totals()["runs_expired"] == 6


@pytest.mark.parametrize("bad", [0, -1, 5001, True, 2.5])
def test_bad_batch_sizes_are_refused(store: RunStore, blobs: BlobStore, bad: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be a whole number from 1 to 5000"):
        sweep(store, blobs, batch_size=bad)


def test_expired_traces_answer_gone_with_the_date_and_the_row_stays(store: RunStore, blobs: BlobStore) -> None:
    m = make_run(store, blobs, "etl", age_days=20, failed_step=True)
    store.set_policy("*", keep_days=None, keep_last=None, blob_days=7)
    sweep(store, blobs, now=NOW)
    run = store.get_run(m.run_id)
    assert run.blobs_expired and run.trace_uri and run.error_type == "ValueError"
    day = run.blobs_expired_at.date().isoformat()
    with pytest.raises(TraceExpired, match=f"trace expired by retention on {day}"):
        run_trace(store, blobs, m.run_id)
    with pytest.raises(TraceExpired):
        step_trace(store, blobs, m.run_id, "work")


def test_only_the_named_flows_are_swept(store: RunStore, blobs: BlobStore) -> None:
    _seed(store, blobs)
    report = sweep(store, blobs, now=NOW, flows=["finance_daily"])
    assert [f.flow_id for f in report.flows] == ["finance_daily"]
    assert report.totals()["runs_removed"] == 4


def _marked_then_killed(store: RunStore, blobs: BlobStore, *, delete_blobs: bool) -> list[str]:
    """What a sweep killed after step 1 (or 2) leaves: rows marked expiring, blobs (maybe) gone."""
    store.set_policy("*", keep_days=10, keep_last=None, blob_days=None)
    old = [make_run(store, blobs, "etl", age_days=20 + i, failed_step=True, seq=i) for i in range(4)]
    sw = Sweeper(store, blobs, now=NOW)
    ids = [m.run_id for m in old]
    assert sw._mark(ids) == set(ids)
    if delete_blobs:
        for m in old[:2]:
            blobs.delete([blobs.uri_for(k) for k in m.keys])
    for m in old:
        run = store.get_run(m.run_id)
        assert run.blobs_expired and run.blobs_expired_at is None  # says "expired", so nothing dangles
    return ids


@pytest.mark.parametrize("delete_blobs", [False, True])
def test_the_next_sweep_finishes_what_a_killed_sweep_started(
    store: RunStore, blobs: BlobStore, delete_blobs: bool
) -> None:
    ids = _marked_then_killed(store, blobs, delete_blobs=delete_blobs)
    report = sweep(store, blobs, now=NOW)
    assert report.totals()["runs_removed"] == 4
    assert not all_keys(blobs)
    assert not set(ids) & {r.run_id for r in runs_of(store)}


def test_an_interrupted_expiry_is_finished_even_if_the_policy_changed(store: RunStore, blobs: BlobStore) -> None:
    ids = _marked_then_killed(store, blobs, delete_blobs=True)
    store.set_policy("*", keep_days=0, keep_last=0, blob_days=0)  # keep everything now
    report = sweep(store, blobs, now=NOW)
    assert report.totals()["runs_removed"] == 0 and report.totals()["runs_expired"] == 4
    assert report.flows[0].by_rule == {"resume": 4}
    assert not all_keys(blobs)
    for rid in ids:
        assert store.get_run(rid).blobs_expired_at is not None


def test_a_run_that_became_active_again_is_left_alone(store: RunStore, blobs: BlobStore) -> None:
    m = make_run(store, blobs, "etl", age_days=90, failed_step=True)
    # an Airflow clear between planning and acting: the run is running again
    store.update_run(m.run_id, status="running")
    sw = Sweeper(store, blobs, now=NOW)
    target = Target(m.run_id, "python", "etl", Action.DELETE, Because.KEEP_DAYS, False, None, None)
    report = FlowReport("etl", PolicySet().resolve("etl"))
    sw.run_batch([target], report)
    assert report.runs_removed == 0 and report.blobs_removed == 0
    assert store.get_run(m.run_id).status == "running" and not store.get_run(m.run_id).blobs_expired
    assert set(m.keys) <= all_keys(blobs)


def test_blobs_outside_this_store_are_counted_and_left_alone(store: RunStore, blobs: BlobStore) -> None:
    m = make_run(store, blobs, "etl", age_days=90, log=False)
    store.update_run(m.run_id, trace_uri="s3://elsewhere/old/trace.txt.gz", trace_bytes=10)
    report = sweep(store, blobs, now=NOW)
    assert report.totals()["runs_removed"] == 1
    assert report.totals()["foreign_blobs"] == 2  # the text trace and the JSON one beside it


def test_a_storage_failure_stops_the_sweep_and_the_next_one_completes(
    store: RunStore, blobs: BlobStore, disk_fault: Any
) -> None:
    for i in range(5):
        make_run(store, blobs, "etl", age_days=50 + i, failed_step=True, seq=i)
    report = sweep(store, blobs, now=NOW, batch_size=2)
    assert not report.complete and "the disk went away" in (report.error or "")
    assert report.error.startswith("blob store delete_prefix failed")
    assert report.to_json()["error"]["type"] == "sweep_stopped"
    assert store.count_runs() == 5  # rows stay
    marked = [r for r in runs_of(store) if r.blobs_expired]
    # the first batch failed while the second was marked (batches overlap): both stay "expiring"
    assert len(marked) == 4 and all(r.blobs_expired_at is None for r in marked)
    disk_fault.heal()
    report = sweep(store, blobs, now=NOW)
    assert report.complete and report.totals()["runs_removed"] == 5
    assert store.count_runs() == 0 and not all_keys(blobs)


def test_policies_can_be_given_instead_of_read(store: RunStore, blobs: BlobStore) -> None:
    from rundossier.retention import Rule

    make_run(store, blobs, "etl", age_days=3)
    report = sweep(store, blobs, now=NOW + timedelta(days=0), rules=[Rule("etl", keep_days=1)], dry_run=True)
    assert report.totals()["runs_removed"] == 1 and report.flows[0].resolution.reason == "exact rule for 'etl'"


def test_a_swept_runs_artifacts_go_with_it_and_failure_resolutions_stay(store: RunStore, blobs: BlobStore) -> None:
    old = make_run(store, blobs, "etl", age_days=60, seq=1)
    young = make_run(store, blobs, "etl", age_days=1, seq=2)
    for m in (old, young):
        store.write(
            WriteBatch()
            .artifact(
                {"run_id": m.run_id, "step_id": "work", "try_number": 1, "role": "output", "uri": f"s3://b/{m.run_id}"}
            )
            .root_cause({"run_id": m.run_id, "root_step_id": "work", "error_type": "E", "fingerprint": "a" * 32})
        )
    resolved = NOW - timedelta(days=2)
    assert store.resolve_failure("a" * 32, at=resolved) == resolved
    store.set_policy("*", keep_days=30, keep_last=None, blob_days=None)
    report = sweep(store, blobs, now=NOW)
    assert report.complete and report.totals()["runs_removed"] == 1
    assert {r.run_id for r in runs_of(store)} == {young.run_id}
    assert store.count_artifacts(old.run_id) == 0 and store.count_artifacts(young.run_id) == 1
    groups = store.failure_groups(GroupQuery())
    assert groups.counts == {}  # the runs succeeded: no failed run to count
    assert store.reopen_failure("a" * 32) is True  # per fingerprint, not per run: the resolution was kept
