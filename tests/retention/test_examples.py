"""The example maintenance DAG and Prefect flow import without Airflow or Prefect, and their sweep works."""

from __future__ import annotations

import importlib.util
import runpy
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.retention.maintenance import MaintenanceError, run_maintenance
from tests.retention.helpers import make_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "dags_example" / "rundossier_retention_dag.py", ROOT / "flows_example" / "retention_flow.py"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_import_cleanly(path: Path) -> None:
    namespace = runpy.run_path(str(path), run_name="example")
    assert callable(namespace["sweep_retention"])
    if importlib.util.find_spec("airflow") is None and importlib.util.find_spec("prefect") is None:
        assert "rundossier_retention" not in namespace


def test_the_flow_example_sweeps(_isolated_home: Path) -> None:
    rec = Recorder.from_env()
    from datetime import UTC, datetime

    make_run(rec.store, rec.blobs, "etl", age_days=45, failed_step=True, now=datetime.now(UTC))
    make_run(rec.store, rec.blobs, "etl", age_days=1, now=datetime.now(UTC))
    totals = runpy.run_path(str(EXAMPLES[1]), run_name="example")["sweep_retention"](dry_run=False)
    assert totals["runs_removed"] == 1 and totals["blobs_removed"] == 4  # trace, its JSON, log, its index
    assert rec.store.count_runs() == 1


def test_maintenance_applies_configuration_then_sweeps(_isolated_home: Path) -> None:
    rec = Recorder.from_env()
    from datetime import UTC, datetime

    for i in range(4):
        make_run(rec.store, rec.blobs, "finance_daily", age_days=i + 1, now=datetime.now(UTC), seq=i)
    report = run_maintenance(config={"retention_overrides": '{"finance_*": {"keep_last": 1}}'})
    assert report.totals()["runs_removed"] == 3 and report.orphans is not None
    assert {r.flow_pattern: r.source for r in rec.store.list_policies()} == {"finance_*": "airflow.cfg"}


def test_maintenance_fails_loudly_when_a_pass_stops(_isolated_home: Path, disk_fault: object) -> None:
    rec = Recorder.from_env()
    from datetime import UTC, datetime

    make_run(rec.store, rec.blobs, "etl", age_days=90, now=datetime.now(UTC))
    with pytest.raises(MaintenanceError, match="the disk went away") as info:
        run_maintenance()
    assert info.value.report.complete is False
