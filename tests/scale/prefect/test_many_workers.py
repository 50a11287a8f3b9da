"""Prefect with many workers: N flow runs on a process work pool of 4 workers, PostgreSQL + S3.

One module-scoped load (`load`) runs the flow runs while a retention sweep runs beside them, kills
one flow-run process with SIGKILL, then reads everything back; each test checks one property of
the result. N is RD_SCALE_FLOW_RUNS (default 12, what fits the CI budget of 5 minutes; 100 is the full
case, see scripts/test-scale-prefect.sh). The figures (flow runs, tries, wall time, connections per
process) are printed at the end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from rundossier import Recorder
from rundossier.core.status import Status
from rundossier.retention import preview, sweep, sweep_orphans
from rundossier.retention.sync import apply_block_defaults
from rundossier.settings import Settings
from rundossier.storage.db.models import Run, Step
from tests.s3server import s3_client

from .conftest import BLOCK, FLOW_SRC, WORKER_LIMIT, WORKERS, Deployment, wait_for

sys.path.insert(0, str(FLOW_SRC))
from outcomes import Plan  # noqa: E402

FLOW_RUNS = int(os.environ.get("RD_SCALE_FLOW_RUNS", "12"))
#: old finished runs the retention policy (keep_days=30) must remove during the load
OLD_RUNS = 20
#: old runs still running (a live process holds their lease): the sweep must leave them alone
OLD_RUNNING = 2
LOAD_TIMEOUT_S = float(os.environ.get("RD_SCALE_TIMEOUT_S", "600"))
TERMINAL_PREFECT = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Load:
    dep: Deployment
    rec: Recorder
    flow_runs: dict[int, Any]  # index -> Prefect's flow run (final state)
    runs: dict[str, Run]  # flow run id -> our run row
    steps: dict[str, list[Step]]  # run_id -> its step rows
    plan_deletes: set[str]
    old_running: set[str]
    sweeps: list[Any]
    sweeps_during_load: int
    objects: dict[str, int]  # S3 key (relative to the storage root) -> size
    spooled_before_flush: int
    killed_index: int
    wall_s: float
    connections: dict[str, int] = field(default_factory=dict)  # application_name -> most at once
    peak_connections: int = 0


def _seed_old_runs(rec: Recorder) -> tuple[set[str], set[str]]:
    """Old finished runs (each with a failed step's trace in S3) and old runs still running."""
    old = datetime.now(UTC) - timedelta(days=60)
    finished, running = set(), set()
    for i in range(OLD_RUNS):
        run = rec.start_run(Plan.FLOW, f"old-{i}", orchestrator="prefect", started_at=old)
        step = rec.start_step(run, "load", started_at=old)
        try:
            raise RuntimeError(f"old failure {i}")
        except RuntimeError as exc:
            rec.finish_step(step, Status.FAILED, exc, finished_at=old + timedelta(seconds=5))
        rec.finish_run(run, Status.FAILED, finished_at=old + timedelta(seconds=6))
        finished.add(run.run_id)
    for i in range(OLD_RUNNING):
        run = rec.start_run(Plan.FLOW, f"old-running-{i}", orchestrator="prefect", started_at=old)
        running.add(run.run_id)  # this process's heartbeat keeps its lease while the test runs
    return finished, running


class ConnectionSampler(threading.Thread):
    """Counts the PostgreSQL connections to the run history database, per application name."""

    def __init__(self, db_url: str) -> None:
        super().__init__(name="pg-connections", daemon=True)
        self.engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1)
        self.database = self.engine.url.database
        self.most: dict[str, int] = {}
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        q = text(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = :db GROUP BY application_name"
        )
        with self.engine.connect() as conn:
            while not self.stop.wait(0.2):
                rows = conn.execute(q, {"db": self.database}).all()
                conn.rollback()
                self.peak = max(self.peak, sum(n for _, n in rows) - 1)  # not this sampler's own
                for name, n in rows:
                    self.most[name] = max(self.most.get(name, 0), n)
        self.engine.dispose()


class Sweeper(threading.Thread):
    """Runs the retention sweep again and again while the flow runs run."""

    def __init__(self, rec: Recorder, load_running: threading.Event) -> None:
        super().__init__(name="retention-sweep", daemon=True)
        self.rec = rec
        self.load_running = load_running
        self.reports: list[Any] = []
        self.during_load = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.wait(1.5):
                active = self.load_running.is_set()
                report = sweep(self.rec.store, self.rec.blobs, batch_size=7)
                self.reports.append(report)
                if active:
                    self.during_load += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _prefect_runs(deployment_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as c:
        out: list[Any] = []
        while True:
            page = c.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                limit=200,
                offset=len(out),
            )
            out += page
            if len(page) < 200:
                return out


