"""End to end with a real Prefect server: a task run's persisted result and its `create_*_artifact`
calls are recorded as artifacts of its try, with nothing in user code; a later flow run's reader of
the same keyed artifact links to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import recorded_run, run_flow


def test_results_and_created_artifacts_are_outputs_of_the_task_run(examples: Any, example_recorder: Any) -> None:
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    @task(persist_result=True)
    def extract() -> list[int]:
        create_table_artifact([{"orders": 2}], key="orders-summary")
        create_markdown_artifact("# extracted 2 orders")
        return [1, 2]

    @task
    def transform(rows: list[int]) -> int:
        import rundossier

        rundossier.artifact("s3://lake/orders/2026-12-05.parquet", size=10, checksum="etag:t", kind="parquet")
        return sum(rows)

    @flow(name="rd-manifest", **examples.dossier.hooks())
    def manifest_flow() -> int:
        return transform(extract())

    rec = example_recorder
    state = run_flow(manifest_flow)
    assert state.is_completed()
    run = recorded_run(rec, manifest_flow, state)
    rows = rec.store.list_artifacts(run.run_id, limit=100)[0]
    by_kind = {(a.step_id.split("-")[0], a.kind): a for a in rows}
    result = by_kind[("extract", "prefect.result")]
    assert result.role == "output" and result.try_number == 1 and result.uri.startswith("file://")
    assert result.present is True and result.size and (result.checksum or "").startswith("sha256:")
    assert Path(result.uri.removeprefix("file://")).is_file()
    table = by_kind[("extract", "prefect.table")]
    assert table.uri == "prefect://artifacts/orders-summary" and (table.checksum or "").startswith("sha256:")
    markdown = by_kind[("extract", "prefect.markdown")]
    assert markdown.uri.startswith("prefect://artifacts/") and markdown.size == len("# extracted 2 orders")
    assert ("transform", "prefect.result") not in by_kind  # not persisted: nothing written
    by_hand = by_kind[("transform", "parquet")]  # rundossier.artifact in the task: its try
    assert (by_hand.uri, by_hand.try_number, by_hand.checksum) == ("s3://lake/orders/2026-12-05.parquet", 1, "etag:t")
    assert len(rows) == 4

    # a second run: its own rows; the keyed artifact's history lists both, newest first
    again = run_flow(manifest_flow)
    second = recorded_run(rec, manifest_flow, again)
    assert rec.store.count_artifacts(second.run_id) == 4
    history = rec.store.artifacts_of_uri("prefect://artifacts/orders-summary")[0]
    assert [a.run_id for a in history] == [second.run_id, run.run_id]
