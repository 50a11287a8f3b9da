"""Example Prefect flows recorded by rundossier: each shows one kind of run it records.

    chained_failure      a task fails with a chained exception (RuntimeError from ConnectionError)
    flaky_then_ok        a task fails twice, then its third try succeeds (three tries of one step)
    mapped_with_failure  a mapped task whose third item fails; the flow returns the failed states
    async_failure        an async flow whose async task fails
    parent_with_subflow  a flow whose subflow fails in a task recorded live with task_hooks()
    retried_then_failure a task that fails twice then succeeds, then a task that fails for good

The Block is loaded once, by name (`RUNDOSSIER_PREFECT_BLOCK`, default "dossier-example"); without
a saved Block, `RunDossier()` records with the RUNDOSSIER_* environment variables.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run as current_flow_run

from rundossier.prefect import RunDossier

BLOCK_NAME = os.environ.get("RUNDOSSIER_PREFECT_BLOCK", "dossier-example")


def load_dossier() -> RunDossier:
    try:
        return RunDossier.load(BLOCK_NAME)
    except ValueError:  # no Block of that name: settings from the environment
        return RunDossier()


dossier = load_dossier()
_tries: Counter[str] = Counter()


# -- a chained exception in a task ----------------------------------------------------------------
@task
def extract() -> list[int]:
    get_run_logger().info("extracted %d rows", 3)
    return [1, 2, 3]


@task
def transform(rows: list[int]) -> list[int]:
    return [r * 10 for r in rows]


def connect_warehouse() -> None:
    raise ConnectionError("warehouse timeout after 30s")


@task
def load(rows: list[int]) -> None:
    logger = get_run_logger()
    logger.info("loading %d rows into batch 7", len(rows))
    try:
        connect_warehouse()
    except ConnectionError as exc:
        raise RuntimeError("could not load batch 7") from exc


@flow(**dossier.hooks())
def chained_failure() -> None:
    load(transform(extract()))


# -- retries then success ---------------------------------------------------------------------------
@task(retries=2, retry_delay_seconds=0)
def flaky_fetch() -> str:
    key = f"{current_flow_run.id}"
    _tries[key] += 1
    get_run_logger().info("fetch attempt %d", _tries[key])
    if _tries[key] < 3:
        raise TimeoutError(f"upstream API timed out (attempt {_tries[key]})")
    return "payload"


@flow(**dossier.hooks())
def flaky_then_ok() -> str:
    return flaky_fetch()


# -- mapped tasks with one failing item -------------------------------------------------------------
@task
def process(item: int) -> int:
    if item == 3:
        raise ValueError(f"item {item} is malformed")
    return item * item


@flow(**dossier.hooks())
def mapped_with_failure(items: list[int] | None = None) -> list:
    futures = process.map(items or [1, 2, 3, 4, 5])
    futures.wait()
    return futures


# -- an async flow ----------------------------------------------------------------------------------
@task
async def fetch_page(page: int) -> str:
    await asyncio.sleep(0.01)
    if page == 2:
        raise KeyError(f"page {page} missing from the response")
    return f"page {page}"


@flow(**dossier.hooks())
async def async_failure() -> list[str]:
    return [await fetch_page(1), await fetch_page(2)]


# -- a subflow failure --------------------------------------------------------------------------------
@task(**dossier.task_hooks())
def validate(batch: str) -> None:
    get_run_logger().warning("validating %s", batch)
    raise AssertionError(f"batch {batch!r} has 2 duplicate keys")


@flow(**dossier.hooks())
def child_flow(batch: str = "2026-11-22") -> None:
    validate(batch)


@flow(**dossier.hooks())
def parent_with_subflow() -> None:
    extract()
    child_flow()


# -- a retried task that recovers, then a failure ------------------------------------------------------
@task(retries=2, retry_delay_seconds=0)
def retried() -> int:
    key = f"{current_flow_run.id}"
    _tries[key] += 1
    if _tries[key] < 3:
        raise TimeoutError(f"source busy (attempt {_tries[key]})")
    return 3


@flow(**dossier.hooks())
def retried_then_failure() -> None:
    load(list(range(retried())))


ALL = (chained_failure, flaky_then_ok, mapped_with_failure, async_failure, parent_with_subflow, retried_then_failure)

__all__ = [
    "ALL",
    "async_failure",
    "chained_failure",
    "child_flow",
    "dossier",
    "flaky_then_ok",
    "mapped_with_failure",
    "parent_with_subflow",
    "retried_then_failure",
]