def _prefect_task_runs(flow_run_id: Any) -> list[tuple[str, str | None, Any]]:
    """What Prefect's API holds of a flow run's task runs (name, state, end), for a failure's message."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
    return [(tr.name, tr.state_name, tr.end_time) for tr in runs]


def _kill_when_hanging(dep: Deployment, index: int, done: threading.Event) -> None:
    """SIGKILL the flow-run process once `hang` runs and Prefect's server knows it runs.

    Prefect learns of a task run from the events its process sends (asynchronously): a process
    killed before its `hang` started event left it has no such task run anywhere but its own
    memory, and nothing can record it. What is checked is the task run Prefect shows as running.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterName

    marker = dep.markers / f"kill-{index}"
    while not done.is_set():
        if marker.exists():
            break
        time.sleep(0.2)
    else:
        return
    flows = FlowRunFilter(name=FlowRunFilterName(any_=[f"scale-{index:03d}"]))
    tasks = TaskRunFilter(name=TaskRunFilterName(like_="hang-"))
    until = time.monotonic() + 60
    with get_client(sync_client=True) as c:
        while not done.is_set() and time.monotonic() < until:
            runs = c.read_task_runs(flow_run_filter=flows, task_run_filter=tasks, limit=10)
            if any(tr.state_type is not None and tr.state_type.value == "RUNNING" for tr in runs):
                break
            time.sleep(0.5)
        else:
            print(f"the hang task run of flow run {index} is not running in Prefect's API after 60 s; killing it")
    os.kill(int(marker.read_text()), signal.SIGKILL)


def _s3_objects(dep: Deployment) -> dict[str, int]:
    bucket, _, prefix = dep.storage_url.removeprefix("s3://").partition("/")
    client = s3_client(dep.storage_options["client_kwargs"]["endpoint_url"])
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"].removeprefix(prefix + "/")] = obj["Size"]
    return out


def _rows(rec: Recorder) -> tuple[dict[str, Run], dict[str, list[Step]]]:
    with rec.store.session() as s:
        runs = {r.run_key: r for r in s.execute(select(Run).where(Run.flow_id == Plan.FLOW)).scalars()}
        steps: dict[str, list[Step]] = defaultdict(list)
        for st in s.execute(select(Step)).scalars():
            steps[st.run_id].append(st)
    return runs, dict(steps)


