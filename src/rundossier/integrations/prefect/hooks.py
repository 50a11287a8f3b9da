"""The state hooks: Prefect calls them, they call the recorder; bounded in time, never raising.

Flow hooks (`hook(flow, flow_run, state)`): `on_running` starts the run and the log capture of its
task runs (each try is then recorded as it starts and ends, see `session`); `on_completion`,
`on_failure`, `on_crashed` and `on_cancellation` record the tries this process saw end and the
run's end, and then, on a worker of its own, the task runs only Prefect's API knows and the
artifacts of a failure. A terminal hook returns when all of that is recorded, or after the Block's
`hook_timeout_seconds` + `api_timeout_seconds`: the process often ends right after it (a
deployment's flow-run process, the process reporting a crash), and a process that is shutting down
refuses the network calls that work needs. A terminal hook with no `on_running` before it in this
process (only terminal hooks attached, or a runner or worker reporting a crash after the flow's
process died) records what Prefect says: status and message, no invented traceback, the start
Prefect recorded.

Task hooks (`hook(task, task_run, state)`, opt-in with `task_hooks()`): each try is recorded as it
starts and ends, the failure with the task's own live exception. They need the flow's hooks too:
the flow run's row and its end come from those.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rundossier.integrations.prefect import api
from rundossier.integrations.prefect.capture import ROUTER
from rundossier.integrations.prefect.session import ORCHESTRATOR, FlowRunSession, Options
from rundossier.integrations.prefect.workers import AFTER_END, WRITES
from rundossier.integrations.prefect.workers import wait as _wait
from rundossier.record.guard import guard
from rundossier.record.livelog import LIVE_LOG_EVERY_S, LivePublisher
from rundossier.record.recorder import Recorder, StepHandle, add_step_finder
from rundossier.settings import Settings, environment

log = logging.getLogger("rundossier")

MAX_SESSIONS = 256
FLOW_EVENTS = ("running", "completion", "failure", "crashed", "cancellation")
TASK_EVENTS = ("running", "completion", "failure")

_sessions: OrderedDict[str, FlowRunSession] = OrderedDict()
_sessions_lock = threading.Lock()
_recorders: dict[str, Recorder] = {}
_publishers: dict[int, LivePublisher] = {}  # id(recorder) -> its publisher (recorders live as long as the process)
_recorders_lock = threading.Lock()
_run_logger: contextvars.ContextVar[Any] = contextvars.ContextVar("rundossier_prefect_run_logger", default=None)
_warned_no_flow_hooks: set[str] = set()


@dataclass
class Runtime:
    """What one Block hands its hooks: the recorder settings (a layer) and the hook options."""

    layer: dict[str, Any]
    options: Options

    def recorder(self) -> Recorder:
        return recorder_for(self.layer)


def recorder_for(layer: Mapping[str, Any]) -> Recorder:
    """One recorder per distinct configuration (Block values and RUNDOSSIER_* variables) per process.

    Its own live-log publisher is off: the step logs of Prefect task runs are the log capture's,
    published by `live_publisher_for` (one per recorder) while each try runs.
    """
    key = json.dumps([layer, environment()], sort_keys=True, default=str)
    rec = _recorders.get(key)
    if rec is None:
        with _recorders_lock:
            rec = _recorders.get(key)
            if rec is None:
                settings = Settings.resolve(layer=layer)
                rec = Recorder(settings, orchestrator=ORCHESTRATOR, warn=_warn, live_log_interval=None)
                _recorders[key] = rec
    return rec


def live_publisher_for(rec: Recorder) -> LivePublisher:
    """Publishes the logs of a recorder's running tries now and then (follow mode; a killed
    process keeps what was published)."""
    with _recorders_lock:
        pub = _publishers.get(id(rec))
        if pub is None:
            blobs = lambda: rec.blobs  # noqa: E731 - built lazily, like the recorder's own
            pub = _publishers[id(rec)] = LivePublisher(
                lambda key, data: blobs().put(key, data),
                lambda key: blobs().delete([blobs().uri_for(key)]),
                interval=LIVE_LOG_EVERY_S,
                warn=_warn,
            )
        return pub


def _warn(message: str) -> None:
    """Recorder warnings go to the `rundossier` logger and to the flow run's log in Prefect."""
    log.warning(message)
    run_logger = _run_logger.get()
    if run_logger is not None:
        with contextlib.suppress(Exception):
            run_logger.warning(message)


@contextlib.contextmanager
def _logging_to(flow_run: Any, flow: Any = None) -> Iterator[None]:
    token = None
    try:
        from prefect.logging.loggers import flow_run_logger

        token = _run_logger.set(flow_run_logger(flow_run, flow))
    except Exception:  # noqa: BLE001
        pass
    try:
        yield
    finally:
        if token is not None:
            _run_logger.reset(token)


