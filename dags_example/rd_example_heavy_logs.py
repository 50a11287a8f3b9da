"""A long task that logs heavily (minutes of simulated work), then fails: its whole log is kept.

Params: `seconds` (default 180) and `lines_per_second` (default 200), e.g.
`airflow dags test rd_example_heavy_logs -c '{"seconds": 5}'`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["rundossier-example"],
    params={
        "seconds": Param(180, type="number", minimum=0),
        "lines_per_second": Param(200, type="integer", minimum=1),
    },
)
def rd_example_heavy_logs():
    @task
    def crunch() -> None:
        params = get_current_context()["params"]
        seconds, rate = float(params["seconds"]), int(params["lines_per_second"])
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            for _ in range(rate // 10 or 1):
                n += 1
                log.info("batch %d: merged %d rows into the staging table", n, n * 17)
                if n % 50 == 0:
                    print(f"progress: {n} batches")
            time.sleep(0.1)
        log.warning("checksum mismatch after %d batches", n)
        raise RuntimeError(f"checksum mismatch after {n} batches")

    crunch()


rd_example_heavy_logs()
