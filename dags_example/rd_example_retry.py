"""A task that fails twice, then succeeds on its third try: three tries of one step."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

log = logging.getLogger(__name__)


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["rundossier-example"])
def rd_example_retry():
    @task(retries=2, retry_delay=timedelta(seconds=1))
    def flaky_fetch() -> int:
        try_number = get_current_context()["ti"].try_number
        log.info("fetching, try %d", try_number)
        if try_number < 3:
            raise ConnectionError(f"upstream API timed out (try {try_number})")
        log.info("fetched 120 rows")
        return 120

    flaky_fetch()


rd_example_retry()
