"""End to end with OpenTelemetry on the production path: a real scheduler (dag run hooks) and its
LocalExecutor (each task in a process of its own), Airflow's own tracing on (`[traces] otel_on`,
OTLP/HTTP to a receiver on 127.0.0.1) and RUNDOSSIER_OTEL=on. rundossier's run span, started in the
scheduler, is a child of Airflow's dag run span; the step spans, made in the task processes, are
children of the run span (its context read from the run row); the run row names the trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rundossier.storage.db import RunQuery, RunStore
from tests.otlpreceiver import ProtoSpan, Receiver, attributes, otlp_receiver

from .airflow_env import AirflowHome, ApiServer, Daemon, make_home
from .test_scheduler import _json_list, _wait_finished, _wait_parsed

DAG = "rd_example_chained_failure"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowHome, Receiver]]:
    home = make_home(tmp_path_factory.mktemp("airflow-otel-home"))
    with otlp_receiver() as receiver:
        otel = {
            "RUNDOSSIER_OTEL": "on",
            "AIRFLOW__TRACES__OTEL_ON": "True",
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        with ApiServer(home) as api:
            env = home.with_env(AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{api.base}/execution/", **otel)
            with Daemon(home, "dag-processor", env) as parser, Daemon(home, "scheduler", env) as scheduler:
                _wait_parsed(home, env, [parser, scheduler])
                assert home.airflow("dags", "unpause", DAG, env=env).returncode == 0
                out = home.airflow("dags", "trigger", DAG, "-o", "json", env=env)
                assert out.returncode == 0, out.output[-2000:]
                ids = {DAG: _json_list(out.output)[0]["dag_run_id"]}
                _wait_finished(home, env, ids, [parser, scheduler], dags=(DAG,))
                deadline = time.monotonic() + 60  # the scheduler exports its batch every 200 ms
                while time.monotonic() < deadline and not any(s.name == f"run {DAG}" for s in receiver.spans):
                    time.sleep(0.5)
                assert "rundossier could not" not in scheduler.log(), scheduler.log()[-4000:]
        yield home, receiver


def _one(spans: list[ProtoSpan], name: str) -> ProtoSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, sorted(s.name for s in spans)
    return found[0]


def test_the_run_span_joins_airflows_dag_run_span_and_the_steps_join_the_run(traced) -> None:
    home, receiver = traced
    spans = receiver.spans
    dag_run = _one(spans, f"dag_run.{DAG}")
    run = _one(spans, f"run {DAG}")
    extract, load = _one(spans, "extract"), _one(spans, "load")
    assert run.trace_id == dag_run.trace_id and run.parent_span_id == dag_run.span_id
    for step in (extract, load):
        assert step.trace_id == run.trace_id and step.parent_span_id == run.span_id
    assert attributes(run)["rundossier.orchestrator"] == "airflow"
    assert attributes(load)["rundossier.step_id"] == "load"
    assert attributes(load)["rundossier.try_number"] == 1
    (event,) = load.events
    exc = attributes(event)
    assert exc["exception.type"] == "RuntimeError"
    assert str(exc["exception.stacktrace"]).count("The above exception was the direct cause") == 2
    # real times: the steps lie within the run, the run within Airflow's dag run
    assert run.start_time_unix_nano <= extract.start_time_unix_nano < extract.end_time_unix_nano
    assert extract.end_time_unix_nano <= load.start_time_unix_nano < load.end_time_unix_nano
    assert load.end_time_unix_nano <= run.end_time_unix_nano

    store = RunStore(f"sqlite:///{Path(home.rundossier_home) / 'rundossier.db'}")
    try:
        (row,) = store.list_runs(RunQuery(flow_id=DAG), limit=5).items
    finally:
        store.close()
    assert row.trace_id == dag_run.trace_id.hex()
    assert row.traceparent is not None and run.span_id.hex() in row.traceparent
