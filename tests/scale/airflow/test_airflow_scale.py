"""Airflow with many workers: scheduler + LocalExecutor (parallelism 8), or CeleryExecutor with two
Celery workers of concurrency 4 (`--executor celery`), metadata on PostgreSQL,
rundossier on PostgreSQL + S3 (moto's server), N DAG runs of a 10-task DAG whose tasks fail at
random (seeded), some of them retried, one task killed with SIGKILL mid-run, and a retention sweep
running during the load.

Afterwards, from the rows and the bucket: every try recorded once with the status the plan says,
every failed try with exactly one trace, the killed try `crashed` with Airflow's own reason, every
run row once with Airflow's outcome, no orphaned blobs, and the sweep removed exactly what its dry
run planned and nothing that was running.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rundossier.core.ids import run_id_at
from rundossier.retention import sweep_orphans
from rundossier.retention.sweep import sweep
from rundossier.storage.blobs import BlobStore, blob_key
from rundossier.storage.db import RunQuery, RunStore
from rundossier.storage.spool import Spool
from tests.pgdb import pg_unavailable_reason

from .dags.failplan import TASKS, VICTIM, expected_tries
from .deployment import DAG_ID, Deployment, airflow_deployment, redis_unavailable_reason

SEED = 20
#: seeded history the sweep must remove (finished, 60 days old) and keep (running, 60 days old)
OLD_FINISHED = 25
OLD_RUNNING = 2
KEEP_DAYS = 30
#: the whole load (all DAG runs to a terminal state) must end within this
LOAD_TIMEOUT_S = 900

pytestmark = pytest.mark.skipif(pg_unavailable_reason() is not None, reason=str(pg_unavailable_reason()))


@dataclass
class Load:
    dep: Deployment
    store: RunStore
    blobs: BlobStore
    run_ids: list[str]
    victim_run: str
    airflow_states: dict[str, str]
    task_instances: list[dict[str, Any]]
    planned: Any
    swept: dict[str, Any]
    old_finished: set[str]
    old_running: set[str]
    figures: dict[str, Any] = field(default_factory=dict)


def _seed_history(store: RunStore, blobs: BlobStore) -> tuple[set[str], set[str]]:
    """Old runs of the DAG in rundossier: finished ones (each with a trace blob) and running ones."""
    finished, running = set(), set()
    for i in range(OLD_FINISHED + OLD_RUNNING):
        when = datetime.now(UTC) - timedelta(days=60, minutes=i)
        run_id = run_id_at(when)
        is_running = i >= OLD_FINISHED
        key = blob_key("airflow", DAG_ID, run_id, "work_0", 1, "trace.txt.gz")
        uri = blobs.put(key, b"\x1f\x8b old trace")
        values: dict[str, Any] = {
            "run_id": run_id,
            "orchestrator": "airflow",
            "flow_id": DAG_ID,
            "run_key": f"old__{i:03d}",
            "status": "running" if is_running else "failed",
            "queued_at": when,
            "started_at": when,
            "finished_at": None if is_running else when + timedelta(seconds=30),
        }
        store.upsert_run(values)
        store.upsert_step(
            {
                "run_id": run_id,
                "step_id": "work_0",
                "try_number": 1,
                "status": "running" if is_running else "failed",
                "started_at": when,
                "finished_at": None if is_running else when + timedelta(seconds=30),
                "trace_uri": uri,
            }
        )
        (running if is_running else finished).add(run_id)
    return finished, running


@pytest.fixture(scope="module")
def load(
    tmp_path_factory: pytest.TempPathFactory, scale_runs: int, scale_executor: str, scale_listener_timeout: float | None
) -> Iterator[Load]:
    if scale_executor == "celery" and (reason := redis_unavailable_reason()) is not None:
        if os.environ.get("CI") == "true":  # CI's machine runs Redis: a skip there would hide the case
            pytest.fail(f"the CeleryExecutor case needs Redis in CI: {reason}")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("airflow-scale")
    deployment = airflow_deployment(tmp / "home", executor=scale_executor, listener_timeout=scale_listener_timeout)
    with deployment as (dep, _stack):
        store = RunStore(dep.rd_db_url)
        blobs = BlobStore(dep.storage_url, dep.storage_opts)
        try:
            old_finished, old_running = _seed_history(store, blobs)
            store.set_policy(DAG_ID, keep_days=KEEP_DAYS, keep_last=None, blob_days=None)
            planned = sweep(store, blobs, dry_run=True)
            dep.rest("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            run_ids = [f"scale__{i:03d}" for i in range(scale_runs)]
            victim_run = run_ids[len(run_ids) // 2]
            pid_file = tmp / "victim.pid"
            started = time.monotonic()
            for run_id in run_ids:
                conf: dict[str, Any] = {"seed": SEED}
                if run_id == victim_run:
                    conf["pid_file"] = str(pid_file)
                dep.trigger(run_id, conf)
            triggered_s = time.monotonic() - started
            killed_s = _kill_victim(dep, pid_file, started)
            # the retention sweep runs while tasks run and write (as a cron job on any host would)
            sweeping = dep.rundossier_popen("retention", "sweep", "--json")
            out, err = sweeping.communicate(timeout=300)
            assert sweeping.returncode == 0, err[-3000:]
            swept = json.loads(out)
            swept_during = dep.run_states()
            states = dep.wait_finished(run_ids, LOAD_TIMEOUT_S)
            load_s = time.monotonic() - started
            # what waits in this host's spool is delivered (as `rundossier flush` on a worker host does)
            spool = Spool(dep.home.path / "rundossier" / "spool")
            spooled = len(spool.pending())
            flushed = dep.rundossier("flush")
            assert flushed.returncode == 0, flushed.stdout[-2000:] + flushed.stderr[-2000:]
            assert not spool.pending(), flushed.stdout[-2000:]
            _wait_recorded(store, run_ids, timeout=60)
            tis = dep.task_instances()
            figures = {
                "executor": scale_executor,
                "listener_timeout_s": scale_listener_timeout,
                "runs": scale_runs,
                "triggered_s": round(triggered_s, 1),
                "victim_killed_at_s": round(killed_s, 1),
                "load_s": round(load_s, 1),
                "spooled_before_flush": spooled,
                "runs_active_while_sweeping": sum(1 for s in swept_during.values() if s not in ("success", "failed")),
                **{k: round(v, 1) for k, v in dep.timings.items()},
            }
            yield Load(
                dep,
                store,
                blobs,
                run_ids,
                victim_run,
                states,
                tis,
                planned,
                swept,
                old_finished,
                old_running,
                figures,
            )
        finally:
            store.close()


def _kill_victim(dep: Deployment, pid_file: Path, started: float) -> float:
    # the victim's run is in the middle of the queue: its task starts when half the load has run
    # (over 300 s with 30 runs on a busy 2-core machine), so it may take as long as the load
    deadline = started + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        dep.check()
        if pid_file.exists():
            pid = int(pid_file.read_text())
            time.sleep(1.0)  # mid-run: its start is recorded, it is sleeping in the task's code
            os.kill(pid, signal.SIGKILL)
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the victim task never started:\n{dep.daemons[-1].log()[-3000:]}")


def _wait_recorded(store: RunStore, run_ids: list[str], timeout: float) -> None:
    """Until every DAG run has a terminal run row (the scheduler records a run's end)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs(store)
        pending = [r for r in run_ids if r not in runs or runs[r].status in ("queued", "running")]
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(1)


def _runs(store: RunStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cursor = None
    while True:
        page = store.list_runs(RunQuery(flow_id=DAG_ID, orchestrator="airflow"), limit=500, cursor=cursor)
        for r in page.items:
            out[r.run_key] = r
        cursor = page.next_cursor
        if not cursor:
            return out


def _airflow_state(status: str) -> str:
    return "failed" if status in ("failed", "crashed") else status


def test_every_run_and_every_try_is_recorded_once_as_the_plan_says(load: Load) -> None:
    runs = _runs(load.store)
    keys = Counter(r.run_key for r in _all_rows(load.store))
    assert all(keys[r] == 1 for r in load.run_ids), {r: keys[r] for r in load.run_ids if keys[r] != 1}
    tries_total = 0
    mismatched: dict[str, Any] = {}
    for run_id in load.run_ids:
        run = runs[run_id]
        assert run.status == load.airflow_states[run_id], (run_id, run.status, load.airflow_states[run_id])
        want = expected_tries(SEED, run_id, victim=run_id == load.victim_run)
        steps = load.store.list_steps(run.run_id)
        got = Counter((s.step_id, s.try_number) for s in steps)
        assert all(n == 1 for n in got.values()), {k: n for k, n in got.items() if n != 1}
        have = {(s.step_id, s.try_number): s.status for s in steps}
        if have != want:
            mismatched[run_id] = {
                "want_have": {f"{t}.{n}": (v, have.get((t, n))) for (t, n), v in want.items() if have.get((t, n)) != v},
                "extra": {f"{t}.{n}": v for (t, n), v in have.items() if (t, n) not in want},
            }
        tries_total += len(steps)
    assert not mismatched, json.dumps(mismatched, default=str, indent=1)[:6000]
    load.figures["tries"] = tries_total
    load.figures["failed_tries"] = sum(
        1 for r in load.run_ids for s in expected_tries(SEED, r, victim=r == load.victim_run).values() if s == "failed"
    )
    # Airflow's own final task states agree with the plan's last try of each task
    final = {(ti["dag_run_id"], ti["task_id"]): (ti["state"], ti["try_number"]) for ti in load.task_instances}
    for run_id in load.run_ids:
        want = expected_tries(SEED, run_id, victim=run_id == load.victim_run)
        for task in TASKS:
            last = max(n for (t, n) in want if t == task)
            assert final[(run_id, task)] == (_airflow_state(want[(task, last)]), last), (run_id, task)


def _all_rows(store: RunStore) -> list[Any]:
    return list(_runs(store).values())


def test_every_failed_try_has_exactly_one_trace(load: Load) -> None:
    runs = _runs(load.store)
    traces = 0
    for run_id in load.run_ids:
        run = runs[run_id]
        steps = load.store.list_steps(run.run_id)
        keys = [b.key for b in load.blobs.iter_blobs(f"airflow/{DAG_ID}/{run.run_id}/")]
        trace_keys = Counter(k.rsplit("/", 1)[-1] for k in keys if k.endswith(".trace.txt.gz"))
        for s in steps:
            name = blob_key("airflow", DAG_ID, run.run_id, s.step_id, s.try_number, "trace.txt.gz").rsplit("/", 1)[-1]
            if s.status in ("failed", "crashed"):
                assert s.trace_uri and load.blobs.key_for(s.trace_uri).endswith(name), (run_id, s.step_id, s.try_number)
                assert trace_keys[name] == 1, (run_id, s.step_id, s.try_number, keys)
                assert not s.spooled, (run_id, s.step_id, s.try_number)
                traces += 1
            else:
                assert trace_keys[name] == 0 and not s.trace_uri, (run_id, s.step_id, s.try_number)
        assert sum(trace_keys.values()) == sum(1 for s in steps if s.status in ("failed", "crashed"))
    load.figures["traces"] = traces
    # a failed try's trace is the task's own exception
    run = runs[load.run_ids[0]]
    failed = [s for s in load.store.list_steps(run.run_id) if s.status == "failed"]
    for s in failed[:2]:
        text = gzip.decompress(load.blobs.get(s.trace_uri)).decode()
        assert f"ValueError: planned failure of {s.step_id}, try {s.try_number} of {run.run_key}" in text


def test_the_killed_task_is_crashed_with_airflows_reason(load: Load) -> None:
    run = _runs(load.store)[load.victim_run]
    steps = {(s.step_id, s.try_number): s for s in load.store.list_steps(run.run_id)}
    killed = steps[(VICTIM, 1)]
    events = [(e.kind, e.summary) for e in load.store.list_events(run.run_id) if e.step_id == VICTIM]
    assert killed.status == "crashed", (killed.error_type, killed.error_message, events)
    # Airflow's own words: the executor's report of a try that ended while Airflow had it running
    # (or, had its worker gone too, the scheduler's missed heartbeat)
    message = killed.error_message or ""
    assert "reported that the task instance" in message or "heartbeat" in message, message
    assert f"{VICTIM} {load.victim_run}" in message, message
    text = gzip.decompress(load.blobs.get(killed.trace_uri)).decode()
    assert message[:80] in text and "process died" in text
    # its second try ran as the plan says
    assert (VICTIM, 2) in steps


def test_no_orphaned_blobs(load: Load) -> None:
    report = sweep_orphans(load.store, load.blobs, dry_run=True, grace=timedelta(0))
    assert report.complete, report.error
    assert report.blobs_removed == 0, report.to_json()
    assert report.runs_without_row == 0 and report.unreferenced_blobs == 0, report.to_json()
    load.figures["run_folders"] = report.run_folders_scanned


def test_the_sweep_during_the_load_removed_what_its_plan_said_and_nothing_running(load: Load) -> None:
    planned = load.planned.totals()
    assert planned["runs_removed"] == OLD_FINISHED
    assert load.swept["complete"] is True
    flows = {f["flow_id"]: f for f in load.swept["flows"]}
    assert flows[DAG_ID]["runs_removed"] == OLD_FINISHED, flows[DAG_ID]
    left = {r.run_id for r in _all_rows(load.store)}
    assert not left & load.old_finished
    assert load.old_running <= left
    for run_id in load.old_running:
        assert load.blobs.exists(load.store.list_steps(run_id)[0].trace_uri)
    for run_id in load.old_finished:
        assert not list(load.blobs.iter_blobs(f"airflow/{DAG_ID}/{run_id}/"))
    assert load.figures["runs_active_while_sweeping"] >= 1, load.figures


def test_figures(load: Load, artifacts_dir: Path) -> None:
    """Prints (and saves) the figures of this run: runs, tries, traces, wall time."""
    load.figures.setdefault("tries", None)
    load.figures["runs_recorded"] = len(_runs(load.store))
    from sqlalchemy import text

    with load.store.session() as s:
        for table in ("rd_run", "rd_step", "rd_event"):
            rows = s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            size = s.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
            load.figures[f"{table}_rows"] = rows
            load.figures[f"{table}_bytes_with_indexes"] = size
    print("\nairflow scale figures:", json.dumps(load.figures))
    suffix = "" if load.figures["executor"] == "local" else f"-{load.figures['executor']}"
    (artifacts_dir / f"scale-airflow{suffix}-figures.json").write_text(json.dumps(load.figures, indent=1) + "\n")


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parents[3] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
