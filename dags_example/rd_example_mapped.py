"""Mapped tasks where one index fails: each index is its own step (`process[2]`), downstream is upstream_failed."""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["rundossier-example"])
def rd_example_mapped():
    @task
    def partitions() -> list[int]:
        return [0, 1, 2, 3]

    @task
    def process(partition: int) -> int:
        log.info("processing partition %d", partition)
        if partition == 2:
            raise ZeroDivisionError(f"partition {partition} has no rows to average")
        return partition * 10

    @task
    def summarize(totals: list[int]) -> int:
        return sum(totals)

    summarize(process.expand(partition=partitions()))


rd_example_mapped()
