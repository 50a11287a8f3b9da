"""Step logs and live failures of Prefect task runs, read from Prefect's run loggers.

One `RunLogRouter` handler sits on the `prefect.flow_runs` and `prefect.task_runs` loggers. Prefect
puts `flow_run_id`, `task_run_id`, `task_run_name` and `task_name` on every record of those
loggers; the router hands each record of a flow run being recorded to that run's `FlowRunCapture`,
which keeps, per task run and per try:

- the log lines, in a bounded `StepLog` (spilled to storage as it grows);
- the live exception of a failed try: the task engine logs "Task run failed with exception: ..."
  with the exception object (`exc_info`, or as an argument when the try is retried), in the
  process and thread where it was raised, traceback intact;
- the final state, from the engine's "Finished in state ..." line (Prefect's own closing line:
  it is not stored in the step's log, whose last line is then the task's own last word or the
  engine's failure record, and whose time is the try's end).

A listener (`on_try`) hears of each try as it is first seen, fails (retried or for good) and
finishes, on the logging thread, so that the session records what finished as it finishes.

The try a record belongs to is the run count of the task run in the record's `TaskRunContext`;
records logged outside that context (the engine's last line) belong to the latest try seen.
Prefect's own TaskRun object (start and end times, run count, inputs, state) comes from that
context, or for the engine's last line from the engine up the call stack (`_engine_task_run`).

Records of flow runs that are not being recorded cost one dict lookup. Lines logged on a run's
own logger outside any task are not stored (Prefect keeps them). Logger levels are left alone:
what Prefect's logging configuration filters out is not seen here.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rundossier.integrations.prefect.states import (
    FinishedState,
    is_engine_failure,
    is_finished_record,
    is_retry_record,
    parse_finished,
    record_exception,
)
from rundossier.record.steplog import StepLog

LOGGER_NAMES = ("prefect.flow_runs", "prefect.task_runs")
_FORMATTER = logging.Formatter()

MakeLog = Callable[[str, int], StepLog]

#: what happened to a try, for the `on_try` listener
SEEN = "seen"  # the first record of a try
RETRIED = "retried"  # the try failed and the engine retries the task run
FAILED = "failed"  # the try failed and the engine does not retry it
FINISHED = "finished"  # the engine's closing line: `TaskRunCapture.final` is set

OnTry = Callable[["TaskRunCapture", int, str], None]


@dataclass
class TryCapture:
    """One try of one task run, as seen through its log records."""

    number: int
    log: StepLog
    error: BaseException | None = None
    first_ts: float | None = None
    failed_ts: float | None = None


@dataclass
class TaskRunCapture:
    """One task run: its tries, its final state, and what was already recorded."""

    task_run_id: str
    name: str
    task_name: str | None = None
    tries: dict[int, TryCapture] = field(default_factory=dict)
    current_try: int = 1
    #: Prefect's own TaskRun object (updated in place by the engine), when a record came from its context
    task_run: Any = None
    final: FinishedState | None = None
    final_ts: float | None = None
    #: tries already recorded (live by the task hooks, or by the flow's end)
    done: set[int] = field(default_factory=set)
    #: step handles opened by the task hooks, per try
    handles: dict[int, Any] = field(default_factory=dict)

    @property
    def last_try(self) -> int:
        return max([self.current_try, *self.tries])


class FlowRunCapture:
    """The task runs of one flow run, built from its log records. Thread-safe."""

    def __init__(self, flow_run_id: str, make_log: MakeLog, on_try: OnTry | None = None) -> None:
        self.flow_run_id = flow_run_id
        self._make_log = make_log
        self._on_try = on_try
        self._lock = threading.RLock()
        self.tasks: dict[str, TaskRunCapture] = {}
        self._names: dict[str, str] = {}  # step id -> task run id

    def task(self, task_run_id: str, name: str | None = None, task_name: str | None = None) -> TaskRunCapture:
        """The capture of a task run, created on first sight; its `name` is its step id."""
        with self._lock:
            tc = self.tasks.get(task_run_id)
            if tc is None:
                step_id = self._step_id(task_run_id, name) if name else task_run_id
                tc = self.tasks[task_run_id] = TaskRunCapture(task_run_id, step_id, task_name)
            else:
                if name and tc.name == task_run_id:
                    tc.name = self._step_id(task_run_id, name)
                if task_name and not tc.task_name:
                    tc.task_name = task_name
            return tc

    def _step_id(self, task_run_id: str, name: str) -> str:
        """The task run's name, unless another task run of this flow run has it already.

        Prefect names task runs `{task}-{3 hex characters}`, so two of 50 runs of one task share a
        name about one time in four; the second one gets its id's first 8 characters appended.
        """
        owner = self._names.setdefault(name, task_run_id)
        if owner == task_run_id:
            return name
        unique = f"{name}-{task_run_id.replace('-', '')[:8]}"
        self._names.setdefault(unique, task_run_id)
        return unique

    def try_of(self, tc: TaskRunCapture, number: int) -> TryCapture:
        with self._lock:
            tcap = tc.tries.get(number)
            if tcap is None:
                tcap = tc.tries[number] = TryCapture(number, self._make_log(tc.name, number))
            return tcap

    def on_record(self, record: logging.LogRecord) -> None:
        """Take one record of this flow run (called by the router, on the logging thread)."""
        attrs = record.__dict__
        task_run_id = attrs.get("task_run_id")
        if not task_run_id:
            return
        tc = self.task(str(task_run_id), attrs.get("task_run_name"), attrs.get("task_name"))
        live = _context_task_run(str(task_run_id))
        if live is None and tc.task_run is None:
            tc.task_run = _engine_task_run(str(task_run_id))
        events: list[str] = []
        template = record.msg
        with self._lock:
            if live is not None:
                tc.task_run = live
                number = max(int(getattr(live, "run_count", 1) or 1), 1)
                tc.current_try = max(tc.current_try, number)
            else:
                number = tc.current_try
                if is_finished_record(template) and tc.task_run is not None:  # the engine's own count
                    number = tc.current_try = max(number, int(getattr(tc.task_run, "run_count", 1) or 1))
            if number not in tc.tries:
                events.append(SEEN)
            tcap = self.try_of(tc, number)
            if tcap.first_ts is None:
                tcap.first_ts = record.created
            if is_engine_failure(template):
                exc = record_exception(record)
                if exc is not None:
                    tcap.error = exc
                tcap.failed_ts = record.created
                events.append(RETRIED if is_retry_record(template) else FAILED)
                if is_retry_record(template):
                    tc.current_try = max(tc.current_try, number + 1)
        message = record.getMessage()
        final = parse_finished(message) if is_finished_record(template) else None
        if final is not None:
            with self._lock:
                tc.final, tc.final_ts = final, record.created
            events.append(FINISHED)
        else:
            if record.exc_info and record.exc_info[0] is not None and not is_engine_failure(template):
                # a traceback the user logged; the engine's own failure traceback is the trace itself
                message = f"{message}\n{_FORMATTER.formatException(record.exc_info)}"
            tcap.log.write("stderr", message, record.levelname, record.created)
        if self._on_try is not None:
            for event in events:
                self._on_try(tc, number, event)


def _context_task_run(task_run_id: str) -> Any:
    """Prefect's TaskRun of the current TaskRunContext, if it is this task run."""
    try:
        from prefect.context import TaskRunContext

        ctx = TaskRunContext.get()
    except Exception:  # noqa: BLE001
        return None
    task_run = getattr(ctx, "task_run", None) if ctx is not None else None
    if task_run is not None and str(getattr(task_run, "id", "")) == task_run_id:
        return task_run
    return None


