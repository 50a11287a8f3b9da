"""One Prefect flow run being recorded: its run row, its task runs as steps, its end and artifacts.

Where each fact comes from:
- the run: the flow hooks (`on_running` starts it, a terminal hook ends it with the flow's live
  exception, or Prefect's state message when there is none). A terminal hook run by another process
  (a runner reporting a crash) takes the start from Prefect's API or the recorded row, never "now";
- task run tries, as they happen in this process (`capture`, from the task engine's own log
  records): a try's row opens at its first record (its log is then published now and then, so a
  killed process keeps its lines), a successful try and a failure the engine does not retry are
  recorded the moment the engine says so (with the live exception and its traceback). A try the
  engine retries is recorded at the flow run's end, after the failures that ended the run, so that
  it never becomes the run's root cause;
- every other task run try (ran elsewhere, or not seen because logging was filtered): after the
  run ends, in the background, from Prefect's API (task runs and, for retried ones, their state
  history). That read only adds what this process did not see: it never holds up what it did;
- the failure artifacts in Prefect's UI: written last, from the recorded rows (the same final
  facts as rundossier's own run page);
- tasks decorated with `task_hooks()` are also recorded by their own hooks, try by try.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rundossier.core.dossier import Dossier, build_dossier, dossier_markdown
from rundossier.core.ids import RUN_STEP
from rundossier.core.status import ACTIVE, Status
from rundossier.integrations.prefect import api, manifest
from rundossier.integrations.prefect.capture import FAILED, FINISHED, SEEN, FlowRunCapture, TaskRunCapture
from rundossier.integrations.prefect.states import (
    Try,
    crash_type,
    error_text,
    is_final,
    live_exception,
    state_status,
    status_of,
    tries_from_states,
    type_name,
)
from rundossier.integrations.prefect.summary import (
    FailureSummary,
    chain_of,
    failure_markdown,
    one_line,
    run_page_url,
    trace_url,
)
from rundossier.integrations.prefect.workers import HURRY, WRITES
from rundossier.record.livelog import LivePublisher
from rundossier.record.recorder import Recorder, RunHandle
from rundossier.record.steplog import StepLog
from rundossier.storage.blobs import LOG_LIVE, blob_key, log_part_name

log = logging.getLogger("rundossier")

ORCHESTRATOR = "prefect"
REASON_CRASHED = (
    "no traceback captured: the flow run's process died or was killed, and Prefect reported only this message"
)
#: why a task run still running when its flow run crashed (or was cancelled) is recorded so
REASON_TASK_CUT = "the flow run {ended} while this task run was running; Prefect reports it as still running"
POLL_INTERVAL_S = 0.2
#: with no task run seen in this process (logging filtered out), read the API for at least this long
SETTLE_S = 1.0
#: a crash or cancellation reported by a process that saw none of the run's tries (a worker or
#: runner whose flow-run process died): Prefect's server records task run states from events,
#: asynchronously, and under load the last ones land seconds after the crash is reported; the API
#: is read again until its task runs have not changed for this long (within the deadline)
QUIET_S = 5.0
QUIET_POLL_S = 1.0


@dataclass
class Options:
    """What the Block tells the hooks besides the recorder settings."""

    ui_base_url: str | None = None
    hook_timeout_s: float = 10.0
    api_timeout_s: float = 15.0
    block_name: str | None = None
    retention: dict[str, int | None] = field(default_factory=dict)
    artifacts: bool = True


#: the flow run label where Prefect's run telemetry keeps the W3C traceparent of the flow run's span
PREFECT_TRACEPARENT_LABEL = "__OTEL_TRACEPARENT"


def prefect_traceparent(flow_run: Any) -> str | None:
    """Prefect's own trace context of the flow run (its flow run span), when Prefect traces it."""
    labels = getattr(flow_run, "labels", None)
    value = labels.get(PREFECT_TRACEPARENT_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None


def from_ts(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def task_name_of(task_run: Any, name: str) -> str:
    """A task run's task name: its name without Prefect's suffix (`-{dynamic_key}` or its first 3 characters)."""
    key = str(getattr(task_run, "dynamic_key", "") or "")
    head, sep, suffix = name.rpartition("-")
    if key and sep and head and suffix and key.startswith(suffix):
        return head
    return name


def upstream_ids(task_run: Any) -> list[str]:
    """Ids of the task runs whose results (or `wait_for`) fed this task run."""
    inputs = getattr(task_run, "task_inputs", None) or {}
    out: list[str] = []
    for values in inputs.values():
        for value in values or ():
            if getattr(value, "input_type", None) == "task_run" and getattr(value, "id", None) is not None:
                rid = str(value.id)
                if rid not in out:
                    out.append(rid)
    return out


class FlowRunSession:
    """Everything recorded about one flow run in this process."""

    def __init__(
        self,
        recorder: Recorder,
        options: Options,
        flow_name: str,
        flow_run_id: str,
        flow_run_name: str | None = None,
        live: LivePublisher | None = None,
    ) -> None:
        self.recorder = recorder
        self.options = options
        self.flow_name = flow_name
        self.flow_run_id = flow_run_id
        self.flow_run_name = flow_run_name
        self.live = live
        self.run: RunHandle | None = None
        self.parent_run_id: str | None = None
        self.capture = FlowRunCapture(flow_run_id, self._make_log, self._on_try)
        self.ended = False
        self.end_status: Status | None = None
        self.end_error: BaseException | str | None = None
        self.end_reason: str | None = None
        self.end_at: datetime | None = None
        self._lock = threading.RLock()
        self._started = threading.Event()

    # -- the run -------------------------------------------------------------------------------
    def start(
        self,
        flow_run: Any,
        *,
        attempt: int | None,
        started_at: datetime | None,
        parent_run_id: str | None = None,
    ) -> RunHandle:
        tags: dict[str, Any] = {"prefect_flow_run_name": getattr(flow_run, "name", None)}
        if getattr(flow_run, "tags", None):
            tags["prefect_tags"] = list(flow_run.tags)
        if getattr(flow_run, "deployment_id", None):
            tags["prefect_deployment_id"] = str(flow_run.deployment_id)
        self.parent_run_id = parent_run_id
        self.run = self.recorder.start_run(
            self.flow_name,
            self.flow_run_id,
            orchestrator=ORCHESTRATOR,
            attempt=attempt,
            started_at=started_at,
            queued_at=getattr(flow_run, "expected_start_time", None),
            parent_run_id=parent_run_id,
            tags={k: v for k, v in tags.items() if v},
            agent=_agent(),
            traceparent=prefect_traceparent(flow_run),
        )
        self._started.set()
        return self.run

    def _make_log(self, step_id: str, try_number: int) -> StepLog:
        rec = self.recorder
        step_id = rec.masker.mask(step_id)  # the name the recorder gives the step (masked ids)

        def spill(n: int, data: bytes) -> None:
            run = self.run
            if run is None:
                raise RuntimeError("the run is not recorded yet")
            rec.blobs.put(
                blob_key(run.orchestrator, run.flow_id, run.run_id, step_id, try_number, log_part_name(n)), data
            )

        return StepLog(spill=spill, mask=rec.masker.mask)

    def finish(self, flow_run: Any, state: Any) -> None:
        """The flow run ended (terminal hook): the tries this process saw end, then the run's end.

        A failed run records its failed tries first (the first recorded failure is its root cause),
        then its end, then the tries that were retried: a try that failed and was retried is never
        the cause of a run's failure. A successful run records every try before its end (which
        clears the failed tries of recovered steps from the run's outcome).
        """
        assert self.run is not None
        with self._lock:
            if self.ended:
                return
            self.ended = True
        count = int(getattr(flow_run, "run_count", 0) or 0)
        if self.run.attempt is not None and count > self.run.attempt:
            # Prefect retried the flow run in this process (no on_running hook for that): a new attempt
            self.start(flow_run, attempt=count, started_at=self.run.started_at, parent_run_id=self.parent_run_id)
        status = state_status(state)
        self.end_status = status
        exc = live_exception(state)
        self.record_seen(retried=status == Status.SUCCESS)
        message = error_text(getattr(state, "message", None))
        error: BaseException | str | None = exc
        reason = None
        if exc is None and status.is_failure:
            error = message
            if status == Status.CRASHED:
                error = f"{crash_type(message)}: {message or 'the flow run crashed'}"
                reason = REASON_CRASHED
            if self.run.failed_step is not None and status == Status.FAILED:
                error = None  # a task's failure holds the root cause; "1/3 states failed" adds nothing
        self.end_error, self.end_reason = error if status.is_failure else None, reason
        self.end_at = getattr(state, "timestamp", None)
        self.recorder.finish_run(self.run, status, error, reason=reason, finished_at=self.end_at)
        self.record_seen(retried=True)

    # -- task tries ----------------------------------------------------------------------------
    def record_try(
        self,
        tc: TaskRunCapture,
        number: int,
        status: Status,
        *,
        error: BaseException | str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        upstream: Iterable[str] | None = None,
        task_name: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record one try of a task run once (a second call for the same try does nothing)."""
        run = self.run
        if run is None:
            return
        with self._lock:
            if number in tc.done:
                return
            tc.done.add(number)
            handle = tc.handles.pop(number, None)
        tcap = tc.tries.get(number)
        if handle is None:
            start = started_at or from_ts(tcap.first_ts if tcap else None) or finished_at
            handle = self.recorder.start_step(
                run,
                tc.name,
                try_number=number,
                task_id=tc.task_name or task_name or tc.name,
                upstream=list(upstream) if upstream else None,
                started_at=start,
            )
        if tcap is not None and handle.log is not tcap.log:
            handle.log = tcap.log
        if status in ACTIVE:
            return  # still running when the flow ended: its row says so
        handle.finish(status, error, reason=reason, finished_at=finished_at)
        if tcap is not None:
            self._unwatch(tcap.log)

    # -- what this process saw, as it happens -----------------------------------------------------
    def _on_try(self, tc: TaskRunCapture, number: int, event: str) -> None:
        """From the log capture, on the logging thread: record off that thread, in order."""
        if self.ended or event not in (SEEN, FAILED, FINISHED):
            return  # a retried try waits for the flow run's end
        WRITES.submit(lambda: self._try_event(tc, number, event), f"record task run {tc.name}")

    def _try_event(self, tc: TaskRunCapture, number: int, event: str) -> None:
        if self.run is None or self.ended:
            return  # the flow run's end records it
        if event == SEEN:
            self._open_try(tc, number, self._try_start(tc, number))
        elif number >= tc.last_try:
            self._record_outcome(tc, number)

    def _open_try(self, tc: TaskRunCapture, number: int, started_at: datetime | None) -> None:
        """The row of a try that started (status running); its log is published while it runs."""
        run = self.run
        assert run is not None
        with self._lock:
            if number in tc.done or number in tc.handles:
                return
        source = tc.task_run
        handle = self.recorder.start_step(
            run,
            tc.name,
            try_number=number,
            task_id=tc.task_name or (task_name_of(source, tc.name) if source is not None else tc.name),
            upstream=(self._upstream_names(source) or None) if source is not None else None,
            started_at=started_at,
        )
        tcap = self.capture.try_of(tc, number)
        handle.log = tcap.log
        with self._lock:
            if number in tc.done:
                return
            tc.handles[number] = handle
        if self.live is not None:  # the ids as the recorder stores them (masked)
            step_id, orch, flow_id, run_id = handle.step_id, run.orchestrator, run.flow_id, run.run_id
            self.live.watch(lambda: blob_key(orch, flow_id, run_id, step_id, number, LOG_LIVE), tcap.log)

    def _unwatch(self, steplog: StepLog) -> None:
        """Stop publishing a finished try's log; its stored log replaces the last snapshot."""
        if self.live is None:
            return
        key = self.live.unwatch(steplog)
        if key is not None:
            blobs = self.recorder.blobs
            try:
                blobs.delete([blobs.uri_for(key)])
            except Exception as exc:  # noqa: BLE001 - a stale snapshot is read only while no log is stored
                log.warning("rundossier could not delete the live log %s: %s: %s", key, type(exc).__name__, exc)

    def _outcome(self, tc: TaskRunCapture, number: int) -> tuple[Status, BaseException | str | None, float | None]:
        """How try `number` ended as this process saw it (status, error, end time), or ACTIVE."""
        tcap = tc.tries.get(number)
        error = tcap.error if tcap is not None else None
        failed_ts = tcap.failed_ts if tcap is not None else None
        if number < tc.last_try:  # a later try exists: the engine retried this one
            return Status.FAILED, error, failed_ts
        final = tc.final
        if final is not None:
            if final.status.is_failure:
                return final.status, error or error_text(final.message), failed_ts or tc.final_ts
            return final.status, None, tc.final_ts
        if failed_ts is not None:  # the engine's failure record, its closing line not seen yet
            return Status.FAILED, error, failed_ts
        return Status.RUNNING, None, None

    def _record_outcome(self, tc: TaskRunCapture, number: int) -> bool:
        status, error, ts = self._outcome(tc, number)
        if status in ACTIVE:
            return False
        self.record_try(
            tc,
            number,
            status,
            error=error,
            started_at=self._try_start(tc, number),
            finished_at=from_ts(ts),
            upstream=self._upstream_names(tc.task_run) if tc.task_run is not None else None,
        )
        return True

    def record_seen(self, *, retried: bool) -> None:
        """Every try this process saw end and nobody recorded yet: failures first (the last try of a
        task run before a retried one), by time; `retried=False` leaves retried tries for later."""
        items: list[tuple[int, float, TaskRunCapture, int]] = []
        for tc in list(self.capture.tasks.values()):
            last = tc.last_try
            for n in sorted(tc.tries):
                if n in tc.done or (n < last and not retried):
                    continue
                status, _, ts = self._outcome(tc, n)
                if status in ACTIVE:
                    continue
                rank = 0 if status.is_failure and n == last else 1 if status.is_failure else 2
                items.append((rank, ts or 0.0, tc, n))
        items.sort(key=lambda item: (item[0], item[1]))
        for _, _, tc, n in items:
            self._record_outcome(tc, n)

    def _try_start(self, tc: TaskRunCapture, n: int) -> datetime | None:
        live = tc.task_run
        if n == 1 and live is not None and getattr(live, "start_time", None):
            return live.start_time
        prev = tc.tries.get(n - 1)
        if prev is not None and prev.failed_ts:
            return from_ts(prev.failed_ts)
        tcap = tc.tries.get(n)
        return from_ts(tcap.first_ts) if tcap is not None else None

    # -- live task hooks -----------------------------------------------------------------------
    def task_started(self, task: Any, task_run: Any, state: Any, n: int) -> None:
        """Task hook: try `n` of a task run starts (tries before it failed and were retried)."""
        if self.run is None:
            return
        tc = self.capture.task(str(task_run.id), task_run.name, getattr(task, "name", None))
        tc.task_run = task_run
        tc.current_try = max(tc.current_try, n)  # tries before it were retried: recorded at the flow's end
        self._open_try(tc, n, getattr(state, "timestamp", None))

    def task_finished(self, task: Any, task_run: Any, state: Any, n: int) -> None:
        """Task hook: try `n` of a task run completed or failed (`state` says which)."""
        if self.run is None:
            return
        tc = self.capture.task(str(task_run.id), task_run.name, getattr(task, "name", None))
        tc.task_run = task_run
        status = state_status(state)
        error: BaseException | str | None = None
        if status.is_failure:
            tcap = tc.tries.get(n)
            error = (
                live_exception(state) or (tcap.error if tcap else None) or error_text(getattr(state, "message", None))
            )
        self.record_try(
            tc,
            n,
            status,
            error=error,
            started_at=self._try_start(tc, n),
            finished_at=getattr(state, "timestamp", None),
            upstream=self._upstream_names(task_run),
        )

    def _upstream_names(self, task_run: Any, names: dict[str, str] | None = None) -> list[str]:
        out = []
        for rid in upstream_ids(task_run):
            name = (names or {}).get(rid)
            if name is None:
                tc = self.capture.tasks.get(rid)
                name = tc.name if tc is not None else None
            if name and name not in out:
                out.append(name)
        return out

    # -- after the run: every task run from Prefect's API ---------------------------------------
    def after_end(self, deadline: float) -> None:
        """In the background once the run ended: what only Prefect's API knows, then the artifacts."""
        self.reconcile(deadline)
        if self.end_status is not None and self.end_status.is_failure and self.options.artifacts:
            self.publish_failure()

    def reconcile(self, deadline: float) -> None:
        """Record the tries nobody recorded yet, from Prefect's API merged with this process's view.

        Everything this process saw end is recorded already (as it happened, or by `finish`); the
        API adds task runs that ran elsewhere or were not seen here, and the state history of
        retried ones, as long as `deadline` allows (each request is bounded by what is left).
        """
        task_runs: list[Any] = []
        histories: dict[str, list[Try]] = {}
        made: list[Any] = []
        try:
            with api.client(max(1.0, min(10.0, deadline - time.monotonic()))) as c:
                task_runs = self._poll_task_runs(c, deadline)
                for tr in task_runs:
                    if int(getattr(tr, "run_count", 0) or 0) > 1 and self._needs_history(str(tr.id)):
                        if time.monotonic() >= deadline or HURRY.is_set():
                            break
                        histories[str(tr.id)] = tries_from_states(api.task_run_states(c, tr.id))
                if time.monotonic() < deadline and not HURRY.is_set():
                    made = api.flow_artifacts(c, self.flow_run_id)
        except Exception as exc:  # noqa: BLE001 - the API is down or slow: steps come from this process
            log.warning(
                "rundossier could not read the task runs of flow run %s from Prefect's API (%s: %s); "
                "steps are recorded from what this process saw",
                self.flow_run_id,
                type(exc).__name__,
                exc,
            )
        self.record_steps(task_runs, histories)
        self.record_made(task_runs, made)

    def record_made(self, task_runs: list[Any], artifacts: list[Any]) -> None:
        """Each task run's persisted result and `create_*_artifact` calls, as outputs of its last try."""
        run = self.run
        if run is None:
            return
        by_id = {str(tr.id): tr for tr in task_runs}
        items = [m for m in (manifest.result_of(tr) for tr in task_runs) if m is not None]
        items += [m for m in (manifest.artifact_of(a) for a in reversed(artifacts)) if m is not None]
        mask = self.recorder.masker.mask
        for m in items:
            tc = self.capture.tasks.get(m.task_run_id)
            tr = by_id.get(m.task_run_id)
            if tc is None:
                continue  # a task run of another flow run (a subflow's): its own session records it
            try_number = max(int(getattr(tr, "run_count", 0) or 0), tc.last_try if tc.tries else 0, 1)
            self.recorder.record_ended_try_artifact(
                run,
                tc.name,
                try_number,
                m.uri,
                "output",
                size=m.size,
                checksum=m.checksum,
                kind=m.kind,
                uid=manifest.uid_of(run.run_id, mask(tc.name), try_number, m),
            )

    def _poll_task_runs(self, c: Any, deadline: float) -> list[Any]:
        """Task runs from the API, read again (bounded) until they agree with what this process saw.

        Prefect records task run states asynchronously, so right after a flow run ends its API
        may not have every task run yet, or not their last state. When this process saw every
        task run it knows of end, with Prefect's own TaskRun, one read is enough (it only adds task
        runs that ran elsewhere). A crash or cancellation reported by a process that saw none of the
        tries reads until the task runs stop changing (`QUIET_S`). At process exit the waiting stops
        (`hurry`).
        """
        started = changed = time.monotonic()
        reported_elsewhere = not self.capture.tasks and self.end_status in (Status.CRASHED, Status.CANCELLED)
        last: set[tuple[str, str, int]] | None = None
        while True:
            task_runs = api.flow_task_runs(c, self.flow_run_id)
            if self._complete_here():
                return task_runs
            seen = {
                (str(tr.id), str(getattr(tr, "state_name", "")), int(getattr(tr, "run_count", 0) or 0))
                for tr in task_runs
            }
            if seen != last:
                last, changed = seen, time.monotonic()
            if reported_elsewhere:
                settled = time.monotonic() - changed >= QUIET_S
            else:
                settled = bool(self.capture.tasks) or time.monotonic() - started >= SETTLE_S
            if (settled and self._agrees(task_runs)) or time.monotonic() + POLL_INTERVAL_S >= deadline:
                return task_runs
            if HURRY.wait(QUIET_POLL_S if reported_elsewhere else POLL_INTERVAL_S):
                return task_runs

    def _complete_here(self) -> bool:
        tasks = list(self.capture.tasks.values())
        return bool(tasks) and all(tc.final is not None and tc.task_run is not None for tc in tasks)

    def _agrees(self, task_runs: list[Any]) -> bool:
        """True when the API has every task run this process saw end, ended, and no run unfinished
        (unless the flow run itself did not finish normally: then some never will)."""
        by_id = {str(tr.id): tr for tr in task_runs}
        for tid, tc in list(self.capture.tasks.items()):
            if tc.final is None:
                continue
            tr = by_id.get(tid)
            if tr is None or not is_final(getattr(tr, "state_type", None), getattr(tr, "state_name", None)):
                return False
            if int(getattr(tr, "run_count", 0) or 0) < tc.last_try and tc.final.status != Status.UPSTREAM_FAILED:
                return False
        if self.end_status in (Status.SUCCESS, Status.FAILED):
            for tr in task_runs:
                if not is_final(getattr(tr, "state_type", None), getattr(tr, "state_name", None)):
                    return False
        return True

    def _needs_history(self, task_run_id: str) -> bool:
        """A retried task run's state history is read only when this process did not see it end."""
        tc = self.capture.tasks.get(task_run_id)
        return tc is None or any(n not in tc.done for n in range(1, tc.last_try + 1))

    def record_steps(self, task_runs: list[Any], histories: dict[str, list[Try]]) -> None:
        by_id = {str(tr.id): tr for tr in task_runs}
        for tr in sorted(task_runs, key=lambda tr: _ts_key(getattr(tr, "expected_start_time", None))):
            self.capture.task(str(tr.id), tr.name)  # step ids: task run names, made unique
        names = {tid: tc.name for tid, tc in self.capture.tasks.items()}
        recorded = self._recorded_elsewhere()
        mask = self.recorder.masker.mask  # step ids as stored
        cut = self.end_status if self.end_status in (Status.CRASHED, Status.CANCELLED) else None
        for tid in list(dict.fromkeys([*by_id, *self.capture.tasks])):
            tr = by_id.get(tid)
            tc = self.capture.task(tid)
            source = tc.task_run or tr
            upstream = self._upstream_names(source, names) if source is not None else []
            task_name = tc.task_name or task_name_of(source, tc.name)
            tries = self._history_if_whole(histories.get(tid), tc) or self._synth_tries(tr, tc)
            for t in tries:
                if t.number in tc.done or (mask(tc.name), t.number) in recorded:
                    continue
                tcap = tc.tries.get(t.number)
                status, reason, finished_at = t.status, None, t.finished_at
                error: BaseException | str | None = None
                if status in ACTIVE and status != Status.QUEUED and cut is not None:
                    # the flow run crashed or was cancelled around it: Prefect never ends this task run
                    status, finished_at = cut, self.end_at
                    reason = REASON_TASK_CUT.format(ended="crashed" if cut == Status.CRASHED else "was cancelled")
                    error = self.end_error if cut == Status.CRASHED else None
                elif status.is_failure:
                    final_message = tc.final.message if tc.final is not None and t.number == tc.last_try else None
                    error = (tcap.error if tcap else None) or error_text(t.message or final_message)
                self.record_try(
                    tc,
                    t.number,
                    status,
                    error=error,
                    started_at=t.started_at or self._try_start(tc, t.number),
                    finished_at=finished_at or (from_ts(tcap.failed_ts) if tcap else None),
                    upstream=upstream,
                    task_name=task_name,
                    reason=reason,
                )

    def _recorded_elsewhere(self) -> set[tuple[str, int]]:
        """Tries of this run already recorded as ended (by the flow's own process, when a runner
        reports its crash): their rows are kept as that process wrote them."""
        if self.run is None:
            return set()
        try:
            steps = self.recorder.store.list_steps(self.run.run_id)
        except Exception as exc:  # noqa: BLE001 - the database is down: record what the API says
            log.warning("rundossier could not read the recorded steps of flow run %s: %s", self.flow_run_id, exc)
            return set()
        return {(s.step_id, s.try_number) for s in steps if Status(s.status) not in ACTIVE}

    def _history_if_whole(self, history: list[Try] | None, tc: TaskRunCapture) -> list[Try] | None:
        """The API's state history, unless it lags behind what this process saw."""
        if not history:
            return None
        live = tc.task_run
        count = max(int(getattr(live, "run_count", 0) or 0), tc.last_try if tc.tries else 0)
        if len(history) < count or history[-1].status in ACTIVE:
            return None
        if tc.final is not None and history[-1].status != tc.final.status:
            return None
        return history

    def _synth_tries(self, tr: Any, tc: TaskRunCapture) -> list[Try]:
        """Tries without a state history: the freshest of this process's TaskRun, its log, the API."""
        live = tc.task_run
        source = live if live is not None else tr
        count = max(int(getattr(source, "run_count", 0) or 0), tc.last_try if tc.tries else 0, 1)
        if live is not None or tr is not None:
            st_type = getattr(source, "state_type", None)
            st_name = getattr(source, "state_name", None)
            if tc.final is not None and not is_final(st_type, st_name):
                st_type, st_name = tc.final.type, tc.final.name  # the API lags behind this process
            status = status_of(st_type, st_name)
            end = getattr(source, "end_time", None) or from_ts(tc.final_ts)
            start = getattr(source, "start_time", None) if count == 1 else None
            message = getattr(getattr(source, "state", None), "message", None) or (
                tc.final.message if tc.final else None
            )
            if type_name(st_type) in ("PENDING", "SCHEDULED") and status == Status.QUEUED:
                return []  # never started: nothing to record
        elif tc.final is not None:
            status, end, start, message = tc.final.status, from_ts(tc.final_ts), None, tc.final.message
        else:
            return []
        tries = []
        for n in range(1, count):
            tcap = tc.tries.get(n)
            tries.append(Try(n, Status.FAILED, None, from_ts(tcap.failed_ts) if tcap else None, None))
        tries.append(Try(count, status, start, end, message))
        return tries

    # -- the failure in Prefect's UI -------------------------------------------------------------
    def publish_failure(self) -> None:
        """The artifacts of a failed run, from its recorded rows: a link artifact to the trace
        download (with a UI base URL) and a Markdown summary, the run's dossier."""
        assert self.run is not None
        base = self.options.ui_base_url
        dossier = self._dossier()
        summary = self.failure_summary(dossier)
        with api.client(self.options.hook_timeout_s) as c:
            if summary.trace_link:
                api.create_link(
                    c,
                    self.flow_run_id,
                    summary.trace_link,
                    "Download the full trace of this failure",
                    key=api.artifact_key("rundossier", self.flow_name, "trace"),
                    description="rundossier: the full trace of this failure (chained exceptions, your frames, logs)",
                )
            api.create_markdown(
                c,
                self.flow_run_id,
                failure_markdown(summary, dossier_markdown(dossier, ui_base_url=base) if dossier else None),
                key=api.artifact_key("rundossier", self.flow_name, "failure"),
                description="rundossier: what failed and why",
            )

    def _dossier(self) -> Dossier | None:
        """The run's dossier from its recorded rows (None when the database cannot be read)."""
        assert self.run is not None
        try:
            store = self.recorder.store
            run_row = store.get_run(self.run.run_id)
            steps = store.list_steps(self.run.run_id)
            events = store.list_events(self.run.run_id)
        except Exception as exc:  # noqa: BLE001 - the database is down: the summary from this process
            log.warning("rundossier: the failure artifact of flow run %s has no dossier: %s", self.flow_run_id, exc)
            return None
        return build_dossier(run_row, steps, events, now=datetime.now(UTC))

    def failure_summary(self, dossier: Dossier | None = None) -> FailureSummary:
        """What failed: the dossier's failed try (the recorded facts), else what this process saw."""
        assert self.run is not None
        mask = self.recorder.masker.mask
        step_id, try_number = (dossier.failed_step, dossier.failed_try) if dossier else (None, None)
        if dossier is None and self.run.failed_step is not None:
            step_id, try_number = self.run.failed_step.step_id, self.run.failed_step.try_number
        if step_id == RUN_STEP:
            step_id, try_number = None, None
        error = self._live_error(step_id, try_number)
        error_type = error_message = None
        chain: tuple[str, ...] = ()
        if isinstance(error, BaseException):
            error_type = type(error).__name__
            error_message = one_line(str(error), mask) if str(error) else None
            chain = chain_of(error, mask)
        elif error:
            error_message = one_line(error, mask)
        base = self.options.ui_base_url
        status = dossier.status if dossier else (self.end_status or Status.FAILED).value
        return FailureSummary(
            flow_name=self.flow_name,
            run_id=self.run.run_id,
            status=status,
            flow_run_name=self.flow_run_name,
            error_type=error_type,
            error_message=error_message,
            step_id=step_id,
            try_number=try_number,
            chain=chain,
            trace_link=trace_url(base, self.run.run_id) if base else None,
            page_link=run_page_url(base, self.run.run_id) if base else None,
            reason=self.end_reason,
        )

    def _live_error(self, step_id: str | None, try_number: int | None) -> BaseException | str | None:
        """The error of a failed try as this process holds it (the live exception), or the run's."""
        if step_id is not None:
            mask = self.recorder.masker.mask  # the dossier names steps as stored
            for tc in list(self.capture.tasks.values()):
                if mask(tc.name) == step_id:
                    tcap = tc.tries.get(try_number or tc.last_try)
                    if tcap is not None and tcap.error is not None:
                        return tcap.error
            failed = self.run.failed_step if self.run is not None else None
            if failed is not None and failed.step_id == step_id and failed.error is not None:
                return failed.error
            return None
        return self.end_error


def _ts_key(ts: datetime | None) -> float:
    return ts.timestamp() if ts is not None else 0.0


def _agent() -> str | None:
    try:
        import prefect

        return f"prefect {prefect.__version__}"
    except Exception:  # noqa: BLE001
        return None


__all__ = ["FlowRunSession", "Options", "REASON_CRASHED", "task_name_of", "upstream_ids"]
