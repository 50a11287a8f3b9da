"""Prefect states in rundossier's terms (pure): statuses, live exceptions, the engine's lines, tries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rundossier.core.status import Status
from rundossier.integrations.prefect.states import (
    FinishedState,
    crash_type,
    error_text,
    is_engine_failure,
    is_final,
    is_retry_record,
    live_exception,
    parse_finished,
    record_exception,
    status_of,
    tries_from_states,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass
class S:
    type: str
    name: str
    seconds: float
    message: str | None = None

    @property
    def timestamp(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)


@pytest.mark.parametrize(
    ("state_type", "name", "status"),
    [
        ("COMPLETED", "Completed", Status.SUCCESS),
        ("COMPLETED", "Cached", Status.SUCCESS),
        ("FAILED", "Failed", Status.FAILED),
        ("FAILED", "TimedOut", Status.FAILED),
        ("CRASHED", "Crashed", Status.CRASHED),
        ("CANCELLED", "Cancelled", Status.CANCELLED),
        ("CANCELLING", "Cancelling", Status.CANCELLED),
        ("RUNNING", "Retrying", Status.RUNNING),
        ("PENDING", "Pending", Status.QUEUED),
        ("PENDING", "NotReady", Status.UPSTREAM_FAILED),
        ("SCHEDULED", "AwaitingRetry", Status.QUEUED),
        ("PAUSED", "Suspended", Status.PAUSED),
        ("completed", None, Status.SUCCESS),
        (None, None, Status.QUEUED),
        ("SOMETHING_NEW", None, Status.QUEUED),
    ],
)
def test_status_of(state_type: Any, name: str | None, status: Status) -> None:
    assert status_of(state_type, name) == status


def test_status_of_takes_the_enum() -> None:
    from prefect.client.schemas.objects import StateType

    assert status_of(StateType.FAILED) == Status.FAILED


@pytest.mark.parametrize(
    ("state_type", "name", "final"),
    [
        ("COMPLETED", "Completed", True),
        ("PENDING", "NotReady", True),
        ("RUNNING", "Running", False),
        ("PENDING", "x", False),
    ],
)
def test_is_final(state_type: str, name: str, final: bool) -> None:
    assert is_final(state_type, name) is final


class _Record:
    def __init__(self, result: Any) -> None:
        self.result = result


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ValueError("x"), "x"),
        (_Record(KeyError("k")), "'k'"),
        (_Record(42), None),
        ([1, 2], None),
        (None, None),
    ],
)
def test_live_exception(data: Any, expected: str | None) -> None:
    class State:
        pass

    state = State()
    state.data = data  # type: ignore[attr-defined]
    exc = live_exception(state)
    assert (str(exc) if exc is not None else None) == expected


def test_live_exception_of_a_real_failed_state() -> None:
    from prefect.states import Failed

    exc = RuntimeError("boom")
    assert live_exception(Failed(data=exc)) is exc


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Finished in state Completed()", FinishedState("Completed", "COMPLETED", None)),
        ("Finished in state Cached(type=COMPLETED)", FinishedState("Cached", "COMPLETED", None)),
        (
            "Finished in state Failed('Task run encountered an exception ValueError: x')",
            FinishedState("Failed", "FAILED", "Task run encountered an exception ValueError: x"),
        ),
        (
            "Finished in state TimedOut('Task run exceeded timeout of 1.0 second(s)', type=FAILED)",
            FinishedState("TimedOut", "FAILED", "Task run exceeded timeout of 1.0 second(s)"),
        ),
        (
            'Finished in state Failed("it\'s (broken), type=X")',
            FinishedState("Failed", "FAILED", "it's (broken), type=X"),
        ),
        (
            "Finished in state NotReady('Upstream task run did not reach COMPLETED', type=PENDING)",
            FinishedState("NotReady", "PENDING", "Upstream task run did not reach COMPLETED"),
        ),
        ("Finished in state Pending()\nPlease wait for all submitted tasks", FinishedState("Pending", "PENDING", None)),
        ("Finished in state Weird(unparseable", None),
        ("Beginning flow run", None),
    ],
)
def test_parse_finished(line: str, expected: FinishedState | None) -> None:
    assert parse_finished(line) == expected


def test_finished_state_status() -> None:
    assert FinishedState("NotReady", "PENDING", None).status == Status.UPSTREAM_FAILED


@pytest.mark.parametrize(
    ("template", "failure", "retry"),
    [
        ("Task run failed with %s: %r - Retry %s/%s will start %s", True, True),
        ("Task run failed with exception: ValueError('x') - Retries are exhausted", True, False),
        ("Task run failed with exception: ValueError('x')", True, False),
        ("Finished in state Failed()", False, False),
        (None, False, False),
    ],
)
def test_engine_records(template: Any, failure: bool, retry: bool) -> None:
    assert is_engine_failure(template) is failure
    assert is_retry_record(template) is retry


def test_record_exception_from_exc_info_or_args() -> None:
    exc = ValueError("x")
    with_info = logging.LogRecord("prefect.task_runs", 40, __file__, 1, "m", None, (ValueError, exc, None))
    assert record_exception(with_info) is exc
    with_args = logging.LogRecord("prefect.task_runs", 20, __file__, 1, "Task run failed with %s: %r", ("x", exc), None)
    assert record_exception(with_args) is exc
    plain = logging.LogRecord("prefect.task_runs", 20, __file__, 1, "hello %s", ("x",), None)
    assert record_exception(plain) is None


def test_tries_of_a_task_retried_twice_then_successful() -> None:
    states = [
        S("PENDING", "Pending", 0),
        S("RUNNING", "Running", 1),
        S("RUNNING", "Retrying", 2),
        S("SCHEDULED", "AwaitingRetry", 3, "Retry 2/2"),
        S("RUNNING", "Retrying", 5),
        S("COMPLETED", "Completed", 6),
    ]
    tries = tries_from_states(reversed(states))  # order of the API answer does not matter
    assert [(t.number, t.status) for t in tries] == [(1, Status.FAILED), (2, Status.FAILED), (3, Status.SUCCESS)]
    assert [(t.started_at, t.finished_at) for t in tries] == [
        (T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)),
        (T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)),
        (T0 + timedelta(seconds=5), T0 + timedelta(seconds=6)),
    ]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([S("PENDING", "Pending", 0), S("COMPLETED", "Cached", 1)], [(1, Status.SUCCESS)]),
        ([S("PENDING", "NotReady", 0)], [(1, Status.UPSTREAM_FAILED)]),
        ([S("PENDING", "Pending", 0), S("RUNNING", "Running", 1)], [(1, Status.RUNNING)]),
        ([S("RUNNING", "Running", 1), S("FAILED", "Failed", 2, "boom")], [(1, Status.FAILED)]),
        ([S("RUNNING", "Running", 1), S("CRASHED", "Crashed", 2)], [(1, Status.CRASHED)]),
        (
            [S("RUNNING", "Running", 1), S("SCHEDULED", "AwaitingRetry", 2), S("CANCELLED", "Cancelled", 3)],
            [(1, Status.FAILED)],
        ),
        ([], []),
    ],
)
def test_tries_from_states(states: list[S], expected: list[tuple[int, Status]]) -> None:
    assert [(t.number, t.status) for t in tries_from_states(states)] == expected


def test_a_final_message_is_kept_on_its_try() -> None:
    (t,) = tries_from_states([S("RUNNING", "Running", 1), S("FAILED", "Failed", 2, "boom")])
    assert t.message == "boom"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Flow run encountered an exception: AssertionError: 2 duplicate keys", "AssertionError: 2 duplicate keys"),
        ("Task run encountered an exception ValueError: boom", "ValueError: boom"),
        ("1/3 states failed.", "1/3 states failed."),
        ("Flow run encountered an exception:", "Flow run encountered an exception:"),
        (None, None),
        ("", None),
    ],
)
def test_error_text_drops_prefects_own_prefix(message: str | None, expected: str | None) -> None:
    assert error_text(message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Process exited with status code: -9. This indicates that the process exited due to a SIGKILL signal.",
            "Crashed (SIGKILL)",
        ),
        ("Flow run infrastructure exited with non-zero status code 137.", "Crashed (SIGKILL)"),
        ("Process exited with status code: -15.", "Crashed (SIGTERM)"),
        ("Process exited with status code: 1.", "Crashed (exit code 1)"),
        ("Execution was interrupted by an unexpected exception: ...", "Crashed"),
        (None, "Crashed"),
    ],
)
def test_crash_type_names_the_signal(message: str | None, expected: str) -> None:
    assert crash_type(message) == expected
