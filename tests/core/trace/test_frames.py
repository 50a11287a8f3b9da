"""The frame memo prints exactly what traceback prints, for every shape of failure."""

from __future__ import annotations

import sys
import traceback

import pytest

from rundossier.core.trace import frames
from rundossier.core.trace.frames import clear_memo, memoize_frames
from tests.core.trace.helpers import caught


def recurse(n: int) -> None:
    if n == 0:
        raise RecursionError("bottom")
    recurse(n - 1)


def carets() -> None:
    a, b = {"k": [1]}, None
    _ = a["k"][0] + b  # type: ignore[operator]  # a binary-op anchor: ~~~~~~~~~^~~


def two_on_one_line() -> None:
    def f(x):
        return x

    _ = f(1) + f(None)["k"]  # type: ignore[index]


def chained() -> None:
    try:
        carets()
    except TypeError as exc:
        raise RuntimeError("load failed") from exc


def context() -> None:
    try:
        {}["missing"]
    except KeyError:
        recurse(5)


def group() -> None:
    raise ExceptionGroup("several", [caught(carets), caught(chained), ExceptionGroup("inner", [caught(context)])])


CASES = {
    "recursion": lambda: recurse(50),
    "carets": carets,
    "two calls on one line": two_on_one_line,
    "chained": chained,
    "context": context,
    "group": group,
}


def memoized_text(exc: BaseException, **kwargs) -> str:
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True, **kwargs)
    memoize_frames(te)
    return "".join(te.format())


@pytest.fixture(autouse=True)
def empty_memo():
    clear_memo()
    yield
    clear_memo()


@pytest.mark.parametrize("name", sorted(CASES))
def test_memoized_text_is_tracebacks_own_cold_and_warm(name: str) -> None:
    exc = caught(CASES[name])
    expected = "".join(traceback.format_exception(exc))
    assert memoized_text(exc) == expected  # cold
    assert memoized_text(exc) == expected  # warm: every frame from the memo
    again = caught(CASES[name])  # a new exception from the same code
    assert memoized_text(again) == "".join(traceback.format_exception(again))


def test_a_deep_recursion_is_formatted_once_per_location() -> None:
    exc = caught(lambda: recurse(2000))
    assert memoized_text(exc) == "".join(traceback.format_exception(exc))
    assert len(frames._memo) < 10


def test_the_same_line_at_other_columns_is_not_confused() -> None:
    exc = caught(two_on_one_line)
    text = memoized_text(exc)
    assert text == "".join(traceback.format_exception(exc))
    if sys.version_info >= (3, 11):
        assert "^" in text  # the marker points at the failing call, not the other one


def with_a_local() -> None:
    rows_seen = 3
    raise ValueError(f"bad row {rows_seen}")


def test_frames_with_captured_locals_are_never_memoized() -> None:
    exc = caught(with_a_local)
    expected = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert "rows_seen = 3" in expected
    assert memoized_text(exc, capture_locals=True) == expected
    assert not any("rows_seen" in text for text in frames._memo.values())
    assert memoized_text(exc) == "".join(traceback.format_exception(exc))  # without locals: from the memo


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "MEMO_LIMIT", 3)
    exc = caught(group)
    assert memoized_text(exc) == "".join(traceback.format_exception(exc))
    assert len(frames._memo) <= 3


def test_memoize_frames_survives_a_cycle_and_leaves_frames_alone() -> None:
    a, b = ValueError("a"), KeyError("b")
    try:
        raise a
    except ValueError:
        pass
    a.__context__, b.__context__ = b, a  # a cycle traceback itself handles
    te = traceback.TracebackException(type(a), a, a.__traceback__)
    before = [(f.filename, f.lineno, f.name) for f in te.stack]
    memoize_frames(te)
    assert [(f.filename, f.lineno, f.name) for f in te.stack] == before
    assert "".join(te.format()) == "".join(traceback.format_exception(a))


def test_the_trace_builder_reuses_frames_per_location_with_the_default_classifier() -> None:
    from rundossier.core.trace import TraceHeader, build_trace

    header = TraceHeader(run_id="run_x", flow_id="f")
    first = build_trace(caught(chained), header)
    second = build_trace(caught(chained), header)
    assert first.chain == second.chain
    assert first.chain[0].frames[-1] is second.chain[0].frames[-1]  # remembered
    other = build_trace(caught(chained), header, in_app=lambda filename: False)  # a custom classifier: fresh
    assert not any(f.in_app for node in other.chain for f in node.frames)
    assert other.chain[0].frames[-1] is not first.chain[0].frames[-1]
