"""One DAG run, one run id: a task process that cannot reach the database when its task starts.

The scheduler records the dag run when it starts (`on_dag_run_running`), under an id of its own.
A task process whose database refuses it (here: SQLite held by an exclusive lock) records its
start, its log and its failure into the spool, under a run id this process chose, and ends (as
Airflow ends it) before it could deliver them. When the host's spool is delivered (the next task
on the host, or `rundossier flush`), the try and its blobs must land under the scheduler's id:
one run row per dag run, never a second one under the task process's id.

The listener and the recorder are the real ones; the task instances are look-alikes of Airflow's
(the listener tests' `worker_ti`), so this runs without starting Airflow.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from rundossier import Recorder
from rundossier.integrations.airflow.config import AirflowConfig
from rundossier.integrations.airflow.listener import RunDossierListener
from rundossier.read.reader import step_trace
from rundossier.retention import sweep_orphans
from rundossier.settings import Settings

from .test_listener import T0, worker_ti

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


def _listener(settings: Settings, recorders: list[Recorder]) -> RunDossierListener:
    """A process's listener (the scheduler's, or one task process's) with a real recorder."""

    def make(cfg: AirflowConfig) -> Recorder:
        recorders.append(Recorder(cfg.settings, orchestrator="airflow"))
        return recorders[-1]

    cfg = AirflowConfig(settings, True, 4.0)
    return RunDossierListener(load_config=lambda: cfg, make_recorder=make)


def _dag_run(state: str) -> SimpleNamespace:
    """The scheduler's DagRun look-alike (no task instances left that never ran)."""
    return SimpleNamespace(
        dag_id="etl",
        run_id="manual__1",
        clear_number=0,
        start_date=T0,
        queued_at=T0,
        end_date=None if state == "running" else T0 + timedelta(minutes=1),
        run_type="manual",
        get_task_instances=lambda **_: [],
    )


@pytest.mark.parametrize("blobs_down", [False, True], ids=["blobs-written", "blobs-spooled"])
def test_a_task_that_started_while_the_database_refused_it_joins_the_schedulers_run(
    tmp_path: Path, blobs_down: bool
) -> None:
    blobs = tmp_path / "blobs"
    settings = Settings.resolve(
        explicit={"home": str(tmp_path / "home"), "write_budget": 0.5, "storage_url": f"file://{blobs}"}, environ={}
    )
    recorders: list[Recorder] = []
    scheduler = _listener(settings, recorders)
    scheduler.on_dag_run_running(dag_run=_dag_run("running"), msg="")
    scheduler.worker.drain(10)
    theirs = recorders[0].store.find_run("airflow", "etl", "manual__1")
    assert theirs is not None
    db = settings.db_url.removeprefix("sqlite:///")
    if blobs_down:
        blobs.mkdir(parents=True, exist_ok=True)
        (blobs / "airflow").write_text("a file where the blob folder should be")

    task = _listener(settings, recorders)
    ti = worker_ti(task_id="load")
    with _locked(db):
        task.on_task_instance_running(previous_state="queued", task_instance=ti)
        print("loading batch 7")
        try:
            raise ValueError("the warehouse refused batch 7")
        except ValueError as exc:
            task.on_task_instance_failed(previous_state="running", task_instance=ti, error=exc)
        task.worker.drain(10)
    mine = task._state.recorder.writer  # noqa: SLF001 - the task process's own writer
    mine.close()  # Airflow ends the task's process before it could deliver what waits
    spooled = mine.spool.pending()
    assert spooled, "the task's records should wait in the spool"
    if blobs_down:
        (blobs / "airflow").unlink()

    # the scheduler ends the dag run; the host's spool is delivered later (`rundossier flush`)
    scheduler.on_dag_run_failed(dag_run=_dag_run("failed"), msg="task_failure")
    scheduler.worker.drain(10)
    flusher = Recorder(settings, orchestrator="airflow")
    assert flusher.flush().remaining == 0

    row = flusher.store.find_run("airflow", "etl", "manual__1")
    assert row is not None and row.run_id == theirs.run_id and row.status == "failed"
    with flusher.store.session() as s:
        run_ids = s.execute(text("SELECT run_id FROM rd_run")).scalars().all()
        step_runs = s.execute(text("SELECT DISTINCT run_id FROM rd_step")).scalars().all()
    assert run_ids == [theirs.run_id] and step_runs == [theirs.run_id], (run_ids, step_runs)
    steps = flusher.store.list_steps(theirs.run_id)
    assert [(s.step_id, s.try_number, s.status) for s in steps] == [("load", 1, "failed")]
    assert steps[0].trace_uri and f"/{theirs.run_id}/" in steps[0].trace_uri and not steps[0].spooled
    trace = step_trace(flusher.store, flusher.blobs, theirs.run_id, "load", 1).text
    assert "ValueError: the warehouse refused batch 7" in trace and "loading batch 7" in trace
    files = sorted(str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file())
    assert files and all(f"/{theirs.run_id}/" in f"/{f}" for f in files), files
    orphans = sweep_orphans(flusher.store, flusher.blobs, dry_run=True, grace=timedelta(0))
    assert (orphans.runs_without_row, orphans.unreferenced_blobs) == (0, 0), orphans.samples
