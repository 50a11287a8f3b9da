"""A flow recorded into PostgreSQL through a Block (the setup a team shares)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from rundossier import Recorder
from rundossier.prefect import RunDossier
from rundossier.read.reader import run_trace

from .helpers import flow_run_id, run_flow, steps_by_id

pytestmark = pytest.mark.postgres


def test_flow_recorded_in_postgresql(examples: Any, pg_url: str, tmp_path: Path) -> None:
    RunDossier(storage_url=f"file://{tmp_path / 'blobs'}", db_url=pg_url, keep_days=14).save("pg", overwrite=True)
    dossier = RunDossier.load("pg")

    @flow(name="pg-pipeline", **dossier.hooks())
    def pipeline() -> None:
        examples.load(examples.transform(examples.extract()))

    state = run_flow(pipeline)
    assert state.is_failed()
    rec = Recorder(dossier.settings())
    run = rec.store.find_run("prefect", "pg-pipeline", flow_run_id(state))
    assert run is not None and run.status == "failed"
    assert {tries[-1].task_id: tries[-1].status for tries in steps_by_id(rec, run.run_id).values()} == {
        "extract": "success",
        "transform": "success",
        "load": "failed",
    }
    assert "RuntimeError: could not load batch 7" in run_trace(rec.store, rec.blobs, run.run_id).text
