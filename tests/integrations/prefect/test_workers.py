"""The Prefect hooks' work: writes in order on WRITES, reading back on AFTER_END; hooks survive nonsense."""

from __future__ import annotations

import contextvars
import logging
import threading

import pytest

from rundossier.integrations.prefect.workers import AFTER_END, WRITES, wait
from rundossier.prefect import RunDossier

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_writes_run_in_order_in_their_callers_context() -> None:
    out: list[tuple[int, str]] = []
    token = VAR.set("hook")
    try:
        for i in range(200):
            WRITES.submit(lambda i=i: out.append((i, VAR.get())), "append")
    finally:
        VAR.reset(token)
    assert wait(10)
    assert out == [(i, "hook") for i in range(200)]


def test_reading_back_does_not_hold_up_the_writes() -> None:
    release, written = threading.Event(), threading.Event()
    AFTER_END.submit(lambda: release.wait(10), "read task runs back")
    try:
        WRITES.submit(written.set, "write a try")
        assert written.wait(5)
    finally:
        release.set()
    assert wait(10)


def test_wait_reports_work_that_is_not_done_in_time() -> None:
    release = threading.Event()
    AFTER_END.submit(lambda: release.wait(10), "read task runs back")
    try:
        assert wait(0.05) is False
    finally:
        release.set()
    assert wait(10)


@pytest.mark.parametrize("hook", ["on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation"])
def test_hooks_called_with_nonsense_do_not_raise(hook: str, caplog: pytest.LogCaptureFixture) -> None:
    dossier = RunDossier(storage_url="memory://rd-nonsense", db_url="sqlite://")
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert getattr(dossier, hook)(object(), object(), object()) is None
    assert "rundossier" in caplog.text
