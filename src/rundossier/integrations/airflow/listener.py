"""Airflow listener: translates task instance and dag run events into recorder calls, in bounded time.

Where each hook fires (Airflow 3):
- task instance running/success/failed/skipped: in the worker's task process, around the task's
  own code; `error` is the live exception there, so the trace is built from it. The step's log is
  captured from `running` to the end hook (logging records and stdout/stderr of the task).
- task instance failed/success/skipped from the scheduler (killed tasks) or the API server (a
  user marked the task): `error` is a string or None and is recorded as exactly that.
- dag run running/success/failed: in the scheduler (and the API server on manual changes). At
  the end of a run, tasks that never ran (upstream_failed, skipped by a branch) are recorded.

Never breaks the host: every hook catches everything, and the recorder's I/O runs on the
integrations' background worker (`rundossier.integrations.worker`: one per process, in order)
while the hook waits at most `listener_timeout` seconds (then the task goes on and the recording
finishes in the background). A fault is a warning in the task's log.

Airflow ends a task's process soon after its end (`task_success_overtime`), so the end of a task
writes until a deadline (`listener_timeout` less `SPOOL_MARGIN_S`) and then spools what is left;
the process waits at most `EXIT_DRAIN_S` at exit for that. The blob store is built while the
task runs (importing an object store's client takes seconds on a busy worker).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pluggy

from rundossier.core.timefmt import utc
from rundossier.integrations.airflow import config as airflow_config
from rundossier.integrations.worker import Worker
from rundossier.record.guard import guarded

log = logging.getLogger("rundossier.airflow")
hookimpl = pluggy.HookimplMarker("airflow")

ORCHESTRATOR = "airflow"
#: task instance states recorded for tasks that never ran, read when a dag run ends
NEVER_RAN = {"upstream_failed": "upstream_failed", "skipped": "skipped"}
REASON_OUTSIDE = (
    "Airflow reported this failure from outside the task process (scheduler or API server) without a traceback"
)
REASON_NO_EXCEPTION = "Airflow reported this failure without an exception"
REASON_RETRY = "the task will be retried (up_for_retry)"
REASON_DIED = (
    "the task's process died without reporting its end (killed, out of memory, or lost with its worker); "
    "Airflow's scheduler reported it in the words above"
)
#: seconds of an end hook's `listener_timeout` kept for spooling what is not written by then
SPOOL_MARGIN_S = 2.0
#: seconds a task's process waits at exit for records still on their way (Airflow ends the process
#: `task_success_overtime`, 20 s by default, after the task's end; the end hook takes at most
#: `listener_timeout`, 10 s by default)
EXIT_DRAIN_S = 6.0


def spool_deadline(timeout: float) -> float:
    """Seconds the end of a task may write before what is left goes to the spool: the hook's
    `listener_timeout`, less a margin for spooling it (local disk), and at least half of it."""
    return max(timeout - SPOOL_MARGIN_S, timeout / 2)


def step_id_for(task_id: str, map_index: int | None) -> str:
    """rundossier's step id: the task id, with `[map_index]` for a mapped task instance."""
    return f"{task_id}[{map_index}]" if map_index is not None and map_index >= 0 else task_id


def _map_index(value: Any) -> int | None:
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None
    return index if index >= 0 else None


def _utc(value: Any) -> datetime | None:
    """An Airflow date as an aware UTC datetime (see `timefmt.utc`); anything else (unset, a mock) is None."""
    return utc(value) if isinstance(value, datetime) else None


