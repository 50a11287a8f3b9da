"""The scale test's DAG: nine workers that fail at random (seeded, see failplan.py), retried
once, and a report that runs whatever they did. In the run whose conf names a pid file, the
first try of `work_4` writes its pid there and waits to be killed with SIGKILL."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task
from failplan import REPORT, RETRIES, VICTIM, WORKERS, fails

log = logging.getLogger(__name__)


def _try(task_id: str) -> None:
    ctx = get_current_context()
    ti, conf = ctx["ti"], ctx["dag_run"].conf or {}
    seed, run_id, n = int(conf.get("seed", 0)), ctx["dag_run"].run_id, ti.try_number
    log.info("%s try %d of %s starts", task_id, n, run_id)
    print(f"{task_id}: working on {run_id}")
    if task_id == VICTIM and n == 1 and conf.get("pid_file"):
        path = conf["pid_file"]
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        log.info("waiting to be killed")
        time.sleep(600)
    time.sleep(float(conf.get("sleep", 0.2)))
    if fails(seed, run_id, task_id, n):
        raise ValueError(f"planned failure of {task_id}, try {n} of {run_id}")
    log.info("%s try %d done", task_id, n)


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, max_active_runs=64, tags=["rundossier-scale"])
def rd_scale():
    workers = [task(task_id=name, retries=RETRIES, retry_delay=timedelta(seconds=0))(_try)(name) for name in WORKERS]
    workers >> task(task_id=REPORT, retries=0, trigger_rule="all_done")(_try)(REPORT)


rd_scale()
