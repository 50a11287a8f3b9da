"""One scheduled retention pass, for maintenance jobs (the example Airflow DAG and Prefect flow call it).

    report = run_maintenance(dry_run=False, orphans=True, config={"retention_keep_days": "30", ...})

Applies the `retention_*` settings it is given (airflow.cfg's `[rundossier]` section), sweeps,
then (optionally) removes orphan blobs, and raises MaintenanceError when a pass stopped early so the
scheduler marks the job failed and retries it (the next pass finishes what this one started).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from rundossier.errors import RundossierError
from rundossier.retention.orphans import DEFAULT_GRACE, sweep_orphans
from rundossier.retention.sweep import DEFAULT_BATCH, SweepReport, sweep
from rundossier.retention.sync import apply_airflow_config
from rundossier.settings import ENV_VARS, Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from rundossier.storage.spool import Spool

log = logging.getLogger("rundossier.retention")


class MaintenanceError(RundossierError):
    """A retention pass stopped before it finished; the report says how far it got."""

    def __init__(self, message: str, report: SweepReport) -> None:
        super().__init__(message)
        self.report = report


def run_maintenance(
    *,
    dry_run: bool = False,
    orphans: bool = True,
    grace: timedelta = DEFAULT_GRACE,
    batch_size: int = DEFAULT_BATCH,
    config: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> SweepReport:
    """Apply `config`'s retention rules (source airflow.cfg), sweep, clean orphans; log a summary."""
    config = dict(config or {})
    if settings is None:
        settings = Settings.resolve(layer={k: v for k, v in config.items() if k in ENV_VARS})
    store = RunStore(settings.db_url, timeout=settings.db_timeout)
    blobs = BlobStore(settings.storage_url, settings.storage_options)
    try:
        if any(k.startswith("retention_") for k in config):
            synced = apply_airflow_config(store, config)
            log.info("retention rules from configuration: %s", synced.to_json())
        report = sweep(store, blobs, dry_run=dry_run, batch_size=batch_size)
        if orphans and report.complete:
            report.orphans = sweep_orphans(store, blobs, dry_run=dry_run, grace=grace, spool=Spool(settings.spool_dir))
    finally:
        store.close()
    totals = report.totals()
    log.info(
        "retention %s: %d runs removed, %d runs' traces and logs expired, %d blobs, %d bytes, %d flows",
        "dry run" if dry_run else "sweep",
        totals["runs_removed"],
        totals["runs_expired"],
        totals["blobs_removed"],
        totals["bytes_removed"],
        totals["flows"],
    )
    problem = report.error or (report.orphans.error if report.orphans is not None else None)
    if problem:
        raise MaintenanceError(f"the retention pass stopped: {problem}; the next run finishes it", report)
    return report


__all__ = ["run_maintenance", "MaintenanceError"]