@dataclass(frozen=True)
class TaskIds:
    """What a hook needs from a task instance (Task SDK RuntimeTaskInstance or core TaskInstance)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int | None
    try_number: int
    hostname: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    upstream: tuple[str, ...] = ()
    state: str | None = None

    @property
    def step_id(self) -> str:
        return step_id_for(self.task_id, self.map_index)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.dag_id, self.run_id, self.step_id, self.try_number)

    @classmethod
    def of(cls, ti: Any) -> TaskIds:
        task = getattr(ti, "task", None)
        try:
            upstream = tuple(sorted(getattr(task, "upstream_task_ids", None) or ()))
        except Exception:  # noqa: BLE001 - a partial task object
            upstream = ()
        state = getattr(ti, "state", None)
        try:
            try_number = max(1, int(getattr(ti, "try_number", 1) or 1))
        except (TypeError, ValueError):
            try_number = 1
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=_map_index(getattr(ti, "map_index", -1)),
            try_number=try_number,
            hostname=getattr(ti, "hostname", None) or None,
            start_date=_utc(getattr(ti, "start_date", None)),
            end_date=_utc(getattr(ti, "end_date", None)),
            upstream=upstream,
            state=str(getattr(state, "value", state)) if state is not None else None,
        )


@dataclass(frozen=True)
class RunInfo:
    """What the run row needs from a dag run (the same values whichever process writes them)."""

    dag_id: str
    run_id: str
    attempt: int | None = None
    started_at: datetime | None = None
    queued_at: datetime | None = None
    ended_at: datetime | None = None
    tags: tuple[tuple[str, str], ...] = ()
    #: Airflow's own trace context of the dag run (its `dag_run.<dag_id>` span), when Airflow traces it
    traceparent: str | None = None

    @classmethod
    def of(cls, dag_run: Any) -> RunInfo:
        tags = []
        for name in ("run_type", "triggered_by"):
            value = getattr(dag_run, name, None)
            if value is not None:
                tags.append((name, str(getattr(value, "value", value))))
        return cls(
            dag_id=str(dag_run.dag_id),
            run_id=str(dag_run.run_id),
            attempt=_attempt(dag_run),
            started_at=_utc(getattr(dag_run, "start_date", None)),
            queued_at=_utc(getattr(dag_run, "queued_at", None)),
            ended_at=_utc(getattr(dag_run, "end_date", None)),
            tags=tuple(tags),
            traceparent=sampled_traceparent(getattr(dag_run, "context_carrier", None)),
        )

    @classmethod
    def of_task(cls, ti: Any, ids: TaskIds) -> RunInfo:
        """From the task instance's dag run when it is at hand (else the ids alone: attempt unknown)."""
        dag_run = None
        try:
            if in_task_process(ti):
                dag_run = ti.get_template_context().get("dag_run")  # cached by Airflow before `running`
            else:
                dag_run = getattr(ti, "dag_run", None)
        except Exception:  # noqa: BLE001 - no context here: the row keeps what others wrote
            dag_run = None
        if dag_run is None or str(getattr(dag_run, "run_id", ids.run_id)) != ids.run_id:
            return cls(ids.dag_id, ids.run_id)
        info = cls.of(dag_run)
        return cls(ids.dag_id, ids.run_id, info.attempt, info.started_at, info.queued_at, None, info.tags)


def sampled_traceparent(carrier: Any) -> str | None:
    """The W3C traceparent of Airflow's trace context carrier, when Airflow samples (exports) it.

    Airflow gives every dag run a carrier, also with its tracing off (then unsampled): a run span
    joined to it would be dropped by the usual parent-based sampler, under a parent no one exports."""
    if not isinstance(carrier, dict):
        return None
    value = carrier.get("traceparent")
    if not isinstance(value, str):
        return None
    parts = value.strip().split("-")
    if len(parts) != 4:
        return None
    try:
        sampled = int(parts[3], 16) & 1
    except ValueError:
        return None
    return value.strip() if sampled else None


def _attempt(dag_run: Any) -> int | None:
    """Airflow's clear number + 1: a cleared and re-run dag run is a new attempt of the run."""
    try:
        return int(dag_run.clear_number) + 1
    except (AttributeError, TypeError, ValueError):
        return None


