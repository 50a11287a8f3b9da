"""Which tries of the scale test's tasks fail: a pure function of (seed, run, task, try).

The DAG asks it what to do and the test asks it what to expect, so both agree without talking.
"""

from __future__ import annotations

import random

#: the 10 tasks: nine independent workers and a final report that runs whatever they did
WORKERS = tuple(f"work_{i}" for i in range(9))
REPORT = "report"
TASKS = (*WORKERS, REPORT)
#: retries of each worker (the report gets none)
RETRIES = 1
#: chance that one try fails
P_FAIL = 0.3
#: the task killed with SIGKILL (on its first try) in the run the test picks
VICTIM = "work_4"


def fails(seed: int, run_id: str, task_id: str, try_number: int) -> bool:
    """True if this try raises."""
    return random.Random(f"{seed}|{run_id}|{task_id}|{try_number}").random() < P_FAIL


def expected_tries(seed: int, run_id: str, *, victim: bool = False) -> dict[tuple[str, int], str]:
    """(task, try) -> the status rundossier must record, for one run of the DAG."""
    out: dict[tuple[str, int], str] = {}
    for task in WORKERS:
        for n in range(1, RETRIES + 2):
            if victim and task == VICTIM and n == 1:
                out[(task, n)] = "crashed"
                continue
            failed = fails(seed, run_id, task, n)
            out[(task, n)] = "failed" if failed else "success"
            if not failed:
                break
    out[(REPORT, 1)] = "failed" if fails(seed, run_id, REPORT, 1) else "success"
    return out
