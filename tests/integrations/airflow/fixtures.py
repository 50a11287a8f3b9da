"""Session fixtures: one AIRFLOW_HOME where every example DAG ran once, its rundossier store, an api-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import Run, RunQuery, RunStore

from .airflow_env import AirflowHome, ApiServer, make_home
from .airflow_env import Run as AirflowRun

#: (dag_id, run conf) of the example DAGs the end-to-end tests look at
EXAMPLES: dict[str, dict[str, object] | None] = {
    "rd_example_chained_failure": None,
    "rd_example_retry": None,
    "rd_example_mapped": None,
    "rd_example_heavy_logs": {"seconds": 2, "lines_per_second": 300},
    "rd_example_leaked_login": None,
    "rd_example_assets": None,
}


@pytest.fixture(scope="session")
def af_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    return make_home(tmp_path_factory.mktemp("airflow-home"))


@pytest.fixture(scope="session")
def example_runs(af_home: AirflowHome) -> dict[str, AirflowRun]:
    """`airflow dags test` of every example DAG, once per session (in this order)."""
    runs: dict[str, AirflowRun] = {}
    for dag_id, conf in EXAMPLES.items():
        args = ["dags", "test", dag_id]
        if conf:
            args += ["-c", json.dumps(conf)]
        runs[dag_id] = af_home.airflow(*args)
        if "DagRun Finished" not in runs[dag_id].output:
            raise AssertionError(f"airflow dags test {dag_id} did not finish:\n{runs[dag_id].output[-4000:]}")
    return runs


@pytest.fixture(scope="session")
def store(af_home: AirflowHome, example_runs: dict[str, AirflowRun]) -> Iterator[RunStore]:
    s = RunStore(af_home.db_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def recorded(store: RunStore) -> dict[str, Run]:
    """The run rundossier recorded for each example DAG (taken before any test adds others)."""
    return {dag_id: latest_run(store, dag_id) for dag_id in EXAMPLES}


@pytest.fixture(scope="session")
def blobs(af_home: AirflowHome) -> BlobStore:
    return BlobStore(f"file://{af_home.rundossier_home / 'blobs'}")


def latest_run(store: RunStore, dag_id: str) -> Run:
    page = store.list_runs(RunQuery(flow_id=dag_id, orchestrator="airflow"), limit=1)
    assert page.items, f"rundossier recorded no run of {dag_id}"
    return page.items[0]


@pytest.fixture(scope="session")
def api(af_home: AirflowHome, example_runs: dict[str, AirflowRun]) -> Iterator[ApiServer]:
    """A real `airflow api-server` on loopback with the simple auth manager (not all-admins)."""
    with ApiServer(af_home) as server:
        yield server


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(__file__).resolve().parents[3] / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