def in_task_process(ti: Any) -> bool:
    """True when the hook runs in the worker's task process (a Task SDK RuntimeTaskInstance)."""
    return type(ti).__name__ == "RuntimeTaskInstance" or hasattr(ti, "get_template_context")


def process_died(error: Any, *, live_step: bool, previous_state: Any) -> bool:
    """True when Airflow reports, from outside the task's process, that a running try failed: its
    process died without reporting its end (killed, out of memory, lost with its worker), and
    Airflow's scheduler says so in `error` (the executor's report, or a missed heartbeat). A user
    marking a task failed is not that: Airflow reports it with no previous state."""
    if live_step or not isinstance(error, str) or not error.strip():
        return False
    previous = getattr(previous_state, "value", previous_state)
    return str(previous) == "running"


def failure_reason(error: Any, *, live_step: bool, state: str | None) -> str | None:
    """Why a failure has no traceback (or what happens next), in the trace header's words."""
    if isinstance(error, BaseException):
        return REASON_RETRY if state == "up_for_retry" else None
    if not live_step:
        return REASON_OUTSIDE
    return REASON_NO_EXCEPTION


class _ProcessState:
    """The recorder and the open steps of this process (rebuilt after a fork)."""

    def __init__(self, recorder: Any, timeout: float) -> None:
        self.pid = os.getpid()
        self.recorder = recorder
        self.timeout = timeout
        self.runs: dict[tuple[str, str], Any] = {}
        self.steps: dict[tuple[str, str, str, int], Any] = {}
        self.captures: dict[tuple[str, str, str, int], Any] = {}