def _engine_task_run(task_run_id: str, max_depth: int = 40) -> Any:
    """Prefect's TaskRun of the task engine logging this record outside the run context, if any.

    The engine logs a task run's last line ("Finished in state ...") after leaving the run context;
    for a task that logs nothing else at INFO, that line is all this process sees. The engine
    (`self` of a frame up the stack, of a class named `...TaskRunEngine`) holds the TaskRun it
    updates in place, with start and end times, run count and inputs: checked by id, read only.
    No public Prefect API hands out that TaskRun once the engine has left the run context (the
    TaskRunContext is gone, the record carries only ids), hence this one walk up the stack, with
    the public `inspect.currentframe()`.
    """
    here = inspect.currentframe()
    frame = here.f_back if here is not None else None
    for _ in range(max_depth):
        if frame is None:
            return None
        engine = frame.f_locals.get("self")
        if engine is not None and type(engine).__name__.endswith("TaskRunEngine"):
            task_run = getattr(engine, "task_run", None)
            if task_run is not None and str(getattr(task_run, "id", "")) == task_run_id:
                return task_run
        frame = frame.f_back
    return None


class RunLogRouter(logging.Handler):
    """Routes records of Prefect's run loggers to the capture of their flow run."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self._runs: dict[str, FlowRunCapture] = {}
        self._runs_lock = threading.Lock()
        self.errors = 0

    def add(self, capture: FlowRunCapture) -> None:
        with self._runs_lock:
            self._runs[capture.flow_run_id] = capture

    def remove(self, flow_run_id: str) -> None:
        with self._runs_lock:
            self._runs.pop(flow_run_id, None)

    def get(self, flow_run_id: str) -> FlowRunCapture | None:
        return self._runs.get(flow_run_id)

    def handle(self, record: logging.LogRecord) -> bool:  # no handler-wide lock: captures lock themselves
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            flow_run_id = record.__dict__.get("flow_run_id")
            if not flow_run_id or not self._runs:
                return
            capture = self._runs.get(str(flow_run_id))
            if capture is not None:
                capture.on_record(record)
        except Exception:  # noqa: BLE001 - logging must never fail because of us
            self.errors += 1

    def install(self) -> None:
        """Attach to Prefect's run loggers (again, if Prefect's logging setup replaced the handlers)."""
        for name in LOGGER_NAMES:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)


ROUTER = RunLogRouter()

__all__ = [
    "FAILED",
    "FINISHED",
    "LOGGER_NAMES",
    "RETRIED",
    "ROUTER",
    "SEEN",
    "FlowRunCapture",
    "OnTry",
    "RunLogRouter",
    "TaskRunCapture",
    "TryCapture",
]
