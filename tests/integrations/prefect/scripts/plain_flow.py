"""Flows run the way many users run them, `python plain_flow.py FLOW`, for the tests.

    killed     a task completes; the next one logs three lines, writes its pid and flow run id to
               RD_TEST_MARKER and waits to be killed
    recovered  a task fails once and succeeds when retried, another one succeeds: the flow succeeds
    failing    a task fails once and succeeds when retried, then a task fails with a chained exception
    early      the flow fails in its own code, before any task
    served     `.serve()` a deployment of `killed` (the tests run it and kill its flow's process)

The Block is RD_TEST_BLOCK (environment variables: a served flow's process is started by the
runner, without this script's arguments).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run as current_flow_run

from rundossier.prefect import RunDossier

MARKER = Path(os.environ["RD_TEST_MARKER"]) if os.environ.get("RD_TEST_MARKER") else None
dossier = RunDossier.load(os.environ["RD_TEST_BLOCK"])
_tries = {"flaky": 0}


@task
def quick() -> list[int]:
    get_run_logger().info("quick work done")
    return [1, 2]  # not a small int: Prefect links a task's inputs to the task runs that returned them


@task
def slow(rows: list[int]) -> None:
    logger = get_run_logger()
    for part in range(3):
        logger.info("slow work, part %d", part)
    if MARKER is not None:  # where the tests find this process and its flow run
        MARKER.write_text(f"{os.getpid()} {current_flow_run.id}")
    time.sleep(600)


@flow(name="killed-flow", **dossier.hooks())
def killed() -> None:
    slow(quick())


@task(retries=1, retry_delay_seconds=0)
def flaky() -> int:
    _tries["flaky"] += 1
    if _tries["flaky"] == 1:
        raise TimeoutError("first try timed out")
    return 2


@flow(name="recovered-flow", **dossier.hooks())
def recovered() -> int:
    return len(quick()) + flaky()


@task
def load(rows: list[int]) -> None:
    get_run_logger().info("loading %d rows into batch 7", len(rows))
    try:
        raise ConnectionError("warehouse timeout after 30s")
    except ConnectionError as exc:
        raise RuntimeError("could not load batch 7") from exc


@flow(name="failing-flow", **dossier.hooks())
def failing() -> None:
    load(list(range(flaky())))


@flow(name="early-flow", **dossier.hooks())
def early() -> None:
    raise ValueError("bad parameter: day=2026-13-01")


if __name__ == "__main__":
    if sys.argv[1] == "served":
        killed.serve(name="killed-deployment")
    else:
        {"killed": killed, "recovered": recovered, "failing": failing, "early": early}[sys.argv[1]]()
