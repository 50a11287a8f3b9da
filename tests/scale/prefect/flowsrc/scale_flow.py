"""The flow the Prefect scale test deploys to a process work pool (loaded from this folder's copy).

`scale(index)` is one of the test's flow runs; what happens in it depends only on `index` and the
seed (`outcomes.py`, shared with the test that checks the results):

- `extract` returns the items; `work` is mapped over them and fails for the items `outcomes` says;
- `flaky` (retries=1) fails its first try in the runs `outcomes` says, and recovers on its second;
- in the one run chosen to be killed, `hang` writes this process's pid to a marker file and waits
  for the test's SIGKILL.

The Block is RD_SCALE_BLOCK; markers go to RD_SCALE_MARKERS. Each flow-run process names its
PostgreSQL connections `rd-flow-<pid>` (libpq's PGAPPNAME) so the test counts them per process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

if "RD_SCALE_MARKERS" in os.environ:  # a flow-run process (not the test loading the flow to deploy it)
    os.environ["PGAPPNAME"] = f"rd-flow-{os.getpid()}"  # before any connection is opened

from outcomes import Plan  # noqa: E402 - this folder is the flow's working directory
from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.runtime import task_run as current_task_run  # noqa: E402

from rundossier.prefect import RunDossier  # noqa: E402

dossier = RunDossier.load(os.environ["RD_SCALE_BLOCK"])
MARKERS = Path(os.environ.get("RD_SCALE_MARKERS", "."))


@task
def extract(index: int) -> list[int]:
    get_run_logger().info("run %d: extracting %d items", index, Plan.ITEMS)
    return list(range(Plan.ITEMS))


@task
def work(index: int, item: int) -> int:
    logger = get_run_logger()
    logger.info("run %d: item %d", index, item)
    if Plan.item_fails(index, item):
        raise ValueError(f"run {index}: item {item} is malformed")
    return item * 2


@task(retries=1, retry_delay_seconds=0)
def flaky(index: int) -> str:
    if Plan.flaky_fails(index) and (current_task_run.run_count or 1) == 1:
        raise TimeoutError(f"run {index}: the warehouse did not answer in time")
    return "loaded"


@task
def hang(index: int) -> None:
    get_run_logger().info("run %d: waiting to be killed", index)
    (MARKERS / f"kill-{index}.tmp").write_text(str(os.getpid()))
    os.replace(MARKERS / f"kill-{index}.tmp", MARKERS / f"kill-{index}")
    time.sleep(600)


@flow(name=Plan.FLOW, **dossier.hooks())
def scale(index: int) -> int:
    items = extract(index)
    results = work.map(index, items)
    loaded = flaky(index)
    if Plan.killed(index):
        hang(index)
    done = [r.result() for r in results]  # a failed item fails the flow run
    return len(done) + len(loaded)
