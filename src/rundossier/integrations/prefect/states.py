"""Prefect states in rundossier's terms (pure): status, the live exception, tries from a state history.

Works on anything shaped like Prefect's `State` (`type`, `name`, `message`, `timestamp`, `data`),
so it is tested without a Prefect server.
"""

from __future__ import annotations

import ast
import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rundossier.core.status import Status

#: Prefect state type -> our status
STATUS_BY_TYPE: dict[str, Status] = {
    "COMPLETED": Status.SUCCESS,
    "FAILED": Status.FAILED,
    "CRASHED": Status.CRASHED,
    "CANCELLED": Status.CANCELLED,
    "CANCELLING": Status.CANCELLED,
    "RUNNING": Status.RUNNING,
    "PENDING": Status.QUEUED,
    "SCHEDULED": Status.QUEUED,
    "PAUSED": Status.PAUSED,
}
#: Prefect state types a run never leaves
FINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
#: the state name Prefect gives a task whose upstream failed
NOT_READY = "NotReady"
#: the state name between a failed try and the next one (delayed retry)
AWAITING_RETRY = "AwaitingRetry"

_ENGINE_PREFIX = re.compile(r"^(?:Flow|Task) run encountered an exception:? ")
_EXIT_CODE = re.compile(r"(?:exit|status) code:? (?P<code>-?\d+)")
_FINISHED = re.compile(r"Finished in state (?P<name>\w+)\((?P<rest>.*)\)\s*$")
_TYPE_SUFFIX = re.compile(r"(?:^|, )type=(?P<type>[A-Z_]+)$")


def type_name(state_type: Any) -> str:
    """`StateType.COMPLETED`, `"COMPLETED"`, `"completed"` -> `"COMPLETED"`; None -> `""`."""
    if state_type is None:
        return ""
    return str(getattr(state_type, "value", state_type)).upper()


def status_of(state_type: Any, state_name: str | None = None) -> Status:
    """Our status for a Prefect state type (and name: `NotReady` means upstream failed)."""
    t = type_name(state_type)
    if t == "PENDING" and state_name == NOT_READY:
        return Status.UPSTREAM_FAILED
    return STATUS_BY_TYPE.get(t, Status.QUEUED)


def state_status(state: Any) -> Status:
    return status_of(getattr(state, "type", None), getattr(state, "name", None))


def is_final(state_type: Any, state_name: str | None = None) -> bool:
    """True for a state a task run stays in (NotReady counts: that task will not run)."""
    t = type_name(state_type)
    return t in FINAL_TYPES or (t == "PENDING" and state_name == NOT_READY)


def live_exception(state: Any) -> BaseException | None:
    """The exception a state carries in the process that raised it, or None.

    In-process, a failed state's `data` is the exception or a `ResultRecord` whose `result` is the
    exception. Never calls `state.result()` (it may do I/O or hand back a coroutine).
    """
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    result = getattr(data, "result", None)
    if isinstance(result, BaseException):
        return result
    return None


def error_text(message: str | None) -> str | None:
    """A failed state's message as an error: Prefect's "Flow run encountered an exception: " dropped.

    Prefect writes `"Flow run encountered an exception: ValueError: boom"` (and "Task run ... exception
    ValueError: boom"); without the prefix the recorder reads the type from `"ValueError: boom"` and
    a headline does not say the type twice.
    """
    if not message:
        return None
    return _ENGINE_PREFIX.sub("", message, count=1) or message


def crash_type(message: str | None) -> str:
    """A readable type for a crash reported as a message: `Crashed (SIGKILL)` from an exit code.

    Prefect's runner reports "Process exited with status code: -9. ..." and workers "... exited with
    non-zero status code 137": a negative code is the signal that killed the process, and shells and
    containers report a signal as 128 + its number.
    """
    m = _EXIT_CODE.search(message or "")
    if m is None:
        return "Crashed"
    code = int(m.group("code"))
    number = -code if code < 0 else code - 128 if 128 < code < 160 else None
    if number is not None:
        try:
            return f"Crashed ({signal.Signals(number).name})"
        except ValueError:
            pass
    return f"Crashed (exit code {code})"


