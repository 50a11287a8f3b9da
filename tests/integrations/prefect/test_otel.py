"""End to end with OpenTelemetry on a real Prefect server: a flow run recorded with the Block's `otel`
on is a span tree (the run, a child span per task run try, retried tries included), and the run span
joins Prefect's own flow run span (Prefect's run telemetry, through the global TracerProvider)."""

from __future__ import annotations

from pathlib import Path

from rundossier import Recorder
from rundossier.prefect import RunDossier
from tests.otelspans import in_memory

from .helpers import flow_run_id, recorded_run, run_flow


def test_a_flow_run_is_a_span_with_a_child_span_per_task_run_try(prefect_server: None, tmp_path: Path) -> None:
    from opentelemetry.trace import StatusCode
    from prefect import flow, task

    dossier = RunDossier(
        storage_url=f"file://{tmp_path / 'blobs'}",
        db_url=f"sqlite:///{tmp_path / 'rundossier.db'}",
        home=str(tmp_path / "home"),
        otel=True,
    )

    @task
    def extract() -> int:
        return 3

    @task(retries=1, retry_delay_seconds=0)
    def load(rows: int) -> None:
        raise RuntimeError(f"could not load {rows} rows")

    @flow(**dossier.hooks())
    def traced_etl() -> None:
        load(extract())

    with in_memory() as exporter:
        state = run_flow(traced_etl)
        spans = list(exporter.get_finished_spans())
    assert state.is_failed()
    names = sorted(s.name for s in spans)
    run = next(s for s in spans if s.name == "run traced-etl")
    ours = [s for s in spans if (s.attributes or {}).get("rundossier.run_id")]
    steps = [s for s in ours if s is not run]
    tries = sorted(
        ((s.attributes or {})["rundossier.step_id"], (s.attributes or {})["rundossier.try_number"]) for s in steps
    )
    assert [t for t in tries if str(t[0]).startswith("load")] == [(tries[-1][0], 1), (tries[-1][0], 2)], names
    assert any(str(t[0]).startswith("extract") for t in tries), names
    for s in steps:
        assert s.parent is not None and s.parent.span_id == run.context.span_id, s.name
        assert run.start_time <= s.start_time <= s.end_time <= run.end_time, s.name
    failed = [s for s in steps if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 2 and all(e.name == "exception" for s in failed for e in s.events)
    assert run.status.status_code == StatusCode.ERROR
    assert (run.attributes or {})["rundossier.orchestrator"] == "prefect"

    # Prefect's own flow run span (its run telemetry, on by default) is the run span's parent
    (flow_span,) = [
        s
        for s in spans
        if (s.attributes or {}).get("prefect.run.type") == "flow"
        and (s.attributes or {}).get("prefect.run.id") == flow_run_id(state)
    ]
    assert run.parent is not None and run.parent.span_id == flow_span.context.span_id, names
    assert run.context.trace_id == flow_span.context.trace_id
    row = recorded_run(Recorder(dossier.settings()), traced_etl, state)
    assert row.trace_id == f"{run.context.trace_id:032x}"
