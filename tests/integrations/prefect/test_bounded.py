"""Hook work is bounded in time and never raises; queued writes run in order; hooks survive nonsense."""

from __future__ import annotations

import contextvars
import logging
import threading

import pytest

from rundossier.integrations.prefect.bounded import drain, enqueue, run_background, run_bounded, wait_background
from rundossier.prefect import RunDossier

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_finished_work_reports_true_and_sees_the_callers_context() -> None:
    seen = []
    token = VAR.set("caller")
    try:
        assert run_bounded(lambda: seen.append(VAR.get()), 5, "test") is True
    finally:
        VAR.reset(token)
    assert seen == ["caller"]


def test_work_that_overruns_goes_on_in_the_background(caplog: pytest.LogCaptureFixture) -> None:
    release, done = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(10)
        done.set()

    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert run_bounded(slow, 0.05, "wait for a stuck database") is False
    assert "takes longer than" in caplog.text and not done.is_set()
    release.set()
    assert wait_background(10) and done.is_set()


def test_exceptions_are_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("a bug in rundossier")

    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert run_bounded(boom, 5, "record something") is True
        run_background(boom, "record more", budget_s=5)
        enqueue(boom, "record a task")
        assert wait_background(10)
    assert caplog.text.count("a bug in rundossier") == 3


def test_queued_work_runs_in_order() -> None:
    out: list[int] = []
    for i in range(200):
        enqueue(lambda i=i: out.append(i), "append")
    assert drain(10)
    assert out == list(range(200))


@pytest.mark.parametrize("hook", ["on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation"])
def test_hooks_called_with_nonsense_do_not_raise(hook: str, caplog: pytest.LogCaptureFixture) -> None:
    dossier = RunDossier(storage_url="memory://rd-nonsense", db_url="sqlite://")
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert getattr(dossier, hook)(object(), object(), object()) is None
    assert "rundossier" in caplog.text
