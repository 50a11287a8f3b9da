"""Next actions for a failed run, in the words of its orchestrator (exact, copyable commands).

- Airflow: `airflow tasks clear DAG --task-regex '^TASK$' --start-date LD --end-date LD --downstream
  --yes` when the run's logical date is known (from the `logical_date` tag or the run id), and
  always the REST call `POST /api/v2/dags/{dag_id}/clearTaskInstances` with the exact
  `dag_run_id` (it also targets one map index of a mapped task).
- Prefect: `prefect flow-run retry FLOW_RUN_ID` (the whole flow run; add `--entrypoint` when it
  has no deployment).
- Plain Python: re-run your own entry point (rundossier does not start runs).

Then what to inspect (the trace, the log, artifacts written), what to compare with (the flow's
last successful run, an earlier successful try of the step) and a fixed hint per class.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from rundossier.core.dossier.classify import (
    DATA,
    KILLED,
    PRE_WORK,
    RATE_LIMITED_CLASS,
    TIMEOUT,
    UNAVAILABLE,
    UPSTREAM,
    WRITE_BACK,
)
from rundossier.core.dossier.model import Action, Classification, Material
from rundossier.core.dossier.windows import RUN_STEP

_AIRFLOW_RUN_ID = re.compile(r"^(?:manual|scheduled|backfill|dataset_triggered|asset_triggered)__(.+)$")

HINTS: dict[str, str] = {
    KILLED: "The process was killed: check the worker's memory use and the orchestrator's kill reason before "
    "retrying; a retry on the same worker size may be killed again.",
    TIMEOUT: "The try reached its time limit: compare its active work with the baseline below before raising "
    "the limit.",
    UPSTREAM: "Fix the upstream step first: this step never ran.",
    PRE_WORK: "The try failed before doing any work: fix the import, configuration or dependency on the worker "
    "first; a retry without a change fails the same way.",
    WRITE_BACK: "The work finished and persisting its output failed: check the destination (permissions, free "
    "space, connectivity) before retrying.",
    RATE_LIMITED_CLASS: "A service throttled the requests: usually transient; retry later, and add retries with "
    "backoff if it repeats.",
    UNAVAILABLE: "A service could not be reached: usually transient; check that it is up, then retry.",
    DATA: "The data did not pass: inspect the input the step read; a retry with the same data fails the same way.",
}


def airflow_logical_date(run: Any) -> tuple[str | None, str | None]:
    """The DAG run's logical date and where it came from (the `logical_date` tag, or the run id)."""
    tags = run.tags if isinstance(getattr(run, "tags", None), dict) else {}
    value = tags.get("logical_date")
    if isinstance(value, str) and _is_iso(value):
        return value, "tag logical_date"
    m = _AIRFLOW_RUN_ID.match(run.run_key or "")
    if m and _is_iso(m.group(1)):
        return m.group(1), "the run id"
    return None, None


def _is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def retry_actions(run: Any, step: Any | None) -> list[Action]:
    """How to retry the failed step (or the run) with this run's orchestrator."""
    orch = run.orchestrator
    if orch == "airflow":
        return _airflow(run, step)
    if orch == "prefect":
        return [
            Action(
                "retry",
                "Retry the flow run",
                f"prefect flow-run retry {shlex.quote(run.run_key)}",
                "Prefect retries the whole flow run; add --entrypoint path/to/flow.py:flow_function when the "
                "flow run has no deployment.",
            )
        ]
    return [
        Action(
            "retry",
            "Re-run the flow",
            None,
            "Plain Python runs are started by your own code: run its entry point again "
            f"(flow {run.flow_id!r}, run key {run.run_key!r}).",
        )
    ]