# -- sessions --------------------------------------------------------------------------------------
def session_of(flow_run_id: str) -> FlowRunSession | None:
    return _sessions.get(flow_run_id)


def _register(session: FlowRunSession) -> None:
    with _sessions_lock:
        _sessions[session.flow_run_id] = session
        _sessions.move_to_end(session.flow_run_id)
        while len(_sessions) > MAX_SESSIONS:
            old_id, _ = _sessions.popitem(last=False)
            ROUTER.remove(old_id)
    ROUTER.install()
    ROUTER.add(session.capture)


def _forget(session: FlowRunSession) -> None:
    ROUTER.remove(session.flow_run_id)
    with _sessions_lock:
        if _sessions.get(session.flow_run_id) is session:
            del _sessions[session.flow_run_id]


# -- flow hooks ------------------------------------------------------------------------------------
def flow_hook(rt: Runtime, event: str, flow: Any, flow_run: Any, state: Any) -> None:
    """Entry point of every flow hook. Never raises."""
    with guard(f"run the {event} hook of flow run {_id(flow_run)}"):
        if event == "running":
            _flow_running(rt, flow, flow_run, state)
        else:
            _flow_ended(rt, flow, flow_run, state)


def _flow_running(rt: Runtime, flow: Any, flow_run: Any, state: Any) -> None:
    fr_id = str(flow_run.id)
    session = session_of(fr_id)
    if session is None or session.ended:
        session = _new_session(rt, flow, flow_run)
    _register(session)  # capture this run's task logs from now on, before any database work
    rec = session.recorder

    def work() -> None:
        with _logging_to(flow_run, flow):
            parent = _parent_run_id(rec, rt.options, flow_run)
            session.start(
                flow_run,
                attempt=max(int(getattr(flow_run, "run_count", 1) or 1), 1),
                started_at=getattr(state, "timestamp", None) or getattr(flow_run, "start_time", None),
                parent_run_id=parent,
            )
            apply_retention(rec, flow.name, rt.options)

    WRITES.call(work, timeout=rt.options.hook_timeout_s, what=f"record the start of flow run {_id(flow_run)}")


def _flow_ended(rt: Runtime, flow: Any, flow_run: Any, state: Any) -> None:
    fr_id = str(flow_run.id)
    session = session_of(fr_id)
    if session is None:
        session = _new_session(rt, flow, flow_run)

    def work() -> None:  # queued after the tries the log capture and task hooks saw: they land first
        with _logging_to(flow_run, flow):
            if session.run is None:  # no on_running here (a runner reporting a crash), or its work is late
                count = int(getattr(flow_run, "run_count", 0) or 0)
                session.start(
                    flow_run,
                    attempt=count or None,
                    started_at=_known_start(session, flow_run, rt.options),
                    parent_run_id=_parent_run_id(session.recorder, rt.options, flow_run),
                )
            session.finish(flow_run, state)
        deadline = time.monotonic() + rt.options.api_timeout_s
        AFTER_END.submit(
            lambda: _after_end(session, deadline),
            f"record the task runs of flow run {_id(flow_run)}",
            limit=rt.options.api_timeout_s + 15.0,
        )

    deadline = time.monotonic() + rt.options.hook_timeout_s + rt.options.api_timeout_s
    WRITES.call(work, timeout=rt.options.hook_timeout_s, what=f"record the end of flow run {_id(flow_run)}")
    # The process may end right after this hook (a deployment's flow-run process, the process that
    # reports a crash): at interpreter shutdown the network calls of the reading back and of the
    # artifacts are refused (new threads and executor futures are), so they are waited for here.
    if not _wait(max(0.0, deadline - time.monotonic())):
        log.warning(
            "rundossier: recording the task runs of flow run %s takes longer than %g s; it goes on in the "
            "background and may not finish if this process ends now",
            _id(flow_run),
            rt.options.hook_timeout_s + rt.options.api_timeout_s,
        )


def _new_session(rt: Runtime, flow: Any, flow_run: Any) -> FlowRunSession:
    rec = rt.recorder()
    return FlowRunSession(
        rec, rt.options, flow.name, str(flow_run.id), getattr(flow_run, "name", None), live=live_publisher_for(rec)
    )


def _known_start(session: FlowRunSession, flow_run: Any, options: Options) -> datetime | None:
    """When a flow run that another process ran started: Prefect's API, else the recorded row.

    A runner reporting a crash holds the flow run as it was scheduled (no start time); "now" would
    be a guess that puts the start after the end. None when neither knows (the row keeps its own).
    """
    started = getattr(flow_run, "start_time", None)
    if started is not None:
        return started
    try:
        with api.client(options.hook_timeout_s) as c:
            started = getattr(api.flow_run(c, flow_run.id), "start_time", None)
    except Exception as exc:  # noqa: BLE001 - the API is down: the recorded row may know
        log.warning("rundossier could not read flow run %s from Prefect's API: %s", _id(flow_run), exc)
    if started is not None:
        return started
    try:
        rec = session.recorder
        row = rec.store.find_run(ORCHESTRATOR, rec.masker.mask(session.flow_name), rec.masker.mask(session.flow_run_id))
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not read the run of flow run %s: %s", _id(flow_run), exc)
        return None
    return row.started_at if row is not None else None


