"""Task logs and live failures from Prefect's run loggers, routed per flow run, task run and try."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from rundossier.core.logs import decode_lines
from rundossier.integrations.prefect.capture import LOGGER_NAMES, FlowRunCapture, RunLogRouter
from rundossier.record.steplog import StepLog

FLOW_RUN = "11111111-1111-1111-1111-111111111111"


def record(
    msg: str,
    args: tuple = (),
    *,
    task_run_id: str | None = "t1",
    name: str = "load-8b5",
    flow_run_id: str = FLOW_RUN,
    level: int = logging.INFO,
    exc_info: Any = None,
) -> logging.LogRecord:
    rec = logging.LogRecord("prefect.task_runs", level, __file__, 1, msg, args, exc_info)
    rec.flow_run_id = flow_run_id
    if task_run_id is not None:
        rec.task_run_id = task_run_id
        rec.task_run_name = name
        rec.task_name = name.rsplit("-", 1)[0]
    return rec


def lines(log: StepLog) -> list[Any]:
    return list(decode_lines(log.finish()))


@pytest.fixture
def capture() -> FlowRunCapture:
    return FlowRunCapture(FLOW_RUN, lambda step_id, n: StepLog())


def _raised(exc: BaseException) -> tuple[Any, Any, Any]:
    try:
        raise exc
    except BaseException:  # noqa: BLE001
        return sys.exc_info()


def test_lines_go_to_their_task_run(capture: FlowRunCapture) -> None:
    capture.on_record(record("loading %d rows", (3,)))
    capture.on_record(record("other task", task_run_id="t2", name="extract-1a2"))
    capture.on_record(record("flow-level line", task_run_id=None))
    assert set(capture.tasks) == {"t1", "t2"}
    t1 = capture.tasks["t1"]
    assert (t1.name, t1.task_name) == ("load-8b5", "load")
    (line,) = lines(t1.tries[1].log)
    assert (line.stream, line.level, line.message) == ("stderr", "INFO", "loading 3 rows")


def test_a_retried_try_keeps_its_exception_and_the_next_lines_go_to_the_next_try(capture: FlowRunCapture) -> None:
    first, second = TimeoutError("attempt 1"), TimeoutError("attempt 2")
    template = "Task run failed with %s: %r - Retry %s/%s will start %s"
    capture.on_record(record("fetch attempt 1"))
    capture.on_record(record(template, ("exception", first, 1, 2, "immediately")))
    capture.on_record(record("fetch attempt 2"))
    capture.on_record(
        record(
            "Task run failed with exception: TimeoutError('attempt 2') - Retries are exhausted",
            level=logging.ERROR,
            exc_info=_raised(second),
        )
    )
    capture.on_record(record("Finished in state Failed('Task run encountered an exception TimeoutError: x')"))
    tc = capture.tasks["t1"]
    assert tc.tries[1].error is first and tc.tries[2].error is second
    assert tc.tries[1].failed_ts is not None and tc.last_try == 2
    assert tc.final is not None and tc.final.type == "FAILED"
    assert [ln.message for ln in lines(tc.tries[1].log)][0] == "fetch attempt 1"
    second_lines = [ln.message for ln in lines(tc.tries[2].log)]
    assert second_lines[0] == "fetch attempt 2"
    assert second_lines[1].startswith("Task run failed with exception: TimeoutError('attempt 2')")
    assert "Traceback" not in second_lines[1]  # the trace holds it; the log line names it
    assert len(second_lines) == 2  # Prefect's closing line is its own, not one of the task's last lines


def test_the_listener_hears_each_try_start_fail_and_finish_in_order() -> None:
    heard: list[tuple[str, int, str]] = []
    cap = FlowRunCapture(FLOW_RUN, lambda step_id, n: StepLog(), lambda tc, n, event: heard.append((tc.name, n, event)))
    template = "Task run failed with %s: %r - Retry %s/%s will start %s"
    cap.on_record(record("fetch attempt 1"))
    cap.on_record(record("more of attempt 1"))
    cap.on_record(record(template, ("exception", TimeoutError("1"), 1, 1, "immediately")))
    cap.on_record(record("fetch attempt 2"))
    cap.on_record(
        record(
            "Task run failed with exception: TimeoutError('2') - Retries are exhausted",
            exc_info=_raised(TimeoutError("2")),
        )
    )
    cap.on_record(record("Finished in state Failed('Task run encountered an exception TimeoutError: 2')"))
    cap.on_record(record("Finished in state Completed()", task_run_id="t2", name="quiet-1a2"))
    assert heard == [
        ("load-8b5", 1, "seen"),
        ("load-8b5", 1, "retried"),
        ("load-8b5", 2, "seen"),
        ("load-8b5", 2, "failed"),
        ("load-8b5", 2, "finished"),
        ("quiet-1a2", 1, "seen"),  # a task that logs nothing: its closing line is all there is
        ("quiet-1a2", 1, "finished"),
    ]
    assert cap.tasks["t2"].final is not None and cap.tasks["t2"].final_ts is not None
    assert lines(cap.tasks["t2"].tries[1].log) == []


def test_a_user_logging_an_exception_is_not_taken_for_the_failure(capture: FlowRunCapture) -> None:
    capture.on_record(record("retrying the connection", level=logging.ERROR, exc_info=_raised(OSError("blip"))))
    tcap = capture.tasks["t1"].tries[1]
    assert tcap.error is None
    (line,) = lines(tcap.log)
    assert line.message.startswith("retrying the connection\nTraceback") and "OSError: blip" in line.message


def test_task_runs_sharing_a_name_get_distinct_step_ids(capture: FlowRunCapture) -> None:
    a = "aaaaaaaa-0000-0000-0000-000000000000"
    b = "bbbbbbbb-0000-0000-0000-000000000000"
    capture.on_record(record("x", task_run_id=a, name="step-7b7"))
    capture.on_record(record("y", task_run_id=b, name="step-7b7"))
    capture.on_record(record("z", task_run_id=a, name="step-7b7"))
    assert capture.tasks[a].name == "step-7b7"
    assert capture.tasks[b].name == "step-7b7-bbbbbbbb"


def test_the_router_routes_by_flow_run_and_never_raises() -> None:
    router = RunLogRouter()
    mine = FlowRunCapture(FLOW_RUN, lambda s, n: StepLog())
    router.add(mine)
    router.handle(record("seen"))
    router.handle(record("not ours", flow_run_id="22222222-2222-2222-2222-222222222222"))
    router.handle(logging.LogRecord("prefect.task_runs", 20, __file__, 1, "no ids", (), None))
    assert set(mine.tasks) == {"t1"}

    class Broken(FlowRunCapture):
        def on_record(self, record: logging.LogRecord) -> None:
            raise RuntimeError("bug")

    router.add(Broken(FLOW_RUN, lambda s, n: StepLog()))
    router.handle(record("boom"))
    assert router.errors == 1
    router.remove(FLOW_RUN)
    router.handle(record("after"))
    assert router.errors == 1


def test_install_is_idempotent_and_comes_back_after_a_logging_reset() -> None:
    router = RunLogRouter()
    try:
        router.install()
        router.install()
        for name in LOGGER_NAMES:
            assert logging.getLogger(name).handlers.count(router) == 1
        logging.getLogger(LOGGER_NAMES[0]).removeHandler(router)  # what a dictConfig does
        router.install()
        assert router in logging.getLogger(LOGGER_NAMES[0]).handlers
    finally:
        for name in LOGGER_NAMES:
            logging.getLogger(name).removeHandler(router)
