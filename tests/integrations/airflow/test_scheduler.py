"""The production path: a real scheduler with its LocalExecutor, a dag-processor and the api-server.

Task hooks fire in the task processes the executor starts, dag run hooks in the scheduler; both
write to the embedded database under $AIRFLOW_HOME. Here the example DAGs are triggered and
scheduled for real (not `airflow dags test`), and each try of a retried task runs in a process
of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rundossier.read.reader import step_log_lines, step_trace
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import Run, RunQuery, RunStore

from .airflow_env import AirflowHome, ApiServer, Daemon, make_home

DAGS = ("rd_example_chained_failure", "rd_example_retry")
TERMINAL = {"success", "failed"}


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowHome, dict[str, str]]]:
    """Both example DAGs triggered and run by the scheduler; yields the home and Airflow's run ids."""
    home = make_home(tmp_path_factory.mktemp("airflow-scheduled"))
    with ApiServer(home) as api:
        env = home.with_env(AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{api.base}/execution/")
        with Daemon(home, "dag-processor", env) as parser, Daemon(home, "scheduler", env) as scheduler:
            _wait_parsed(home, env, [parser, scheduler])
            airflow_ids = {}
            for dag_id in DAGS:
                assert home.airflow("dags", "unpause", dag_id, env=env).returncode == 0
                out = home.airflow("dags", "trigger", dag_id, "-o", "json", env=env)
                assert out.returncode == 0, out.output[-2000:]
                airflow_ids[dag_id] = _json_list(out.output)[0]["dag_run_id"]
            _wait_finished(home, env, airflow_ids, [parser, scheduler])
            yield home, airflow_ids


def _json_list(output: str) -> list[dict[str, str]]:
    """The JSON list an `airflow ... -o json` command printed among its log lines."""
    for line in output.splitlines():
        if line.startswith("[{") or line.strip() == "[]":
            return json.loads(line)
    raise AssertionError(f"no JSON list in:\n{output[-2000:]}")


def _wait_parsed(home: AirflowHome, env: dict[str, str], daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for d in daemons:
            d.check()
        listed = home.airflow("dags", "list", "-o", "json", env=env).output
        if all(dag_id in listed for dag_id in DAGS):
            return
        time.sleep(1)
    raise AssertionError(f"the dag-processor did not parse {DAGS} in 120 s:\n{daemons[0].log()[-3000:]}")


def _wait_finished(
    home: AirflowHome, env: dict[str, str], ids: dict[str, str], daemons: list[Daemon], dags: tuple[str, ...] = DAGS
) -> None:
    deadline = time.monotonic() + 240
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for d in daemons:
            d.check()
        for dag_id in dags:
            out = home.airflow("dags", "list-runs", dag_id, "-o", "json", env=env).output
            runs = {r["run_id"]: r["state"] for r in _json_list(out)}
            states[dag_id] = runs.get(ids[dag_id], "?")
        if all(s in TERMINAL for s in states.values()):
            return
        time.sleep(2)
    raise AssertionError(f"dag runs not finished in 240 s: {states}\n{daemons[1].log()[-4000:]}")


@pytest.fixture(scope="module")
def store(scheduled: tuple[AirflowHome, dict[str, str]]) -> Iterator[RunStore]:
    s = RunStore(scheduled[0].db_url)
    yield s
    s.close()


def _recorded(store: RunStore, dag_id: str, airflow_run_id: str) -> Run:
    page = store.list_runs(RunQuery(flow_id=dag_id, orchestrator="airflow"), limit=10)
    found = [r for r in page.items if r.run_key == airflow_run_id]
    assert found, f"rundossier recorded no run {airflow_run_id} of {dag_id}: {[r.run_key for r in page.items]}"
    return found[0]


def test_a_scheduled_failure_is_recorded_from_the_worker_and_the_scheduler(scheduled, store: RunStore) -> None:
    home, ids = scheduled
    run = _recorded(store, "rd_example_chained_failure", ids["rd_example_chained_failure"])
    assert (run.status, run.root_step_id, run.error_type) == ("failed", "load", "RuntimeError")
    steps = {(s.step_id, s.try_number): s for s in store.list_steps(run.run_id)}
    assert steps[("extract", 1)].status == "success" and steps[("load", 1)].status == "failed"
    assert "run_finished" in {e.kind for e in store.list_events(run.run_id)}  # the scheduler's dag run hook
    blobs = BlobStore(f"file://{home.rundossier_home / 'blobs'}")
    trace = step_trace(store, blobs, run.run_id, "load").text
    assert "RuntimeError: load of table orders failed" in trace
    assert "json.decoder.JSONDecodeError" in trace and "ValueError: config is not valid JSON" in trace
    log = [line.message for line in step_log_lines(store, blobs, steps[("load", 1)])]
    assert any("this line goes to stdout" in m for m in log) and any("loading with config" in m for m in log)
    # Airflow's own outcome is untouched
    out = home.airflow("tasks", "states-for-dag-run", "rd_example_chained_failure", run.run_key, "-o", "json")
    assert {r["task_id"]: r["state"] for r in _json_list(out.output)} == {"extract": "success", "load": "failed"}


def test_each_retry_in_its_own_process_is_a_try_of_one_step(scheduled, store: RunStore) -> None:
    home, ids = scheduled
    run = _recorded(store, "rd_example_retry", ids["rd_example_retry"])
    assert run.status == "success" and run.error_type is None  # it recovered: the run has no error
    tries = sorted((s.try_number, s.status) for s in store.list_steps(run.run_id) if s.step_id == "flaky_fetch")
    assert tries == [(1, "failed"), (2, "failed"), (3, "success")]
    blobs = BlobStore(f"file://{home.rundossier_home / 'blobs'}")
    second = step_trace(store, blobs, run.run_id, "flaky_fetch", 2).text
    assert "ConnectionError: upstream API timed out (try 2)" in second and "flaky_fetch (try 2)" in second


def test_the_embedded_store_lives_under_airflow_home(scheduled) -> None:
    home, _ = scheduled
    assert Path(home.db_url.removeprefix("sqlite:///")).is_file()
    assert (home.rundossier_home / "blobs" / "airflow").is_dir()