def _after_end(session: FlowRunSession, deadline: float) -> None:
    try:
        session.after_end(deadline)
    finally:
        _forget(session)


def _parent_run_id(rec: Recorder, options: Options, flow_run: Any) -> str | None:
    """Our run id of the parent flow run of a subflow run (None for a top-level run or if unknown)."""
    parent_task_run_id = getattr(flow_run, "parent_task_run_id", None)
    if not parent_task_run_id:
        return None
    try:
        with api.client(options.hook_timeout_s) as c:
            parent_fr = api.parent_flow_run_id(c, parent_task_run_id)
            if parent_fr is None:
                return None
            parent = session_of(parent_fr)
            if parent is not None and parent.run is not None:
                return parent.run.run_id
            flow_name = api.flow_name_of_run(c, parent_fr)
        row = rec.store.find_run(ORCHESTRATOR, rec.masker.mask(flow_name), rec.masker.mask(parent_fr))  # ids as stored
        return row.run_id if row is not None else None
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not find the parent run of subflow run %s: %s", _id(flow_run), exc)
        return None


def apply_retention(rec: Recorder, flow_id: str, options: Options) -> None:
    """Give the flow the Block's retention defaults (where this rundossier has the retention module)."""
    try:
        from rundossier.retention.sync import apply_block_defaults  # type: ignore[import-not-found]
    except ImportError:
        return  # the defaults stay on the Block until the retention module is there
    try:
        apply_block_defaults(rec.store, flow_id, **dict(options.retention), block_name=options.block_name or "default")
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not apply the Block's retention defaults to %s: %s", flow_id, exc)


# -- task hooks ------------------------------------------------------------------------------------
def task_hook(rt: Runtime, event: str, task: Any, task_run: Any, state: Any) -> None:
    """Entry point of every task hook. Never raises."""
    with guard(f"run the {event} hook of task run {getattr(task_run, 'name', '?')}"):
        fr_id = getattr(task_run, "flow_run_id", None)
        if fr_id is None:
            return  # a task called outside any flow
        session = session_of(str(fr_id))
        if session is None:
            if str(fr_id) not in _warned_no_flow_hooks:
                if len(_warned_no_flow_hooks) >= MAX_SESSIONS:
                    _warned_no_flow_hooks.clear()
                _warned_no_flow_hooks.add(str(fr_id))
                log.warning(
                    "rundossier: task %r has rundossier's task hooks but its flow has not its flow hooks; "
                    "add @flow(**dossier.hooks()) to record this flow run",
                    getattr(task_run, "name", "?"),
                )
            return

        what = f"record task run {getattr(task_run, 'name', '?')}"
        n = max(int(getattr(task_run, "run_count", 1) or 1), 1)  # the engine changes task_run in place
        if event == "running":
            WRITES.submit(lambda: session.task_started(task, task_run, state, n), what)
        elif event == "completion":
            WRITES.submit(lambda: session.task_finished(task, task_run, state, n), what)
        else:  # a failure: its trace is built and written now, from the live exception, after queued work

            def failed() -> None:
                session.task_finished(task, task_run, state, n)

            WRITES.call(failed, timeout=rt.options.hook_timeout_s, what=what)


def _prefect_step() -> StepHandle | None:
    """The try of the Prefect task run executing here (for `rundossier.artifact` in a task)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    task_run = getattr(ctx, "task_run", None)
    if task_run is None or getattr(task_run, "flow_run_id", None) is None:
        return None
    session = session_of(str(task_run.flow_run_id))
    if session is None or session.run is None:
        return None
    tc = session.capture.task(str(task_run.id), task_run.name, getattr(getattr(ctx, "task", None), "name", None))
    number = max(int(getattr(task_run, "run_count", 1) or 1), 1)
    handle = tc.handles.get(number)
    if handle is not None and not handle.finished:
        return handle  # type: ignore[no-any-return]
    return session.recorder.try_handle(session.run, tc.name, number)


add_step_finder(_prefect_step)


def wait(timeout: float | None = None) -> bool:
    """Wait for rundossier's background work (reading task runs back after a flow run ended)."""
    return _wait(timeout)


def _id(flow_run: Any) -> str:
    return f"{getattr(flow_run, 'name', '?')!r} ({getattr(flow_run, 'id', '?')})"


__all__ = ["Runtime", "flow_hook", "task_hook", "recorder_for", "apply_retention", "session_of", "wait"]