class RunDossierListener:
    """The plugin's listener object (one per process; register it once)."""

    def __init__(
        self,
        load_config: Callable[[], airflow_config.AirflowConfig] | None = None,
        make_recorder: Callable[[airflow_config.AirflowConfig], Any] | None = None,
    ) -> None:
        self._load_config = load_config or airflow_config.load
        self._make_recorder = make_recorder or _make_recorder
        self._lock = threading.Lock()
        self._state: _ProcessState | None = None
        self._disabled_pid: int | None = None
        self.worker = Worker("rundossier-listener", log=log)

    # -- per-process state ---------------------------------------------------------------------
    def _here(self) -> _ProcessState | None:
        pid = os.getpid()
        state = self._state
        if state is not None and state.pid == pid:
            return state
        if self._disabled_pid == pid:
            return None
        with self._lock:
            if self._state is not None and self._state.pid == pid:
                return self._state
            try:
                cfg = self._load_config()
                if not cfg.enabled:
                    self._disabled_pid = pid
                    return None
                self._state = _ProcessState(self._make_recorder(cfg), cfg.listener_timeout)
                # Airflow's task process clears the atexit handlers it inherited when it forks
                # (and leaves with os._exit): the records still on their way are waited for from
                # a handler registered here, in the process itself, for a bounded time
                atexit.register(self.worker.drain, EXIT_DRAIN_S)
                # build the blob store (an object store's client library takes seconds to import
                # on a busy worker) while the task runs, not in an end hook's bounded time
                threading.Thread(
                    target=_warm, args=(self._state.recorder,), name="rundossier-warm", daemon=True
                ).start()
            except Exception as exc:  # noqa: BLE001 - a bad setting must not fail the task
                self._disabled_pid = pid
                log.warning("rundossier is not recording in this process: %s", exc)
                return None
            return self._state

    def _run(self, state: _ProcessState, info: RunInfo, *, status: str = "running", fresh: bool = False) -> Any:
        """The RunHandle of a dag run: recorded once per process (or again when `fresh`), then reused."""
        key = (info.dag_id, info.run_id)
        handle = None if fresh else state.runs.get(key)
        if handle is None:
            handle = state.recorder.start_run(
                info.dag_id,
                info.run_id,
                orchestrator=ORCHESTRATOR,
                status=status,
                attempt=info.attempt,
                started_at=info.started_at,
                queued_at=info.queued_at,
                tags=dict(info.tags) or None,
                # a DAG run is Airflow's to end (its dag run listeners): no process holds its lease;
                # each task's step holds one in the task's process
                lease=False,
                traceparent=info.traceparent,
            )
            state.runs[key] = handle
        return handle

    def _guarded(self, what: str, fn: Callable[[], None]) -> None:
        guarded(what, fn, None)  # a listener fault is a warning, never a task failure

    # -- task instance hooks ---------------------------------------------------------------------
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self._guarded("record the start of a task", lambda: self._task_running(task_instance))

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._guarded("record a task's success", lambda: self._task_finished(task_instance, "success", None))

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._guarded(
            "record a task's failure", lambda: self._task_finished(task_instance, "failed", error, previous_state)
        )

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._guarded("record a skipped task", lambda: self._task_finished(task_instance, "skipped", None))

    def _task_running(self, ti: Any) -> None:
        state = self._here()
        if state is None:
            return
        ids = TaskIds.of(ti)
        info = RunInfo.of_task(ti, ids)

        def start() -> Any:
            run = self._run(state, info)
            handle = state.recorder.start_step(
                run,
                ids.step_id,
                try_number=ids.try_number,
                task_id=ids.task_id,
                map_index=ids.map_index,
                upstream=list(ids.upstream) or None,
                started_at=ids.start_date,
                host=ids.hostname,
            )
            state.steps[ids.key] = handle
            record_assets(handle, getattr(ti, "task", None), "inlets", "input")
            return handle

        handle = self.worker.call(start, timeout=state.timeout, what=f"record the start of {ids.step_id}")
        if handle is None:
            return
        from rundossier.record.capture import capture
        from rundossier.record.recorder import set_current_step

        cm = capture(handle.log)
        cm.__enter__()
        state.captures[ids.key] = cm
        set_current_step(handle)  # `rundossier.artifact(...)` in the task records on this try

    def _task_finished(self, ti: Any, status: str, error: Any, previous_state: Any = None) -> None:
        state = self._here()
        if state is None:
            return
        ids = TaskIds.of(ti)
        live = in_task_process(ti)
        if status == "failed" and process_died(error, live_step=live, previous_state=previous_state):
            status = "crashed"
        cm = state.captures.pop(ids.key, None)
        if cm is not None:  # stop capturing first: the trace's log tail then has the last lines
            try:
                cm.__exit__(None, None, None)
            except Exception as exc:  # noqa: BLE001
                log.warning("rundossier could not stop capturing the log of %s: %s", ids.step_id, exc)
        info = RunInfo.of_task(ti, ids)
        if status == "crashed":
            reason: str | None = REASON_DIED
        else:
            reason = failure_reason(error, live_step=live, state=ids.state) if status == "failed" else None
        # Airflow ends the task's process soon after this hook: what is not written by then waits
        # in the spool (delivered later, by this host's next task or `rundossier flush`)
        deadline = time.monotonic() + spool_deadline(state.timeout)

        def finish() -> None:
            handle = state.steps.pop(ids.key, None)
            if handle is not None:
                handle.budget.until(deadline)
                if status == "success":  # a try that failed did not write its outlets
                    record_assets(handle, getattr(ti, "task", None), "outlets", "output")
                handle.finish(status, error, reason=reason, finished_at=ids.end_date)
                return
            run = self._run(state, info)
            state.recorder.record_failure(
                run,
                ids.step_id,
                error if status in ("failed", "crashed") else None,
                try_number=ids.try_number,
                status=status,
                reason=reason,
                started_at=ids.start_date,
                finished_at=ids.end_date,
                deadline=deadline,
            )

        self.worker.call(finish, timeout=state.timeout, what=f"record the end of {ids.step_id}")

    # -- dag run hooks ---------------------------------------------------------------------------
    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: str) -> None:
        self._guarded("record the start of a dag run", lambda: self._dag_run(dag_run, "running", msg))

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        self._guarded("record a dag run's success", lambda: self._dag_run(dag_run, "success", msg))

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        self._guarded("record a dag run's failure", lambda: self._dag_run(dag_run, "failed", msg))

    def _dag_run(self, dag_run: Any, status: str, msg: str | None) -> None:
        state = self._here()
        if state is None:
            return
        info = RunInfo.of(dag_run)
        never_ran = [] if status == "running" else list(_never_ran(dag_run))

        def record() -> None:
            run = self._run(state, info, status=status, fresh=True)
            if status == "running":
                return
            for ids, step_status in never_ran:
                state.recorder.record_failure(
                    run,
                    ids.step_id,
                    None,
                    try_number=ids.try_number,
                    status=step_status,
                    reason=f"the task did not run ({step_status})",
                    started_at=ids.start_date,
                    finished_at=ids.end_date or info.ended_at,
                )
            state.recorder.finish_run(run, status, None, reason=msg, finished_at=info.ended_at)
            state.runs.pop((info.dag_id, info.run_id), None)

        self.worker.call(record, timeout=state.timeout, what=f"record dag run {info.run_id} ({status})")


