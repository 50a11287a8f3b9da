"""The Airflow scale test: collected only where Apache Airflow is installed (.venv-airflow);
`scripts/test-scale-airflow.sh` runs it with the LocalExecutor, `scripts/test-scale-airflow-celery.sh`
with the CeleryExecutor (`--executor celery`). `--runs N` (or RD_SCALE_DAG_RUNS=N) sets the DAG
runs; the issue's full case is 30."""

from __future__ import annotations

import importlib.util
import os

import pytest

if importlib.util.find_spec("airflow") is None:
    collect_ignore_glob = ["*"]

#: DAG runs by default, per executor: the LocalExecutor runs the issue's full case (it fits the 8
#: minutes this test may take); the Celery case, a second deployment in CI, runs a third of it
#: (docs/deploying-at-scale.md has the figures of both at 30)
DEFAULT_RUNS = {"local": 30, "celery": 10}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runs",
        type=int,
        default=None,
        help="DAG runs of the 10-task DAG (default: RD_SCALE_DAG_RUNS, else 30 with the LocalExecutor "
        "and 10 with the CeleryExecutor; the issue's full case is 30)",
    )
    parser.addoption(
        "--executor",
        choices=tuple(DEFAULT_RUNS),
        default="local",
        help="Airflow's executor: local (LocalExecutor) or celery (CeleryExecutor, 2 workers, Redis broker)",
    )
    parser.addoption(
        "--listener-timeout",
        type=float,
        default=None,
        help="the plugin's listener_timeout in seconds (default: the plugin's, 10); a tight one (say 2.5) "
        "sends the ends of busy tries to the spool, to check the end-of-task deadline and the exit drain",
    )


@pytest.fixture(scope="session")
def scale_listener_timeout(request: pytest.FixtureRequest) -> float | None:
    value = request.config.getoption("--listener-timeout")
    if value is not None and value <= 0:
        raise pytest.UsageError("--listener-timeout must be a positive number of seconds")
    return value


@pytest.fixture(scope="session")
def scale_executor(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--executor"))


@pytest.fixture(scope="session")
def scale_runs(request: pytest.FixtureRequest, scale_executor: str) -> int:
    value = request.config.getoption("--runs")
    if value is None:
        env = os.environ.get("RD_SCALE_DAG_RUNS", "").strip()
        if env and not env.isdigit():
            raise pytest.UsageError(f"RD_SCALE_DAG_RUNS must be a number of DAG runs, not {env!r}")
        value = int(env) if env else DEFAULT_RUNS[scale_executor]
    if value < 2:
        raise pytest.UsageError("--runs needs at least 2 (one of them has the killed task)")
    return value
