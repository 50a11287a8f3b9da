"""End to end: a real Airflow runs rd_example_assets with `airflow dags test`; each try's inlet
and outlet Assets are recorded as artifacts, with lineage from the input to the step that wrote it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rundossier.server import create_app
from rundossier.settings import Settings

from .airflow_env import AirflowHome


def test_inlets_and_outlets_are_the_tries_artifacts(af_home: AirflowHome, example_runs, store, recorded) -> None:
    run = recorded["rd_example_assets"]
    assert run.status == "failed" and run.root_step_id == "convert"
    data = af_home.path / "rd-example-data"
    rows = store.list_artifacts(run.run_id, limit=100)[0]
    got = {(a.step_id, a.try_number, a.role, a.uri): a for a in rows}
    orders_out = got[("extract", 1, "output", f"file://{data}/orders.csv")]
    assert orders_out.kind == "airflow.asset" and orders_out.present is True
    assert orders_out.size == (data / "orders.csv").stat().st_size
    assert (orders_out.checksum or "").startswith("sha256:")
    folder = got[("extract", 1, "output", f"file://{data}")]  # rundossier.artifact in the task
    assert folder.kind == "folder"
    orders_in = got[("convert", 1, "input", f"file://{data}/orders.csv")]
    assert orders_in.present is True and orders_in.checksum == orders_out.checksum
    rates_in = got[("convert", 1, "input", f"file://{data}/fx_rates.csv")]
    assert rates_in.present is False and rates_in.size is None
    assert len(rows) == 4  # the failed try wrote no outlets (it has none); nothing twice


def test_the_api_links_the_input_to_the_step_that_wrote_it(af_home: AirflowHome, example_runs, recorded) -> None:
    run = recorded["rd_example_assets"]
    settings = Settings.resolve(explicit={"home": str(af_home.rundossier_home)}, environ={})
    with TestClient(create_app(settings)) as client:
        items = client.get(f"/api/runs/{run.run_id}/artifacts", params={"role": "input"}).json()["items"]
    by_uri = {a["uri"].rsplit("/", 1)[-1]: a for a in items}
    producer = by_uri["orders.csv"]["producer"]
    assert (producer["run_id"], producer["step_id"], producer["flow_id"]) == (
        run.run_id,
        "extract",
        "rd_example_assets",
    )
    assert by_uri["fx_rates.csv"]["producer"] is None and by_uri["fx_rates.csv"]["present"] is False


def test_the_dossier_names_the_missing_input(af_home: AirflowHome, example_runs, store, recorded) -> None:
    from rundossier.read.reader import run_dossier

    run = recorded["rd_example_assets"]
    dossier = run_dossier(store, store.get_run(run.run_id))
    data = af_home.path / "rd-example-data"
    found = [(s.code, s.text, s.step_id) for s in dossier.signals if s.code.startswith("input_")]
    assert found == [
        ("input_missing", f"input file://{data}/fx_rates.csv did not exist when the step read it", "convert")
    ]