def asset_uris(task: Any, attr: str) -> list[str]:
    """The URIs of a task's `inlets` or `outlets` that are Assets (aliases and other lineage
    objects have no URI of their own and are left out)."""
    try:
        items = list(getattr(task, attr, None) or ())
    except Exception:  # noqa: BLE001 - a partial task object
        return []
    uris: list[str] = []
    for item in items:
        uri = getattr(item, "uri", None)
        if isinstance(uri, str) and uri and uri not in uris:
            uris.append(uri)
    return uris


def record_assets(handle: Any, task: Any, attr: str, role: str) -> None:
    """Record a task's inlet (`input`) or outlet (`output`) Assets as artifacts of its try."""
    for uri in asset_uris(task, attr):
        handle.artifact(uri, role, kind="airflow.asset")


def _never_ran(dag_run: Any) -> Iterable[tuple[TaskIds, str]]:
    """Task instances of a finished dag run that never ran: upstream_failed, skipped by a branch.

    Read in the hook's own thread from the dag run's own session (what the scheduler sees now,
    uncommitted changes included), without flushing it."""
    try:
        session = _session_of(dag_run)
        if session is not None:
            with session.no_autoflush:
                tis = dag_run.get_task_instances(session=session)
        else:
            tis = dag_run.get_task_instances()
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not read the task instances of %s: %s", getattr(dag_run, "run_id", "?"), exc)
        return []
    out = []
    for ti in tis:
        ids = TaskIds.of(ti)
        if ids.state in NEVER_RAN:
            out.append((ids, NEVER_RAN[ids.state]))
    return out


def _session_of(obj: Any) -> Any:
    try:
        from sqlalchemy.orm import object_session

        return object_session(obj)
    except Exception:  # noqa: BLE001 - not an ORM object
        return None


def _warm(recorder: Any) -> None:
    try:
        recorder.blobs  # noqa: B018 - built on first use
    except Exception as exc:  # noqa: BLE001 - the first write says it again, and spools
        log.debug("rundossier could not build its blob store yet: %s", exc)


def _make_recorder(cfg: airflow_config.AirflowConfig) -> Any:
    from rundossier.integrations.airflow.secrets import airflow_redact
    from rundossier.record.recorder import Recorder

    return Recorder(cfg.settings, orchestrator=ORCHESTRATOR, redactors=[airflow_redact])


#: the one listener object the plugin registers (Airflow skips an object registered twice)
listener = RunDossierListener()

__all__ = [
    "RunDossierListener",
    "TaskIds",
    "RunInfo",
    "listener",
    "step_id_for",
    "failure_reason",
    "process_died",
    "in_task_process",
]
