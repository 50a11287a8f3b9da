"""Attempt comparison: what differs between a failed run and the flow's last successful run.

Compared: host, agent, parameters hash and code version (where the orchestrator gives them),
the run's timing windows, the failed step's windows against the same step in the baseline, the
steps whose duration moved the most, and which steps newly failed, are new, or were not reached.
Only recorded values are compared: a value missing on either side is said to be missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.model import WINDOW_NAMES, Comparison, Difference, Timing, WindowDelta
from rundossier.core.dossier.windows import RUN_STEP, ms_between, run_boundaries, step_boundaries, timing
from rundossier.core.status import UNSUCCESSFUL

FAILED = UNSUCCESSFUL
RUN_FIELDS = ("host", "agent", "params_hash", "code_version")
#: how many steps (besides the failed one) get a duration delta
TOP_STEPS = 5


@dataclass(frozen=True)
class Baseline:
    """The run to compare with (the flow's last successful run), with its steps and events."""

    run: Any
    steps: Sequence[Any] = ()
    events: Sequence[Any] = field(default_factory=tuple)
    #: its input artifacts of the failed step (what that step read when it last succeeded)
    inputs: Sequence[Any] = ()


def compare(
    run: Any,
    run_timing: Timing,
    latest: Mapping[str, Any],
    step_timings: Mapping[str, Timing],
    failed_step: str | None,
    baseline: Baseline,
) -> Comparison:
    b = baseline.run
    b_latest: dict[str, Any] = {}
    for s in baseline.steps:
        cur = b_latest.get(s.step_id)
        if cur is None or s.try_number > cur.try_number:
            b_latest[s.step_id] = s
    # only the baseline events a comparison reads: the run's own, the failed step's, the moved steps'
    moved = _moved_steps(step_timings, b_latest, failed_step)
    wanted = {failed_step, *moved}
    ledger = Ledger([e for e in baseline.events if e.step_id is None or e.step_id in wanted])
    b_timing = timing(
        run_boundaries(b, baseline.steps, ledger, live=False),
        step_id=None,
        try_number=None,
        status=b.status,
        live=False,
        now=None,
    )
    diffs: list[Difference] = []
    for name in RUN_FIELDS:
        diffs.extend(_diff(name, getattr(run, name, None), getattr(b, name, None)))
    if failed_step is not None and failed_step in latest and failed_step in b_latest:
        diffs.extend(
            _diff(f"step {failed_step} host", latest[failed_step].host, b_latest[failed_step].host, quiet_missing=True)
        )
    deltas = [_delta(None, w, run_timing, b_timing) for w in (*WINDOW_NAMES, "total")]
    b_timings: dict[str, Timing] = {}

    def b_step_timing(sid: str) -> Timing:
        if sid not in b_timings:
            s = b_latest[sid]
            b_timings[sid] = timing(
                step_boundaries(s, ledger),
                step_id=sid,
                try_number=s.try_number,
                status=s.status,
                live=False,
                now=None,
            )
        return b_timings[sid]

    if failed_step is not None and failed_step in step_timings and failed_step in b_latest:
        mine = step_timings[failed_step]
        deltas.extend(_delta(failed_step, w, mine, b_step_timing(failed_step)) for w in (*WINDOW_NAMES, "total"))
    for sid in moved:
        deltas.append(_delta(sid, "total", step_timings[sid], b_step_timing(sid)))
    newly_failed = tuple(
        sid
        for sid, s in latest.items()
        if sid != RUN_STEP and s.status in FAILED and sid in b_latest and b_latest[sid].status == "success"
    )
    new_steps = tuple(sid for sid in latest if sid != RUN_STEP and sid not in b_latest)
    not_reached = tuple(sid for sid in b_latest if sid != RUN_STEP and sid not in latest)
    note = None
    if not any(d.field in ("params_hash", "code_version") for d in diffs) and all(
        getattr(run, f, None) is None for f in ("params_hash", "code_version")
    ):
        note = "no parameters hash or code version was recorded for this run: they cannot be compared"
    return Comparison(
        baseline_run_id=b.run_id,
        baseline_attempt=getattr(b, "attempt", None),
        baseline_finished_at=b.finished_at,
        differences=tuple(diffs),
        windows=tuple(d for d in deltas if d.failed_ms is not None or d.baseline_ms is not None),
        newly_failed=newly_failed,
        new_steps=new_steps,
        not_reached=not_reached,
        note=note,
    )


def _moved_steps(step_timings: Mapping[str, Timing], b_latest: Mapping[str, Any], failed: str | None) -> list[str]:
    """The steps (besides the failed one) whose total time moved the most against the baseline."""
    moved: list[tuple[int, str]] = []
    for sid, t in step_timings.items():
        if sid == failed or sid == RUN_STEP or t.total_ms is None:
            continue
        bs = b_latest.get(sid)
        if bs is None:
            continue
        other = _total_ms(bs)
        if other is not None:
            moved.append((abs(t.total_ms - other), sid))
    return [sid for _, sid in sorted(moved, key=lambda x: (-x[0], x[1]))[:TOP_STEPS]]


def _total_ms(step: Any) -> int | None:
    """A step's total time from its row alone (what `timing` computes, when no event moves its start)."""
    origin = step.queued_at or step.started_at
    if origin is None or step.finished_at is None:
        return None
    return ms_between(origin, step.finished_at)


def _diff(name: str, failed: Any, base: Any, *, quiet_missing: bool = False) -> list[Difference]:
    if failed == base:
        return []
    if failed is None:
        return [] if quiet_missing else [Difference(name, None, base, "not recorded for this run")]
    if base is None:
        return [] if quiet_missing else [Difference(name, failed, None, "not recorded for the baseline run")]
    return [Difference(name, failed, base)]


def _ms(t: Timing, name: str) -> int | None:
    if name == "total":
        return t.total_ms
    return t.window(name).duration_ms


def _delta(step_id: str | None, name: str, mine: Timing, base: Timing) -> WindowDelta:
    a, b = _ms(mine, name), _ms(base, name)
    return WindowDelta(step_id, name, a, b, a - b if a is not None and b is not None else None)


__all__ = ["Baseline", "compare"]
