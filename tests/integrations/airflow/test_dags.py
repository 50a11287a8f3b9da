"""End to end: a real Airflow runs the example DAGs with `airflow dags test`; rundossier recorded them."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from rundossier.read.reader import step_log_lines
from rundossier.server import create_app
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore

from .airflow_env import EXAMPLE_PASSWORD, AirflowHome, Run, traceback_section


def steps_by_key(store: RunStore, run_id: str) -> dict[tuple[str, int], object]:
    return {(s.step_id, s.try_number): s for s in store.list_steps(run_id)}


def download_step_trace(af_home: AirflowHome, run_id: str, step_id: str, try_number: int | None = None) -> str:
    """GET the step's trace from rundossier's API, as the View Trace button does."""
    settings = Settings.resolve(explicit={"home": str(af_home.rundossier_home)}, environ={})
    with TestClient(create_app(settings)) as client:
        url = f"/api/runs/{run_id}/steps/{quote(step_id, safe='')}/trace"
        resp = client.get(url, params={"try": try_number} if try_number else None)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-disposition"] == f'attachment; filename="{run_id}_trace.txt"'
    return resp.text


def test_the_downloaded_traceback_equals_the_one_airflow_logged(af_home, example_runs, store, recorded):
    result: Run = example_runs["rd_example_chained_failure"]
    logged = result.airflow_tracebacks()
    assert len(logged) == 1, result.output[-3000:]
    run = recorded["rd_example_chained_failure"]
    trace = download_step_trace(af_home, run.run_id, "load")
    section = traceback_section(trace)
    assert section == logged[0]
    # the whole chain, innermost cause first, as Python prints it
    assert section.startswith("Traceback (most recent call last):\n")
    assert "json.decoder.JSONDecodeError" in section
    assert section.count("The above exception was the direct cause of the following exception") == 2
    assert section.endswith("RuntimeError: load of table orders failed\n")


def test_runs_steps_and_timings_are_recorded(example_runs, store, recorded):
    run = recorded["rd_example_chained_failure"]
    assert run.status == "failed"
    assert run.run_key.startswith("manual__")
    assert run.started_at and run.finished_at and run.duration_ms and run.duration_ms > 0
    assert run.root_step_id == "load"
    assert (run.error_type, run.error_message) == ("RuntimeError", "load of table orders failed")
    steps = steps_by_key(store, run.run_id)
    assert set(steps) == {("extract", 1), ("load", 1)}
    extract, load = steps[("extract", 1)], steps[("load", 1)]
    assert extract.status == "success" and extract.trace_uri is None
    assert load.status == "failed" and load.trace_uri
    assert load.upstream == ["extract"]
    for step in (extract, load):
        assert step.task_id == step.step_id and step.map_index is None
        assert step.started_at and step.finished_at and step.duration_ms is not None
        assert step.host == socket.gethostname()


def test_retries_are_tries_of_one_step(af_home, example_runs, store, recorded):
    run = recorded["rd_example_retry"]
    assert run.status == "success"
    steps = steps_by_key(store, run.run_id)
    assert sorted(steps) == [("flaky_fetch", 1), ("flaky_fetch", 2), ("flaky_fetch", 3)]
    assert [steps[("flaky_fetch", n)].status for n in (1, 2, 3)] == ["failed", "failed", "success"]
    second = download_step_trace(af_home, run.run_id, "flaky_fetch", 2)
    assert "ConnectionError: upstream API timed out (try 2)" in second
    assert "step:         flaky_fetch (try 2)" in second
    assert "up_for_retry" in second  # the header says the try will be retried


def test_mapped_tasks_keep_their_map_index_and_downstream_is_upstream_failed(af_home, example_runs, store, recorded):
    run = recorded["rd_example_mapped"]
    assert run.status == "failed"
    assert run.root_step_id == "process[2]"
    steps = steps_by_key(store, run.run_id)
    for index in range(4):
        step = steps[(f"process[{index}]", 1)]
        assert (step.task_id, step.map_index) == ("process", index)
        assert step.status == ("failed" if index == 2 else "success")
    assert steps[("summarize", 1)].status == "upstream_failed"
    trace = download_step_trace(af_home, run.run_id, "process[2]")
    assert "ZeroDivisionError: partition 2 has no rows to average" in trace


def test_a_heavy_log_is_kept_whole(example_runs, store, blobs: BlobStore, recorded):
    run = recorded["rd_example_heavy_logs"]
    assert run.status == "failed"
    step = steps_by_key(store, run.run_id)[("crunch", 1)]
    messages = [line.message for line in step_log_lines(store, blobs, step)]
    batches = [m for m in messages if ": merged " in m]
    assert len(batches) >= 300  # 2 s at 300 lines/s, less the sleeps
    assert "batch 1: merged 17 rows" in batches[0]
    assert any(m.startswith("progress: 50 batches") for m in messages)  # print() lands too
    assert step.log_lines_stderr >= len(batches)


def test_a_password_in_the_error_is_masked_in_the_trace_and_the_log(af_home, example_runs, store, blobs, recorded):
    result = example_runs["rd_example_leaked_login"]
    assert EXAMPLE_PASSWORD in result.output  # the task really put it in its error (Airflow's console shows it)
    run = recorded["rd_example_leaked_login"]
    assert EXAMPLE_PASSWORD not in (run.error_message or "")
    trace = download_step_trace(af_home, run.run_id, "connect")
    assert EXAMPLE_PASSWORD not in trace
    assert "PermissionError: login 'etl_user' rejected by db.example.internal; tried ***" in trace
    step = steps_by_key(store, run.run_id)[("connect", 1)]
    messages = [line.message for line in step_log_lines(store, blobs, step)]
    assert any("connecting to db.example.internal as etl_user using ***" in m for m in messages), messages
    assert not any(EXAMPLE_PASSWORD in m for m in messages)


@pytest.mark.parametrize("dag_id", ["rd_example_chained_failure", "rd_example_mapped"])
def test_each_failure_is_recorded_once(example_runs, store, recorded, dag_id):
    # the plugin is loaded through the entry point AND the drop-in file: still one listener
    run = recorded[dag_id]
    events = [e for e in store.list_events(run.run_id) if e.kind == "step_failed"]
    assert len(events) == 1
    assert "already registered" not in example_runs[dag_id].output
    assert "Failed to import plugin" not in example_runs[dag_id].output
