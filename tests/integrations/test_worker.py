"""The integrations' background worker: in order, in the caller's context, bounded in queue and time."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time

import pytest

from rundossier.integrations.worker import Worker, drain_all

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


@pytest.fixture
def worker() -> Worker:
    return Worker("rd-test-worker", max_queued=50, limit_s=5)


def test_call_returns_the_result_computed_in_the_callers_context(worker: Worker) -> None:
    token = VAR.set("caller")
    try:
        assert worker.call(lambda: (42, VAR.get(), threading.current_thread().name), timeout=5, what="answer")[:2] == (
            42,
            "caller",
        )
    finally:
        VAR.reset(token)


def test_items_run_in_the_order_they_came(worker: Worker) -> None:
    out: list[int] = []
    for i in range(50):
        worker.submit(lambda i=i: out.append(i), "append")
    assert worker.drain(10)
    assert out == list(range(50))


def test_a_failing_item_is_a_warning_and_the_worker_goes_on(worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("a bug in rundossier")

    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert worker.call(boom, timeout=5, what="record something") is None
        worker.submit(boom, "record more")
        assert worker.call(lambda: "after", timeout=5, what="record the rest") == "after"
    assert caplog.text.count("rundossier could not record") == 2
    assert "RuntimeError: a bug in rundossier" in caplog.text


def test_the_caller_waits_at_most_its_timeout_and_the_work_goes_on(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    release, done = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(10)
        done.set()

    with caplog.at_level(logging.WARNING, logger="rundossier"):
        start = time.monotonic()
        assert worker.call(slow, timeout=0.1, what="wait for a stuck database") is None
        assert time.monotonic() - start < 2
    assert "wait for a stuck database is taking longer than 0.1 s; the task goes on" in caplog.text
    assert not done.is_set()
    release.set()
    assert worker.drain(10) and done.is_set()


def test_an_item_past_its_time_limit_does_not_stop_the_next_ones(caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker("rd-test-limit", limit_s=0.2)
    release = threading.Event()
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        worker.submit(lambda: release.wait(30), "hang on a dead socket")
        try:
            assert worker.call(lambda: "next", timeout=5, what="record the next try") == "next"
        finally:
            release.set()
    assert "hang on a dead socket has run for 0.2 s; the next records are written without waiting for it" in caplog.text


def test_the_queue_is_bounded_and_what_does_not_fit_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker("rd-test-bound", max_queued=3)
    release = threading.Event()
    ran: list[int] = []
    started = threading.Event()
    worker.submit(lambda: (started.set(), release.wait(10)), "hold the worker")
    assert started.wait(5)  # the first item runs: 3 places left in the queue
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        items = [worker.submit(lambda i=i: ran.append(i), f"record {i}") for i in range(5)]
        assert worker.call(lambda: None, timeout=1, what="record more") is None
    assert [item is not None for item in items] == [True, True, True, False, False]
    assert "3 records are waiting to be written; dropped: record 3" in caplog.text
    assert "dropped: record more" in caplog.text
    release.set()
    assert worker.drain(10) and ran == [0, 1, 2]


def test_drain_waits_at_most_its_deadline(worker: Worker) -> None:
    release = threading.Event()
    worker.submit(lambda: release.wait(10), "slow write")
    start = time.monotonic()
    assert worker.drain(0.1) is False
    assert drain_all([worker], timeout=0.1) is False
    assert time.monotonic() - start < 2
    release.set()
    assert drain_all([worker], timeout=10) is True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_thread(worker: Worker) -> None:
    assert worker.call(lambda: 1, timeout=5, what="warm up") == 1
    pid = os.fork()
    if pid == 0:  # the child: Airflow's task runner forks like this
        ok = False
        try:
            ok = worker.call(lambda: os.getpid(), timeout=5, what="in the child") == os.getpid()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.call(lambda: 2, timeout=5, what="in the parent") == 2
