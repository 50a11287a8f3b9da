"""`build_dossier`: one pure function from a run's rows and events to its `Dossier` (no I/O).

    dossier = build_dossier(run, steps, events, baseline=Baseline(last_ok, its_steps, its_events), now=now)

`run`, `steps` and `events` are the store's rows (or any objects with the same attributes);
`baseline` is the flow's last successful run, fetched by the caller; `now` is used only for
the elapsed time of open windows of a live run. Deterministic: the same input gives the same
dossier.

Which try is "the failed step": among the steps whose latest try failed (or crashed), the one
that finished first; else a step that was skipped because an upstream failed; else the run's
recorded root-cause step; else the failure is the run's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rundossier.core.dossier.actions import compare_actions, hint_action, inspect_actions, retry_actions
from rundossier.core.dossier.classify import FailureFacts, chain_from_data, classify
from rundossier.core.dossier.compare import Baseline, compare
from rundossier.core.dossier.events import ARTIFACT_WRITTEN, FIRST_WORK, LAST_WORK, RUN_FINISHED, STEP_FAILED
from rundossier.core.dossier.inputs import input_signals
from rundossier.core.dossier.ledger import Ledger
from rundossier.core.dossier.model import INCONSISTENT, OPEN, SETUP, Dossier, Material, Signal, Timing
from rundossier.core.dossier.replay import replay_plan
from rundossier.core.dossier.windows import ACTIVE_STATUSES, RUN_STEP, run_boundaries, step_boundaries, timing
from rundossier.core.status import FAILURES, UNSUCCESSFUL
from rundossier.core.timefmt import duration_text

FAILURE_STATUSES = FAILURES
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_tries(steps: Sequence[Any]) -> dict[str, Any]:
    """The latest try of each step, keyed by step id, in first-seen order."""
    latest: dict[str, Any] = {}
    for s in steps:
        cur = latest.get(s.step_id)
        if cur is None or s.try_number > cur.try_number:
            latest[s.step_id] = s
    return latest


def build_dossier(
    run: Any,
    steps: Sequence[Any],
    events: Sequence[Any],
    *,
    baseline: Baseline | None = None,
    now: datetime | None = None,
    inputs: Sequence[Any] = (),
) -> Dossier:
    """The dossier of `run` from its steps (every try) and events (the ledger); `inputs`: the
    input artifacts of its failed step (missing, empty or changed ones are signals)."""
    live = run.status in ACTIVE_STATUSES
    ledger = Ledger(events)
    latest = latest_tries(steps)
    run_timing = timing(
        run_boundaries(run, steps, ledger, live=live),
        step_id=None,
        try_number=None,
        status=run.status,
        live=live,
        now=now,
    )
    step_timings: list[Timing] = []
    latest_timing: dict[str, Timing] = {}
    for s in steps:
        is_latest = latest[s.step_id] is s
        t = timing(
            step_boundaries(s, ledger, latest=is_latest),
            step_id=s.step_id,
            try_number=s.try_number,
            status=s.status,
            live=live and s.status in ACTIVE_STATUSES,
            now=now,
        )
        step_timings.append(t)
        if is_latest:
            latest_timing[s.step_id] = t

    failed = _failed_try(run, latest)
    failed_step_id = failed.step_id if failed is not None and failed.step_id != RUN_STEP else None
    classification = None
    if run.status in FAILURE_STATUSES or run.status == "upstream_failed" or (live and failed is not None):
        classification = classify(_facts(run, failed, ledger))

    material = _material(run, failed, ledger)
    signals = _signals(run, failed, run_timing, latest_timing, material, ledger, live)
    if failed is not None and failed.status in FAILURE_STATUSES and inputs:
        before = baseline.inputs if baseline is not None else ()
        signals += input_signals(failed.step_id, failed.try_number, inputs, before)
    artifacts = ledger.all_of(ARTIFACT_WRITTEN)
    artifacts.sort(key=lambda e: e.ts)

    comparison = None
    if baseline is not None and classification is not None:
        comparison = compare(run, run_timing, latest, latest_timing, failed_step_id, baseline)

    actions: list[Any] = []
    if classification is not None:
        actions += retry_actions(run, failed)
        actions += hint_action(classification)
        actions += inspect_actions(run, failed, material, artifacts)
        earlier = _earlier_success(steps, failed)
        actions += compare_actions(run, baseline.run.run_id if baseline is not None else None, earlier)

    replay = replay_plan(run, latest, failed_step_id, ledger, live=live) if classification is not None else None

    return Dossier(
        run_id=run.run_id,
        flow_id=run.flow_id,
        orchestrator=run.orchestrator,
        status=run.status,
        attempt=run.attempt,
        live=live,
        as_of=now if live else None,
        headline=_headline(run, failed, classification, run_timing, live),
        failed_step=failed.step_id if failed is not None else None,
        failed_try=failed.try_number if failed is not None else None,
        classification=classification,
        timing=run_timing,
        steps=tuple(step_timings),
        signals=tuple(signals),
        material=tuple(material),
        actions=tuple(actions),
        fingerprint=run.fingerprint or (failed.fingerprint if failed is not None else None),
        comparison=comparison,
        replay=replay,
    )


def _failed_try(run: Any, latest: dict[str, Any]) -> Any | None:
    failed = [s for s in latest.values() if s.status in FAILURE_STATUSES]
    if failed:
        return min(failed, key=_finish_key)
    upstream = [s for s in latest.values() if s.status == "upstream_failed"]
    if upstream:
        return min(upstream, key=_finish_key)
    if run.root_step_id and run.root_step_id in latest:
        return latest[run.root_step_id]
    return None


def _finish_key(s: Any) -> tuple[int, datetime, str]:
    ts = s.finished_at or s.started_at
    return (0, ts, s.step_id) if ts is not None else (1, _EPOCH, s.step_id)


def _facts(run: Any, step: Any | None, ledger: Ledger) -> FailureFacts:
    work_reported = ledger.has(FIRST_WORK)
    if step is None:
        finished = ledger.run(RUN_FINISHED)
        chain = chain_from_data(finished[-1].data) if finished else ()
        kinds = {k: ledger.run(k) for k in ledger.kinds_seen}
        return FailureFacts(
            status=run.status,
            error_type=run.error_type,
            error_message=run.error_message,
            chain=chain,
            events={k: v for k, v in kinds.items() if v},
            started_at=run.started_at,
            claimed=True,
            failed_at=run.finished_at,
        )
    kinds = ledger.step_kinds(step.step_id, step.try_number)
    failures = kinds.get(STEP_FAILED) or ()
    chain = chain_from_data(failures[-1].data) if failures else ()
    error_type, message = step.error_type, step.error_message
    if error_type is None and message is None and run.root_step_id == step.step_id:
        error_type, message = run.error_type, run.error_message
    b = step_boundaries(step, ledger)
    first_events = kinds.get(FIRST_WORK) or ()
    return FailureFacts(
        status=step.status,
        error_type=error_type,
        error_message=message,
        chain=chain,
        events=kinds,
        step_id=step.step_id,
        try_number=step.try_number,
        started_at=b.started,
        claimed=b.started is not None,
        first_work=min((e.ts for e in first_events), default=None),
        failed_at=step.finished_at,
        work_reported=work_reported,
    )


def _material(run: Any, step: Any | None, ledger: Ledger) -> list[Material]:
    out: list[Material] = []
    expired = bool(run.blobs_expired)
    when = run.blobs_expired_at.date().isoformat() if run.blobs_expired_at else "an earlier sweep"
    holder = step if step is not None and step.step_id != RUN_STEP else None
    trace_uri = holder.trace_uri if holder is not None else run.trace_uri
    if trace_uri is None and holder is not None and run.root_step_id == holder.step_id:
        trace_uri = run.trace_uri
    spooled = bool(holder.spooled if holder is not None else run.spooled)
    if trace_uri and expired:
        out.append(Material("trace", "expired", f"expired by retention on {when}; the error row is kept"))
    elif trace_uri and spooled:
        out.append(Material("trace", "spooled", "waiting in the local spool of the host that recorded it", trace_uri))
    elif trace_uri:
        out.append(Material("trace", "stored", "the full trace is stored", trace_uri))
    elif step is not None or run.status in FAILURE_STATUSES:
        out.append(Material("trace", "none", "no trace captured: the failure was reported without an exception"))
    if holder is not None:
        lines = (holder.log_lines_stdout or 0) + (holder.log_lines_stderr or 0)
        if holder.log_uri and expired:
            out.append(Material("log", "expired", f"expired by retention on {when}"))
        elif holder.log_uri and holder.spooled:
            out.append(Material("log", "spooled", "waiting in the local spool of the host that recorded it"))
        elif holder.log_uri:
            out.append(Material("log", "stored", f"{lines} lines stored", holder.log_uri))
        elif holder.status == "crashed":  # its process died before storing the log: what it published
            detail = "the process died before storing it; lines it published while it ran are shown with the step"
            out.append(Material("log", "not stored", detail))
        else:
            out.append(Material("log", "none", "no log lines were captured for this try"))
        kinds = ledger.step_kinds(holder.step_id, holder.try_number)
        work = [k for k in (FIRST_WORK, LAST_WORK) if kinds.get(k)]
        if work:
            out.append(Material("work events", "recorded", ", ".join(work) + " recorded for this try"))
        elif ledger.has(FIRST_WORK) or ledger.has(LAST_WORK):
            out.append(Material("work events", "missing", "this run reports work events, this try has none"))
        else:
            out.append(Material("work events", "not reported", "the integration reports no work events"))
    n = len(ledger.all_of(ARTIFACT_WRITTEN))
    if n:
        out.append(Material("artifacts", "recorded", f"{n} artifact(s) written in this run"))
    else:
        out.append(Material("artifacts", "none", "no artifact_written event in this run"))
    return out


def _signals(
    run: Any,
    failed: Any | None,
    run_timing: Timing,
    latest_timing: dict[str, Timing],
    material: Sequence[Material],
    ledger: Ledger,
    live: bool,
) -> list[Signal]:
    out: list[Signal] = []
    state = {m.name: m.state for m in material}
    if live:
        out.append(Signal("live", "the run is still running: open windows are measured up to now"))
    if run.blobs_expired:
        when = run.blobs_expired_at.date().isoformat() if run.blobs_expired_at else "an earlier sweep"
        out.append(
            Signal(
                "blobs_expired",
                f"traces and logs expired by retention on {when}; this dossier is built from the rows and events, "
                "which are kept",
            )
        )
    if not [s for s in latest_timing if s != RUN_STEP]:
        if not live or run.status != "queued":
            out.append(Signal("no_steps", "no step was recorded for this run"))
    for w in run_timing.windows:
        if w.state == INCONSISTENT:
            out.append(Signal("clock_skew", f"run {w.name.replace('_', ' ')}: {w.signal}"))
    if failed is not None:
        sid, tn = failed.step_id, failed.try_number
        t = latest_timing.get(sid)
        if t is not None:
            qw, setup, active = t.windows[0], t.window(SETUP), t.windows[2]
            if t.window(SETUP).start is None and failed.status in UNSUCCESSFUL:
                if qw.start is not None:
                    out.append(Signal("failed_before_claim", "queued, failed before a worker claimed it", sid, tn))
                else:
                    out.append(Signal("failed_before_claim", "failed before a worker claimed it", sid, tn))
            elif setup.state == OPEN and not live:
                out.append(Signal("no_first_work", "worker claimed, no first work event", sid, tn))
            elif active.state == OPEN and not live:
                out.append(Signal("no_last_work", "first work recorded, no last work event", sid, tn))
            for w in t.windows:
                if w.state == INCONSISTENT:
                    out.append(Signal("clock_skew", f"{w.name.replace('_', ' ')}: {w.signal}", sid, tn))
        trace, log = state.get("trace"), state.get("log")
        if trace in ("stored", "spooled") and log == "none":
            out.append(
                Signal("trace_without_log", "trace present, no log: the try wrote no output before it failed", sid, tn)
            )
        if log in ("stored", "spooled") and trace == "none":
            out.append(
                Signal(
                    "log_without_trace",
                    "log present, no trace: the failure was reported without an exception (killed, or reported "
                    "by the scheduler)",
                    sid,
                    tn,
                )
            )
        if failed.status == "crashed" and not (failed.error_type or failed.error_message):
            out.append(Signal("killed_no_exception", "the try crashed and no exception was reported", sid, tn))
        kinds = ledger.step_kinds(sid, tn)
        if kinds.get(LAST_WORK) and not kinds.get(ARTIFACT_WRITTEN) and failed.status in FAILURE_STATUSES:
            out.append(Signal("no_final_artifact", "the work finished but no artifact was written", sid, tn))
    elif run.status in FAILURE_STATUSES and not (run.error_type or run.error_message):
        out.append(Signal("killed_no_exception", "the run failed and no exception was reported"))
    if run.status == "success" and ledger.has(ARTIFACT_WRITTEN):
        last = _last_finished(latest_timing)
        if (
            last is not None
            and last.step_id is not None  # (a step's timing always has one)
            and not ledger.step_kinds(last.step_id, last.try_number).get(ARTIFACT_WRITTEN)
        ):
            if not ledger.run(ARTIFACT_WRITTEN):
                out.append(
                    Signal(
                        "no_final_artifact",
                        f"steps of this run write artifacts, the last step ({last.step_id}) wrote none",
                        last.step_id,
                        last.try_number,
                    )
                )
    return out


def _last_finished(latest_timing: dict[str, Timing]) -> Timing | None:
    best: tuple[datetime, Timing] | None = None
    for sid, t in latest_timing.items():
        if sid == RUN_STEP:
            continue
        end = t.windows[-1].end
        if end is not None and (best is None or end > best[0]):
            best = (end, t)
    return best[1] if best is not None else None


def _earlier_success(steps: Sequence[Any], failed: Any | None) -> Any | None:
    if failed is None:
        return None
    ok = [
        s for s in steps if s.step_id == failed.step_id and s.try_number < failed.try_number and s.status == "success"
    ]
    return max(ok, key=lambda s: s.try_number) if ok else None


def _headline(run: Any, failed: Any | None, classification: Any | None, t: Timing, live: bool) -> str:
    dur = duration_text(t.total_ms, unknown="")
    if live:
        active = "running" if run.status == "running" else run.status
        return f"{active.capitalize()}" + (f"; step {failed.step_id} failed" if failed is not None else "")
    if classification is None:
        return f"{run.status.capitalize()}" + (f" in {dur}" if dur else "")
    where = ""
    if failed is not None and failed.step_id != RUN_STEP:
        where = f" in step {failed.step_id} (try {failed.try_number})"
    err = ""
    # type and message from one row: a step's message beside the run's type says the error twice
    # ("AssertionError: Flow run encountered an exception: AssertionError: ...")
    source = failed if failed is not None and (failed.error_type or failed.error_message) else run
    etype, emsg = source.error_type, source.error_message
    if etype or emsg:
        short = (etype or "").rsplit(".", 1)[-1]
        first = (emsg or "").strip().splitlines()[0] if (emsg or "").strip() else ""
        err = ": " + (f"{short}: {first}" if short and first else short or first)[:200]
    return f"{classification.label}{where}{err}"


__all__ = ["build_dossier", "latest_tries", "Baseline"]