@dataclass(frozen=True)
class FinishedState:
    """What Prefect's 'Finished in state X(...)' log line says about a task run's final state."""

    name: str
    type: str
    message: str | None

    @property
    def status(self) -> Status:
        return status_of(self.type, self.name)


def parse_finished(text: str) -> FinishedState | None:
    """Parse `Finished in state Failed('boom')` / `Cached(type=COMPLETED)`; None if not that line."""
    if not text.startswith("Finished in state "):
        return None
    m = _FINISHED.match(text.split("\n", 1)[0])
    if m is None:
        return None
    name, rest = m.group("name"), m.group("rest")
    state_type = name.upper()
    t = _TYPE_SUFFIX.search(rest)
    if t is not None:
        state_type = t.group("type")
        rest = rest[: t.start()]
    message: str | None = None
    if rest:
        try:
            value = ast.literal_eval(rest)
            message = value if isinstance(value, str) else rest
        except (ValueError, SyntaxError):
            message = rest
    return FinishedState(name, state_type, message)


def is_engine_failure(template: Any) -> bool:
    """True for the task engine's own 'Task run failed with exception: ...' records."""
    return isinstance(template, str) and template.startswith("Task run failed with")


def is_finished_record(template: Any) -> bool:
    """True for the engine's closing 'Finished in state ...' record of a task run."""
    return isinstance(template, str) and template.startswith("Finished in state ")


def is_retry_record(template: Any) -> bool:
    """True for the engine's record that a failed try will be retried."""
    return is_engine_failure(template) and " - Retry " in template


def record_exception(record: Any) -> BaseException | None:
    """The live exception on an engine failure record (`exc_info`, or an argument of the message)."""
    exc_info = getattr(record, "exc_info", None)
    if exc_info and isinstance(exc_info, tuple) and len(exc_info) > 1 and isinstance(exc_info[1], BaseException):
        return exc_info[1]
    args = getattr(record, "args", None)
    if isinstance(args, tuple):
        for arg in args:
            if isinstance(arg, BaseException):
                return arg
    return None


@dataclass(frozen=True)
class Try:
    """One try of a task run, read from its state history."""

    number: int
    status: Status
    started_at: datetime | None
    finished_at: datetime | None
    message: str | None


def tries_from_states(states: Iterable[Any]) -> list[Try]:
    """Split a task run's state history into tries.

    Each RUNNING state starts a try (Prefect's `Retrying` is a RUNNING state); the next final
    state or `AwaitingRetry` ends it. A try ended by the start of another one, or by
    `AwaitingRetry`, failed (it was retried). A final state with no try before it (a cached
    result, an upstream failure) is one try that never ran; one after a closed try (cancelled
    while awaiting a retry) adds no try.
    """
    ordered = sorted(states, key=lambda s: _ts_key(getattr(s, "timestamp", None)))
    tries: list[Try] = []
    start: datetime | None = None
    open_try = False
    for s in ordered:
        t = type_name(getattr(s, "type", None))
        name = getattr(s, "name", None)
        ts = getattr(s, "timestamp", None)
        msg = getattr(s, "message", None) or None
        if t == "RUNNING":
            if open_try:
                tries.append(Try(len(tries) + 1, Status.FAILED, start, ts, None))
            start, open_try = ts, True
        elif t == "SCHEDULED" and name == AWAITING_RETRY:
            if open_try:
                tries.append(Try(len(tries) + 1, Status.FAILED, start, ts, msg))
                open_try = False
        elif is_final(t, name):
            if open_try:
                tries.append(Try(len(tries) + 1, status_of(t, name), start, ts, msg))
                open_try = False
            elif not tries:
                tries.append(Try(1, status_of(t, name), None, ts, msg))
    if open_try:
        tries.append(Try(len(tries) + 1, Status.RUNNING, start, None, None))
    return tries


def _ts_key(ts: datetime | None) -> float:
    return ts.timestamp() if ts is not None else float("-inf")


__all__ = [
    "STATUS_BY_TYPE",
    "crash_type",
    "error_text",
    "FINAL_TYPES",
    "FinishedState",
    "Try",
    "is_engine_failure",
    "is_final",
    "is_finished_record",
    "is_retry_record",
    "live_exception",
    "parse_finished",
    "record_exception",
    "state_status",
    "status_of",
    "tries_from_states",
    "type_name",
]