@pytest.fixture(scope="module")
def load(prefect_deployment: Deployment) -> Any:
    from prefect.client.orchestration import get_client

    dep = prefect_deployment
    settings = Settings.resolve(
        explicit={
            "db_url": dep.db_url,
            "storage_url": dep.storage_url,
            "storage_options": dep.storage_options,
            "home": str(dep.home),
        }
    )
    rec = Recorder(settings, orchestrator="prefect")
    plan_deletes, old_running = _seed_old_runs(rec)
    apply_block_defaults(rec.store, Plan.FLOW, keep_days=30, block_name=BLOCK)
    planned = preview(rec.store, rec.blobs).flow(Plan.FLOW)
    assert planned is not None and planned.runs_removed == OLD_RUNS, planned

    sampler = ConnectionSampler(dep.db_url)
    sampler.start()
    load_running, done = threading.Event(), threading.Event()
    sweeper = Sweeper(rec, load_running)
    killer = threading.Thread(target=_kill_when_hanging, args=(dep, Plan.KILL_INDEX, done), daemon=True)
    killer.start()
    start = time.monotonic()
    with get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name(dep.name)
        for i in range(FLOW_RUNS):
            c.create_flow_run_from_deployment(deployment.id, parameters={"index": i}, name=f"scale-{i:03d}")
    load_running.set()
    sweeper.start()

    def finished() -> list[Any] | None:
        for w in dep.workers:
            assert w.popen.poll() is None, f"{w.name} exited:\n{w.tail()}"
        runs = _prefect_runs(deployment.id)
        ended = [r for r in runs if r.state_type is not None and r.state_type.value in TERMINAL_PREFECT]
        return runs if len(ended) == FLOW_RUNS else None

    try:
        prefect_runs = wait_for(finished, LOAD_TIMEOUT_S, f"{FLOW_RUNS} flow runs to end", interval=1.0)

        def recorded() -> tuple[dict[str, Run], dict[str, list[Step]]] | None:
            runs, steps = _rows(rec)
            ended = [r for r in runs.values() if not r.run_key.startswith("old-") and Status(r.status).is_terminal]
            return (runs, steps) if len(ended) == FLOW_RUNS else None

        try:
            wait_for(recorded, 120, "rundossier to record the end of every flow run", interval=1.0)
        except AssertionError:
            runs, _ = _rows(rec)
            seen = {k: (r.status, r.error_type) for k, r in runs.items() if not k.startswith("old-")}
            states = {str(r.id): (r.name, r.state_type.value) for r in prefect_runs}
            missing = {states[k] for k in states if k not in seen or not Status(seen[k][0]).is_terminal}
            logs = "\n".join(f"--- {w.name}\n{w.tail(4000)}" for w in dep.workers)
            raise AssertionError(f"not recorded as ended: {sorted(missing)}; recorded: {seen}\n{logs}") from None
        # the worker that saw the killed process die records its task runs from Prefect's API
        killed_id = next(str(r.id) for r in prefect_runs if r.name == f"scale-{Plan.KILL_INDEX:03d}")

        def killed_steps_recorded() -> bool:
            # the flow-run process recorded `hang` running before it died; the worker's crash hook
            # reads the task runs back (until they settle) and ends it: wait for that end
            runs, steps = _rows(rec)
            hang = [s for s in steps.get(runs[killed_id].run_id, []) if s.task_id == "hang"]
            return bool(hang) and all(Status(s.status).is_terminal for s in hang)

        try:  # checked by its own test (the others still run)
            wait_for(killed_steps_recorded, 60, "the killed flow run's task runs to be recorded", interval=1.0)
        except AssertionError:
            pass
    finally:
        load_running.clear()
        wall = time.monotonic() - start
        done.set()
        sweeper.stop.set()
        sweeper.join(120)
        sampler.stop.set()
        sampler.join(10)
    assert sweeper.error is None, sweeper.error
    spooled = len(rec.spool.pending())
    if spooled:
        rec.flush()
    runs, steps = _rows(rec)
    by_index = {int(r.name.split("-")[1]): r for r in prefect_runs}
    result = Load(
        dep=dep,
        rec=rec,
        flow_runs=by_index,
        runs={k: v for k, v in runs.items() if not k.startswith("old-")},
        steps=steps,
        plan_deletes=plan_deletes,
        old_running=old_running,
        sweeps=sweeper.reports,
        sweeps_during_load=sweeper.during_load,
        objects=_s3_objects(dep),
        spooled_before_flush=spooled,
        killed_index=Plan.KILL_INDEX,
        wall_s=wall,
        connections={k: v for k, v in sampler.most.items() if k.startswith("rd-flow-")},
        peak_connections=sampler.peak,
    )
    yield result
    rec.close()
    _print_figures(result)


def _print_figures(load: Load) -> None:
    tries = sum(len(v) for k, v in load.steps.items() if k in {r.run_id for r in load.runs.values()})
    per_process = sorted(load.connections.values())
    print(
        f"\nPrefect scale: {len(load.runs)} flow runs, {tries} task run tries, {WORKERS} process workers "
        f"(limit {WORKER_LIMIT} each), wall {load.wall_s:.1f} s ({load.wall_s / max(len(load.runs), 1):.2f} s per "
        f"flow run); {len(load.sweeps)} retention sweeps ({load.sweeps_during_load} during the load); spooled "
        f"items left by the flow-run processes: {load.spooled_before_flush}; PostgreSQL connections: peak "
        f"{load.peak_connections} at once, per flow-run process at most "
        f"{per_process[-1] if per_process else 0} (median {per_process[len(per_process) // 2] if per_process else 0})"
    )


def _status_of_prefect(flow_run: Any) -> str:
    return {"COMPLETED": "success", "FAILED": "failed", "CRASHED": "crashed", "CANCELLED": "cancelled"}[
        flow_run.state_type.value
    ]


def test_every_flow_run_has_one_run_row_with_prefects_outcome(load: Load) -> None:
    assert len(load.flow_runs) == FLOW_RUNS
    for index, fr in load.flow_runs.items():
        expected = "crashed" if Plan.killed(index) else ("failed" if Plan.flow_fails(index) else "success")
        assert _status_of_prefect(fr) == expected, (index, fr.state)
        row = load.runs.get(str(fr.id))
        assert row is not None, f"flow run {fr.name} ({fr.id}) has no run row"
        assert row.status == expected, (fr.name, row.status, row.error_type, row.error_message)
        assert row.started_at is not None and row.finished_at is not None and row.started_at <= row.finished_at
        assert not row.spooled, fr.name
    assert set(load.runs) == {str(fr.id) for fr in load.flow_runs.values()}


