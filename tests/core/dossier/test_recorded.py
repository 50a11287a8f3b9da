"""End to end through the Recorder: failure groups stay stable across ids, timestamps and line shifts,
events integrations record reach the dossier, and the capture-time class is stored on the run."""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from rundossier import Recorder
from rundossier.core.dossier import build_dossier, events
from rundossier.read.reader import run_trace
from rundossier.settings import Settings
from rundossier.storage.db import GroupQuery

JOB = """\
import uuid
from datetime import datetime, timezone


def load(order_id, mode):
    stamp = datetime.now(timezone.utc).isoformat()
    if mode == "missing":
        raise KeyError(f"order {order_id} missing at {stamp}")
    raise ValueError(f"order {order_id} has a bad total at {stamp}")


def run(mode="missing"):
    return load(f"ord-{uuid.uuid4()}", mode)
"""
UNRELATED_EDIT = '''\
# an unrelated helper added above: every line below moves down


def describe(order):
    """Return a label for an order."""
    return f"order {order}"

'''


@pytest.fixture
def rec(tmp_path: Path) -> Recorder:
    return Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home")}))


def job(tmp_path: Path, source: str) -> ModuleType:
    """The job written to a real file etl_job.py (in-app frames come from it), one directory per version."""
    folder = tmp_path / uuid.uuid4().hex[:8]
    folder.mkdir()
    path = folder / "etl_job.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("etl_job", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop("etl_job", None)
    return module


def fail(rec: Recorder, module: ModuleType, mode: str, flow: str = "orders") -> str:
    with pytest.raises((KeyError, ValueError)):
        with rec.run(flow_id=flow) as run:
            with run.step("load"):
                module.run(mode)
    return run.run_id


def test_same_bug_with_different_ids_and_timestamps_groups_together(rec: Recorder, tmp_path: Path) -> None:
    module = job(tmp_path, JOB)
    first, second = fail(rec, module, "missing"), fail(rec, module, "missing", flow="orders_eu")
    a, b = rec.store.get_run(first), rec.store.get_run(second)
    assert a.error_message != b.error_message  # different ids and timestamps in the message
    assert a.fingerprint == b.fingerprint is not None
    page = rec.store.failure_groups(GroupQuery())
    assert page.order == [a.fingerprint] and page.counts[a.fingerprint] == 2
    assert {r.flow_id for r in page.rows} == {"orders", "orders_eu"}


def test_an_unrelated_edit_that_shifts_lines_keeps_the_group(rec: Recorder, tmp_path: Path) -> None:
    before = fail(rec, job(tmp_path, JOB), "missing")
    after = fail(rec, job(tmp_path, UNRELATED_EDIT + JOB), "missing")

    def raise_line(run_id: str) -> int:
        text = run_trace(rec.store, rec.blobs, run_id).text
        return int(re.findall(r"line (\d+), in load", text)[-1])

    assert raise_line(after) == raise_line(before) + UNRELATED_EDIT.count("\n")
    assert rec.store.get_run(before).fingerprint == rec.store.get_run(after).fingerprint
    assert rec.store.failure_groups(GroupQuery()).counts == {rec.store.get_run(before).fingerprint: 2}


def test_two_bugs_in_one_function_are_two_groups(rec: Recorder, tmp_path: Path) -> None:
    module = job(tmp_path, JOB)
    missing, bad_total = fail(rec, module, "missing"), fail(rec, module, "bad_total")
    assert rec.store.get_run(missing).fingerprint != rec.store.get_run(bad_total).fingerprint
    assert len(rec.store.failure_groups(GroupQuery()).order) == 2


def test_a_retried_step_counts_once_per_run_attempt(rec: Recorder, tmp_path: Path) -> None:
    module = job(tmp_path, JOB)
    with pytest.raises(KeyError):
        with rec.run(flow_id="orders") as run:
            for try_number in (1, 2):
                try:
                    with run.step("load", try_number=try_number):
                        module.run("missing")
                except KeyError:
                    if try_number == 2:
                        raise
    assert list(rec.store.failure_groups(GroupQuery()).counts.values()) == [1]


