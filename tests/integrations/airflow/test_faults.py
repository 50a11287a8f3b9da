"""Failures at the edges: rundossier's storage unreachable (the task must not notice), and a task
marked failed in the API server (recorded with Airflow's message, no invented traceback)."""

from __future__ import annotations

import json
import re
import sqlite3
from urllib.parse import quote

import pytest

from rundossier.integrations.airflow.listener import REASON_OUTSIDE
from rundossier.read.reader import step_trace
from rundossier.storage.db import RunStore
from tests.s3server import free_port

from .airflow_env import AirflowHome
from .fixtures import latest_run


def task_states(af_home: AirflowHome, dag_id: str, run_id: str) -> dict[str, str]:
    with sqlite3.connect(af_home.path / "airflow.db") as db:
        rows = db.execute(
            "select task_id, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id)
        ).fetchall()
    return dict(rows)


def airflow_run_id(output: str) -> str:
    match = re.search(r"DagRun Finished: dag_id=\S+, logical_date=[^,]+, run_id=([^,]+),", output)
    assert match, output[-3000:]
    return match.group(1)


@pytest.fixture(scope="module")
def faulty(af_home, example_runs, tmp_path_factory):
    """rd_example_chained_failure again, with rundossier's storage on an S3 endpoint nobody serves."""
    rd_home = tmp_path_factory.mktemp("rd-unreachable")
    dead_endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = af_home.with_env(
        RUNDOSSIER_HOME=str(rd_home),
        RUNDOSSIER_STORAGE_URL="s3://rundossier-unreachable/traces",
        RUNDOSSIER_STORAGE_OPTIONS=json.dumps(
            {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": dead_endpoint}}
        ),
    )
    return af_home.airflow("dags", "test", "rd_example_chained_failure", env=env), rd_home


def test_unreachable_s3_is_a_warning_and_changes_nothing_in_airflow(af_home, example_runs, faulty):
    result, rd_home = faulty
    normal = example_runs["rd_example_chained_failure"]

    # Airflow's outcome and its own log of the exception are what they are without the fault
    assert result.returncode == normal.returncode
    assert "DagRun failed" in result.output
    assert result.airflow_tracebacks() == normal.airflow_tracebacks()
    assert task_states(af_home, "rd_example_chained_failure", airflow_run_id(result.output)) == {
        "extract": "success",
        "load": "failed",
    }
    # the fault is a warning in the task's log, and what could not be written waits in the spool
    warnings = [ln for ln in result.output.splitlines() if "rundossier: blob storage is unavailable" in ln]
    assert len(warnings) == 1 and "waits in" in warnings[0] and "spool" in warnings[0]
    assert "storage answers again;" not in result.output  # nothing pretends storage came back
    store = RunStore(f"sqlite:///{rd_home / 'rundossier.db'}")
    try:
        run = latest_run(store, "rd_example_chained_failure")
        load = {s.step_id: s for s in store.list_steps(run.run_id)}["load"]
        assert load.status == "failed" and load.spooled
        assert load.trace_uri.startswith("s3://rundossier-unreachable/traces/")
    finally:
        store.close()
    assert any((rd_home / "spool").rglob("*"))


def test_a_task_marked_failed_in_the_api_server_is_recorded_with_airflows_message(api, faulty, store, blobs):
    # the faulty run's `extract` succeeded; a user now marks it failed in the API server, whose
    # listener records it into the default rundossier history (where this run was not recorded yet)
    run_key = airflow_run_id(faulty[0].output)
    path = f"/api/v2/dags/rd_example_chained_failure/dagRuns/{quote(run_key, safe='')}/taskInstances/extract"
    status, body, _ = api.get(path, token=api.token(), method="PATCH", json_body={"new_state": "failed"})
    assert status == 200, body
    run = store.find_run("airflow", "rd_example_chained_failure", run_key)
    assert run is not None
    step = {s.step_id: s for s in store.list_steps(run.run_id)}["extract"]
    assert step.status == "failed"
    assert step.error_type is None
    assert step.error_message == "TaskInstance's state was manually set to `failed`."
    trace = step_trace(store, blobs, run.run_id, "extract").text
    assert "Traceback" not in trace
    assert f"no traceback captured: {REASON_OUTSIDE}" in trace
    assert "TaskInstance's state was manually set to `failed`." in trace
