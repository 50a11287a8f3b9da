"""Follow mode end to end: a running step's log read back from its spilled parts plus the latest
live snapshot (no line twice, none missing), the snapshot gone when the step ends, and what a
killed step left behind shown as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.read.reader import step_log_source
from rundossier.settings import Settings
from rundossier.storage.blobs import LOG_LIVE, blob_key


@pytest.fixture
def rec(tmp_path: Path) -> Recorder:
    settings = Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})
    return Recorder(settings, live_log_interval=60)


def _messages(rec: Recorder, run_id: str, step_id: str) -> tuple[list[str], object]:
    run = rec.store.get_run(run_id)
    step = rec.store.get_step(run_id, step_id)
    assert step is not None
    source = step_log_source(rec.blobs, run, step)
    return [line.message for line in source.lines()], source


def test_running_step_reads_parts_then_snapshot_without_duplicates(rec: Recorder) -> None:
    run = rec.start_run("live")
    step = rec.start_step(run, "big")
    pad = "x" * 1000
    for i in range(1500):  # > 1 MiB: the oldest lines spill to log.parts/000001
        step.log.write("stdout", f"{i:05d} {pad}")
    assert step.log.parts_spilled >= 1
    assert rec._live is not None and rec._live.publish_once() == 1
    first, source = _messages(rec, run.run_id, "big")
    assert source.live and source.available  # type: ignore[attr-defined]
    assert [m[:5] for m in first] == [f"{i:05d}" for i in range(1500)]
    # more lines spill another part before the next snapshot: the reader still sees each line once
    for i in range(1500, 2600):
        step.log.write("stdout", f"{i:05d} {pad}")
    assert step.log.parts_spilled >= 2
    again, _ = _messages(rec, run.run_id, "big")
    assert again == first
    rec._live.publish_once()
    latest, _ = _messages(rec, run.run_id, "big")
    assert [m[:5] for m in latest] == [f"{i:05d}" for i in range(2600)]
    step.finish("success")
    rec.finish_run(run, "success")
    live_key = blob_key("python", "live", run.run_id, "big", 1, LOG_LIVE)
    assert not rec.blobs.exists(rec.blobs.uri_for(live_key))
    final, source = _messages(rec, run.run_id, "big")
    assert not source.live and len(final) == 2600  # type: ignore[attr-defined]


def test_a_running_step_without_output_says_so(rec: Recorder) -> None:
    run = rec.start_run("quiet")
    rec.start_step(run, "wait")
    lines, source = _messages(rec, run.run_id, "wait")
    assert lines == [] and source.live and not source.available  # type: ignore[attr-defined]
    assert "not published any output yet" in (source.reason or "")  # type: ignore[attr-defined]


def test_a_step_killed_while_running_shows_its_last_snapshot(rec: Recorder) -> None:
    run = rec.start_run("killed")
    step = rec.start_step(run, "work")
    step.log.write("stdout", "epoch 1")
    step.log.write("stdout", "epoch 2")
    assert rec._live is not None and rec._live.publish_once() == 1
    # the process dies: nobody finishes the step; the orchestrator later reports it crashed
    rec.store.update_step(run.run_id, "work", 1, status="crashed")
    lines, source = _messages(rec, run.run_id, "work")
    assert lines == ["epoch 1", "epoch 2"]
    assert source.available and not source.live  # type: ignore[attr-defined]
    assert "without storing its log" in (source.reason or "")  # type: ignore[attr-defined]


def test_live_snapshots_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})
    rec = Recorder(settings, live_log_interval=None)
    run = rec.start_run("off")
    step = rec.start_step(run, "s")
    step.log.write("stdout", "x")
    assert rec._live is None
    step.finish("success")


def test_a_short_step_never_publishes_and_records_as_before(rec: Recorder) -> None:
    with rec.run("short") as run, run.step("s") as h:
        h.log.write("stdout", "done")
    lines, source = _messages(rec, run.run_id, "s")
    assert lines == ["done"] and not source.live  # type: ignore[attr-defined]
    keys = [b.key for b in rec.blobs.iter_blobs("")]
    assert not any(k.endswith(LOG_LIVE) for k in keys)
