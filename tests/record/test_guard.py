"""The one guard: a rundossier fault is one warning and a default, never an exception into the host."""

from __future__ import annotations

import logging

import pytest

from rundossier.record.guard import guard, guarded


def test_guarded_returns_the_result_or_the_default_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert guarded("add", lambda: 1 + 1, 0) == 2
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert guarded("divide", lambda: 1 // 0, -1) == -1
    assert [r.getMessage() for r in caplog.records] == [
        "rundossier could not divide: ZeroDivisionError: integer division or modulo by zero"
    ]


def test_guard_hands_the_warning_to_the_given_sink_and_goes_on() -> None:
    said: list[str] = []
    with guard("read a row", said.append):
        raise KeyError("run_1")
    assert said == ["rundossier could not read a row: KeyError: 'run_1'"]


def test_a_broken_sink_still_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def sink(message: str) -> None:
        raise RuntimeError("sink down")

    with caplog.at_level(logging.WARNING, logger="rundossier"):
        assert guarded("write", lambda: [][0], "kept", sink) == "kept"
    assert "rundossier could not write: IndexError" in caplog.text


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_what_is_not_a_fault_passes_through(exc: type[BaseException]) -> None:
    def stop() -> None:
        raise exc()

    with pytest.raises(exc):
        guarded("stop", stop, None)
    with pytest.raises(exc), guard("stop"):
        stop()
