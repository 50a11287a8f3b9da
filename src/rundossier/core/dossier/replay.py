"""Replay plan: what a re-run from the failed step redoes, what it keeps, and whether it is safe.

Redo = the failed step and everything downstream of it, from the recorded dependency graph
(`step.upstream`, matched to step ids or task ids); when no step recorded its upstream steps, the
steps that started at or after the failed one (or never started) count as downstream, and the
plan says so. Keep = the successful steps outside that set. A run is not replayable while it is
still running, or when the inputs recorded for it changed: `inputs_recorded` events of one scope
(the run, or one step) that carry different hashes (parameters edited between attempts, a
source file rewritten between tries).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from rundossier.core.dossier.events import INPUTS_RECORDED
from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.model import Evidence, ReplayPlan
from rundossier.core.dossier.windows import RUN_STEP
from rundossier.core.status import NOT_DONE

HOW = {
    "airflow": (
        "Clearing the failed task with --downstream re-runs it and every task downstream of it in this DAG run; "
        "the tasks listed under keep stay as they are."
    ),
    "prefect": (
        "A flow-run retry runs the whole flow again: the steps listed under keep run again too unless their "
        "results are cached (a cache policy or persisted results)."
    ),
    "python": (
        "Plain Python runs are started by your own code: a re-run from the failed step needs that code to skip "
        "the steps listed under keep."
    ),
}


def replay_plan(
    run: Any,
    latest: Mapping[str, Any],
    failed_step: str | None,
    ledger: Ledger,
    *,
    live: bool,
) -> ReplayPlan | None:
    """The plan for a failed (or live) run; None for a run that did not fail."""
    if not live and run.status not in NOT_DONE:
        return None
    how = HOW.get(run.orchestrator, HOW["python"])
    steps = {sid: s for sid, s in latest.items() if sid != RUN_STEP}
    redo, basis = _redo(steps, failed_step)
    keep = tuple(sid for sid in _ordered(steps) if sid not in redo and steps[sid].status == "success")
    redo_t = tuple(sid for sid in _ordered(steps) if sid in redo)
    changed = _changed_inputs(ledger)
    if live:
        return ReplayPlan(failed_step, False, "the run is still running", redo_t, keep, how)
    if changed:
        return ReplayPlan(
            failed_step,
            False,
            "the inputs recorded for this run changed, so kept results and redone steps would not match: "
            "re-run the whole flow instead",
            redo_t,
            keep,
            how,
            tuple(changed),
        )
    reason = basis
    if failed_step is None:
        reason = "the run failed outside any step: re-run the whole flow"
    return ReplayPlan(failed_step, True, reason, redo_t, keep, how)


def _ordered(steps: Mapping[str, Any]) -> list[str]:
    """Step ids by start time (steps that never started last), then id."""
    started = sorted((s.started_at, sid) for sid, s in steps.items() if s.started_at is not None)
    return [sid for _, sid in started] + sorted(sid for sid, s in steps.items() if s.started_at is None)


def _redo(steps: Mapping[str, Any], failed_step: str | None) -> tuple[set[str], str]:
    if failed_step is None or failed_step not in steps:
        return set(steps), "no failed step recorded: every step would run again"
    names: dict[str, set[str]] = defaultdict(set)  # task id or step id -> step ids
    for sid, s in steps.items():
        names[sid].add(sid)
        if getattr(s, "task_id", None):
            names[s.task_id].add(sid)
    downstream: dict[str, set[str]] = defaultdict(set)
    has_graph = False
    for sid, s in steps.items():
        for up in s.upstream or ():
            has_graph = True
            for upsid in names.get(up, ()):
                downstream[upsid].add(sid)
    if has_graph:
        seen = {failed_step}
        stack = [failed_step]
        while stack:
            for nxt in downstream.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen, "from the recorded dependency graph"
    failed = steps[failed_step]
    start = failed.started_at
    redo = {failed_step}
    for sid, s in steps.items():
        later = start is not None and s.started_at is not None and s.started_at >= start
        if later or s.status != "success":
            redo.add(sid)
    return redo, (
        "no dependency graph recorded: steps that started at or after the failed one, and steps that did not "
        "succeed, count as downstream"
    )


def _changed_inputs(ledger: Ledger) -> list[Evidence]:
    by_scope: dict[str | None, list[Any]] = defaultdict(list)
    for e in ledger.all_of(INPUTS_RECORDED):
        by_scope[e.step_id].append(e)
    out: list[Evidence] = []
    for scope, events in sorted(by_scope.items(), key=lambda kv: kv[0] or ""):
        hashes: dict[str, Any] = {}
        for e in sorted(events, key=lambda e: e.ts):
            h = _hash(e.data)
            if h is not None and h not in hashes:
                hashes[h] = e
        if len(hashes) > 1:
            what = "the run's inputs" if scope is None else f"the inputs of step {scope}"
            seq = list(hashes.items())
            text = f"{what} changed: " + " -> ".join(
                f"{h[:12]} ({_when(e)})" for h, e in seq[:4]
            )  # a few is enough to see the change
            out.append(
                Evidence(
                    text,
                    "events inputs_recorded",
                    {"scope": scope, "hashes": [h for h, _ in seq], "at": [e.ts.isoformat() for _, e in seq]},
                )
            )
    return out


def _hash(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    h = data.get("hash") or data.get("params_hash")
    return str(h) if h is not None else None


def _when(e: Any) -> str:
    parts: list[str] = []
    data = e.data if isinstance(e.data, dict) else {}
    if data.get("attempt") is not None:
        parts.append(f"attempt {data['attempt']}")
    if e.try_number is not None:
        parts.append(f"try {e.try_number}")
    parts.append(e.ts.strftime("%Y-%m-%d %H:%M:%S"))
    return ", ".join(parts)


__all__ = ["replay_plan", "HOW"]
