"""A run recorded while the database refused it, and meanwhile recorded by another process.

The run's start waited in the spool with a run id this process chose; another process (a Prefect
worker reporting a crash, an Airflow scheduler) recorded the same run (same orchestrator, flow and
key) first, under its own id. When the spool is delivered, the row keeps the other id: every row
and every blob this process wrote for the run must end up under that id, none under its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.read.reader import step_log_lines, step_trace
from rundossier.retention import sweep_orphans
from rundossier.settings import Settings

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextmanager
def _locked(db: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-c", LOCKER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


class StepError(RuntimeError):
    pass


def _blob_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("blobs_down", [False, True], ids=["blobs-written", "blobs-spooled"])
def test_a_spooled_run_that_another_process_recorded_first_keeps_its_steps_and_traces(
    tmp_path: Path, blobs_down: bool
) -> None:
    blobs = tmp_path / "blobs"
    settings = Settings.resolve(
        explicit={"home": str(tmp_path / "home"), "write_budget": 0.5, "storage_url": f"file://{blobs}"}
    )
    rec = Recorder(settings)
    _ = rec.store  # the schema exists before the lock
    db = settings.db_url.removeprefix("sqlite:///")
    if blobs_down:
        blobs.parent.mkdir(parents=True, exist_ok=True)
        blobs.write_text("a file where the blob folder should be")
    with _locked(db):
        run = rec.start_run("f", "flow-run-1")
        ok = rec.start_step(run, "extract")
        ok.log.write("stdout", "extracted 3 rows\n")
        rec.finish_step(ok, "success")
        bad = rec.start_step(run, "load")
        try:
            raise StepError("the warehouse refused batch 7")
        except StepError as exc:
            rec.finish_step(bad, "failed", exc)
    rec.writer.close()  # this process ends before it could deliver what waits
    mine = run.run_id
    if blobs_down:
        blobs.unlink()

    # another process records the same run first (say, a worker reporting that it crashed)
    other = Recorder(settings)
    theirs = other.start_run("f", "flow-run-1")
    assert theirs.run_id != mine
    other.finish_run(theirs, "crashed", "Crashed: Process exited with status code: -9")

    # the flow run's own process (the rest of it) is seen later; the spool is delivered
    rec.writer.budget_s = 5.0
    while rec.writer.store_down or rec.writer.blobs_down:
        rec.writer._store_down = rec.writer._blobs_down = None  # noqa: SLF001 - a new process, no outage
    assert other.flush().remaining == 0

    row = other.store.find_run("python", "f", "flow-run-1")
    assert row is not None and row.run_id == theirs.run_id
    steps = {s.step_id: s for s in other.store.list_steps(row.run_id)}
    # the crash was recorded first (the run's own failure); the steps this process saw are all there
    assert row.status == "crashed" and row.root_step_id == "_run" and f"/{row.run_id}/" in (row.trace_uri or "")
    assert sorted(steps) == ["extract", "load"], sorted(steps)
    assert steps["load"].status == "failed" and steps["load"].error_message == "the warehouse refused batch 7"
    assert steps["extract"].status == "success"
    uris = [u for s in steps.values() for u in (s.trace_uri, s.log_uri) if u]
    assert len(uris) == 2 and all(f"/{row.run_id}/" in u for u in uris), uris
    assert not [p for p in _blob_files(blobs) if mine in p], _blob_files(blobs)
    trace = step_trace(other.store, other.blobs, row.run_id, "load", 1).text
    assert "StepError: the warehouse refused batch 7" in trace
    assert [line.message.strip() for line in step_log_lines(other.store, other.blobs, steps["extract"])] == [
        "extracted 3 rows"
    ]
    orphans = sweep_orphans(other.store, other.blobs, dry_run=True, grace=timedelta(0))
    assert (orphans.runs_without_row, orphans.unreferenced_blobs) == (0, 0), orphans.samples