def test_the_capture_time_class_and_chain_are_recorded(rec: Recorder) -> None:
    with pytest.raises(RuntimeError):
        with rec.run(flow_id="etl") as run:
            with run.step("load"):
                try:
                    raise ConnectionRefusedError(111, "Connection refused")
                except OSError as exc:
                    raise RuntimeError("warehouse down") from exc
    r = rec.store.get_run(run.run_id)
    assert r.failure_class == "unavailable"
    (failed,) = [e for e in rec.store.list_events(run.run_id) if e.kind == events.STEP_FAILED]
    assert [n["type"] for n in failed.data["chain"]] == ["ConnectionRefusedError", "RuntimeError"]
    page = rec.store.failure_groups(GroupQuery())
    assert page.rows[0].failure_class == "unavailable"


def test_secrets_in_chain_messages_are_masked(rec: Recorder) -> None:
    with pytest.raises(RuntimeError):
        with rec.run(flow_id="etl") as run:
            with run.step("load"):
                raise RuntimeError("cannot reach postgresql://etl:hunter2@db/dw")
    (failed,) = [e for e in rec.store.list_events(run.run_id) if e.kind == events.STEP_FAILED]
    assert "hunter2" not in str(failed.data)


def test_events_integrations_record_reach_the_dossier(rec: Recorder) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    run = rec.start_run("nightly", "scheduled__1", orchestrator="airflow", queued_at=t0, started_at=t0,
                        params_hash="p1")  # fmt: skip
    handle = rec.start_step(run, "load", started_at=t0 + timedelta(seconds=5))
    rec.record_event(run, events.WORKER_CLAIMED, "claimed by w1", step_id="load", try_number=1,
                     ts=t0 + timedelta(seconds=4), data={"worker": "w1"})  # fmt: skip
    rec.record_event(run, events.FIRST_WORK, step_id="load", try_number=1, ts=t0 + timedelta(seconds=8))
    rec.record_event(run, events.LAST_WORK, step_id="load", try_number=1, ts=t0 + timedelta(seconds=30))
    rec.record_event(run, events.STEP_KILLED, "SIGKILL (OOM)", step_id="load", try_number=1,
                     ts=t0 + timedelta(seconds=31), data={"signal": 9, "reason": "oom"})  # fmt: skip
    handle.finish("crashed", None, finished_at=t0 + timedelta(seconds=32))
    rec.finish_run(run, "failed", finished_at=t0 + timedelta(seconds=33))

    d = build_dossier(rec.store.get_run(run.run_id), rec.store.list_steps(run.run_id),
                      rec.store.list_events(run.run_id))  # fmt: skip
    assert d.classification.code == "killed" and d.classification.confidence == "high"
    assert d.classification.evidence[0].fields["data"] == {"signal": 9, "reason": "oom"}
    (tm,) = d.steps
    assert [w.duration_ms for w in tm.windows] == [None, 4000, 22000, 2000]
    assert tm.window("setup").start_from == "event worker_claimed"
    assert any(e.kind == events.INPUTS_RECORDED and e.data == {"hash": "p1", "attempt": 1}
               for e in rec.store.list_events(run.run_id))  # fmt: skip


def test_record_event_never_raises(rec: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    run = rec.start_run("nightly", "k")
    rec.record_event(run, "Not A Kind!", "x")
    assert "not valid" in caplog.text
    rec.record_event(run, "custom.kind", "kept as is")
    kinds = [e.kind for e in rec.store.list_events(run.run_id)]
    assert kinds == ["custom.kind"]


def test_record_event_masks_its_summary(rec: Recorder) -> None:
    run = rec.start_run("nightly", "k")
    rec.record_event(run, events.ARTIFACT_WRITTEN, "wrote s3 with password=hunter2")
    (e,) = rec.store.list_events(run.run_id)
    assert "hunter2" not in e.summary


def test_events_of_a_run_that_already_existed_follow_its_id(rec: Recorder) -> None:
    first = rec.start_run("nightly", "same-key", params_hash="a")
    again = rec.start_run("nightly", "same-key", attempt=2, params_hash="b")
    assert again.run_id == first.run_id
    hashes = [e.data["hash"] for e in rec.store.list_events(first.run_id) if e.kind == events.INPUTS_RECORDED]
    assert hashes == ["a", "b"]