def _expected_tries(index: int) -> Counter[tuple[str, str]]:
    """(task, status) -> how many tries of that task end that way in flow run `index`."""
    out: Counter[tuple[str, str]] = Counter({("extract", "success"): 1})
    for item in range(Plan.ITEMS):
        out["work", "failed" if Plan.item_fails(index, item) else "success"] += 1
    if Plan.flaky_fails(index):
        out["flaky", "failed"] += 1
    out["flaky", "success"] += 1
    return out


def test_every_task_run_try_has_one_step_row(load: Load) -> None:
    for index, fr in load.flow_runs.items():
        if Plan.killed(index):
            continue  # its own test
        run = load.runs[str(fr.id)]
        steps = load.steps.get(run.run_id, [])
        keys = [(s.step_id, s.try_number) for s in steps]
        assert len(keys) == len(set(keys)), fr.name
        got = Counter((s.task_id, s.status) for s in steps)
        assert got == _expected_tries(index), (fr.name, got)
        for s in steps:
            assert s.finished_at is not None and not s.spooled, (fr.name, s.step_id, s.try_number)


def test_every_failed_try_has_exactly_one_trace(load: Load) -> None:
    traces: Counter[tuple[str, str, str]] = Counter()
    for key in load.objects:
        parts = key.split("/")
        if len(parts) == 4 and parts[3].endswith(".trace.txt.gz"):
            traces[parts[2], *parts[3].rsplit(".", 4)[:2]] += 1  # run folder, step, try
    failed = 0
    for run in load.runs.values():
        for s in load.steps.get(run.run_id, []):
            if s.status not in ("failed", "crashed"):
                assert s.trace_uri is None, (s.run_id, s.step_id, s.try_number, s.status)
                continue
            failed += 1
            assert s.error_type and s.error_message, (s.run_id, s.step_id, s.try_number, s.status)
            if s.status == "failed":
                assert s.trace_uri, (s.run_id, s.step_id, s.try_number)
                key = s.trace_uri.removeprefix(load.dep.storage_url.rstrip("/") + "/")
                assert key in load.objects, f"{s.trace_uri} is missing from S3"
    per_try = [k for k, n in traces.items() if n != 1]
    assert not per_try, per_try
    expected = sum(
        n
        for index in load.flow_runs
        if not Plan.killed(index)
        for (_, status), n in _expected_tries(index).items()
        if status == "failed"
    )
    assert failed >= expected


def test_the_killed_flow_run_shows_as_crashed_with_its_reason(load: Load) -> None:
    fr = load.flow_runs[load.killed_index]
    assert fr.state_type.value == "CRASHED"
    run = load.runs[str(fr.id)]
    assert run.status == "crashed"
    assert run.error_type and "Crashed" in run.error_type, run.error_type
    assert "-9" in (run.error_message or "") or "SIGKILL" in (run.error_type or ""), run.error_message
    steps = {s.task_id: s for s in load.steps[run.run_id]}
    rows = sorted((s.step_id, s.task_id, s.try_number, s.status) for s in load.steps[run.run_id])
    prefect_hang = [t for t in _prefect_task_runs(fr.id) if t[0].startswith("hang")]
    assert steps["hang"].status == "crashed", f"rows: {rows}; Prefect: {prefect_hang}"
    assert steps["extract"].status == "success"


def test_no_orphaned_blobs_and_nothing_left_spooled(load: Load) -> None:
    report = sweep_orphans(load.rec.store, load.rec.blobs, dry_run=True, grace=timedelta(0))
    assert report.complete, report.error
    assert (report.runs_without_row, report.unreferenced_blobs) == (0, 0), report.samples
    assert load.rec.spool.pending() == []


def test_the_sweep_during_the_load_removed_exactly_what_the_policy_says(load: Load) -> None:
    assert load.sweeps_during_load >= 1
    removed = sum(r.flow(Plan.FLOW).runs_removed for r in load.sweeps if r.flow(Plan.FLOW) is not None)
    assert removed == OLD_RUNS
    assert all(r.complete for r in load.sweeps), [r.error for r in load.sweeps if not r.complete]
    with load.rec.store.session() as s:
        ids = set(s.execute(select(Run.run_id)).scalars())
    assert not (ids & load.plan_deletes)
    assert load.old_running <= ids
    assert {r.run_id for r in load.runs.values()} <= ids
    folders = {key.split("/")[2] for key in load.objects}
    assert not (folders & load.plan_deletes)
    assert preview(load.rec.store, load.rec.blobs).totals()["runs_removed"] == 0


def test_each_flow_run_process_holds_few_database_connections(load: Load) -> None:
    assert load.connections, "no flow-run process was seen connected"
    assert max(load.connections.values()) <= 3, load.connections
