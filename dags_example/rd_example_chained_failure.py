"""A task that fails with a chained exception: rundossier keeps the whole chain in its trace."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from airflow.sdk import dag, task

log = logging.getLogger(__name__)


def parse_config(raw: str) -> dict:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"config is not valid JSON: {raw[:40]!r}") from exc


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["rundossier-example"])
def rd_example_chained_failure():
    @task
    def extract() -> str:
        log.info("reading the config from the landing zone")
        return '{"table": "orders", "batch": 42'  # truncated: the closing brace is missing

    @task
    def load(raw: str) -> None:
        log.info("loading with config %s", raw)
        print("this line goes to stdout")
        try:
            parse_config(raw)
        except ValueError as exc:
            raise RuntimeError("load of table orders failed") from exc

    load(extract())


rd_example_chained_failure()
