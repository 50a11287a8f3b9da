"""Example scheduled Prefect flow: the retention sweep, every night at 03:00.

    python flows_example/retention_flow.py        # serves it on a schedule (needs a Prefect server)

It uses the RUNDOSSIER_* settings of the process (database, storage). Retention defaults of a
RunDossier Block reach the store when flows using the Block run (`apply_block_defaults`), so this
flow only sweeps. Run it with dry_run=True to see what would be removed. A pass that stops
(storage or database down) fails the flow run; the next run finishes the job. Without Prefect
installed this file imports cleanly and defines nothing.
"""

from __future__ import annotations

from typing import Any


def sweep_retention(dry_run: bool = False, orphans: bool = True) -> dict[str, Any]:
    from rundossier.retention.maintenance import run_maintenance

    report = run_maintenance(dry_run=dry_run, orphans=orphans)
    return report.to_json()["totals"]


try:
    from prefect import flow
except ImportError:  # Prefect is not installed: nothing to define
    flow = None

if flow is not None:

    @flow(name="rundossier-retention", log_prints=True, retries=2, retry_delay_seconds=600)
    def rundossier_retention(dry_run: bool = False, orphans: bool = True) -> dict[str, Any]:
        totals = sweep_retention(dry_run=dry_run, orphans=orphans)
        print(f"rundossier retention {'dry run' if dry_run else 'sweep'}: {totals}")
        return totals

    if __name__ == "__main__":
        rundossier_retention.serve(name="nightly", cron="0 3 * * *")