def _airflow(run: Any, step: Any | None) -> list[Action]:
    dag = run.flow_id
    out: list[Action] = []
    task = None
    map_index = None
    if step is not None and step.step_id != RUN_STEP:
        task = step.task_id or step.step_id
        map_index = step.map_index if step.map_index is not None and step.map_index >= 0 else None
    logical, source = airflow_logical_date(run)
    if task is not None and logical is not None:
        cmd = (
            f"airflow tasks clear {shlex.quote(dag)} --task-regex {shlex.quote('^' + re.escape(task) + '$')} "
            f"--start-date {shlex.quote(logical)} --end-date {shlex.quote(logical)} --downstream --yes"
        )
        detail = f"Clears {task} and its downstream tasks in the DAG run with logical date {logical} (from {source})."
        if map_index is not None:
            detail += " The CLI clears every map index of the task; the REST call below targets one."
        out.append(Action("retry", f"Clear {task} and downstream", cmd, detail))
    body: dict[str, Any] = {
        "dag_run_id": run.run_key,
        "include_downstream": True,
        "only_failed": False,
        "dry_run": False,
    }
    if task is not None:
        body["task_ids"] = [[task, map_index]] if map_index is not None else [task]
    else:
        body["only_failed"] = True
    cmd = (
        f'curl -X POST "$AIRFLOW_URL/api/v2/dags/{quote(dag, safe="")}/clearTaskInstances" '
        '-H "Authorization: Bearer $AIRFLOW_TOKEN" -H "Content-Type: application/json" '
        f"-d {shlex.quote(json.dumps(body, separators=(',', ':')))}"
    )
    title = f"Clear {task} and downstream (REST API)" if task is not None else "Clear the failed tasks (REST API)"
    detail = "Targets exactly this DAG run; set dry_run to true first to see what it would clear."
    if logical is None and task is not None:
        detail += " (No logical date is recorded for this run, so the CLI command cannot target it.)"
    out.append(Action("retry", title, cmd, detail))
    return out


def inspect_actions(run: Any, step: Any | None, material: Sequence[Material], artifacts: Sequence[Any]) -> list[Action]:
    out: list[Action] = []
    state = {m.name: m for m in material}
    trace = state.get("trace")
    on_step = step if step is not None and step.step_id != RUN_STEP else None
    if trace is not None and trace.state == "stored":
        if on_step is not None:
            cmd = f"rundossier trace {run.run_id} --step {shlex.quote(on_step.step_id)} --try {on_step.try_number}"
        else:
            cmd = f"rundossier trace {run.run_id}"
        out.append(Action("inspect", "Read the full trace", cmd, trace.ref))
    elif trace is not None:
        out.append(Action("inspect", "Trace", None, trace.detail))
    log = state.get("log")
    if on_step is not None and log is not None:
        path = f"/api/runs/{run.run_id}/steps/{quote(on_step.step_id, safe='')}/logs?try={on_step.try_number}"
        if log.state == "stored":
            out.append(Action("inspect", "Read the step's log", f"GET {path}", "or open the run in the UI"))
        else:
            out.append(Action("inspect", "Step log", None, log.detail))
    for e in artifacts[-3:]:
        data = e.data if isinstance(e.data, dict) else {}
        uri = data.get("uri") or e.raw_ref
        out.append(
            Action("inspect", f"Inspect the artifact written by {e.step_id or 'the run'}", None, uri or e.summary)
        )
    return out


def compare_actions(run: Any, baseline_run_id: str | None, earlier_success: Any | None) -> list[Action]:
    out: list[Action] = []
    if earlier_success is not None:
        out.append(
            Action(
                "compare",
                f"Compare with try {earlier_success.try_number} of {earlier_success.step_id}, which succeeded",
                f"rundossier show {run.run_id}",
            )
        )
    if baseline_run_id is not None:
        out.append(
            Action("compare", "Compare with the flow's last successful run", f"rundossier show {baseline_run_id}")
        )
    return out


def hint_action(classification: Classification | None) -> list[Action]:
    if classification is None or classification.code not in HINTS:
        return []
    return [Action("fix", classification.label, None, HINTS[classification.code])]


__all__ = ["retry_actions", "inspect_actions", "compare_actions", "hint_action", "airflow_logical_date", "HINTS"]
