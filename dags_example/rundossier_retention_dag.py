"""Example maintenance DAG: apply the `[rundossier]` retention settings of airflow.cfg, then sweep.

Copy it into $AIRFLOW_HOME/dags/. Every night at 03:00 it

1. writes `retention_keep_days`, `retention_keep_last`, `retention_blob_days` (the default rule)
   and `retention_overrides` (per-DAG rules, a JSON object such as {"finance_*": {"keep_days": 7}})
   as retention rules; rules set by a person in the CLI, API or UI are left as they are;
2. runs the retention sweep (finished runs only; bounded batches, so tasks keep recording);
3. removes orphan blobs older than a day.

Trigger it with {"dry_run": true} to see what it would remove. A pass that stops (storage or
database down) fails the task; the retry finishes the job. Without Airflow installed this file
imports cleanly and defines nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def airflow_section() -> dict[str, Any]:
    """airflow.cfg's [rundossier] section ({} when there is none)."""
    from airflow.configuration import conf

    return dict(conf.getsection("rundossier") or {}) if conf.has_section("rundossier") else {}


def sweep_retention(dry_run: bool = False, orphans: bool = True) -> dict[str, Any]:
    from rundossier.retention.maintenance import run_maintenance

    report = run_maintenance(dry_run=dry_run, orphans=orphans, config=airflow_section())
    return report.to_json()["totals"]


try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow is not installed: nothing to define
    dag = task = None

if dag is not None and task is not None:

    @dag(
        dag_id="rundossier_retention",
        schedule="0 3 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params={"dry_run": False, "orphans": True},
        default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
        tags=["rundossier", "maintenance"],
        doc_md=__doc__,
    )
    def rundossier_retention() -> None:
        @task(task_id="sweep")
        def sweep(**context: Any) -> dict[str, Any]:
            params = context.get("params") or {}
            return sweep_retention(dry_run=bool(params.get("dry_run")), orphans=bool(params.get("orphans", True)))

        sweep()

    rundossier_retention()
