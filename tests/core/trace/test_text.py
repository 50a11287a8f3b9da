"""The trace text is exactly what `traceback` prints, for every shape of failure, every time."""

from __future__ import annotations

import traceback

import pytest

from rundossier.core.trace import TraceHeader, build_trace, frametext
from tests.core.trace.helpers import caught

HEADER = TraceHeader(run_id="run_x", flow_id="f")


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


def text_of(exc: BaseException) -> str:
    return build_trace(exc, HEADER).traceback_text


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_is_tracebacks_own_first_and_again(name: str) -> None:
    exc = caught(CASES[name])
    expected = "".join(traceback.format_exception(exc))
    assert text_of(exc) == expected
    assert text_of(exc) == expected  # the same exception recorded again
    again = caught(CASES[name])  # a new exception from the same code
    assert text_of(again) == "".join(traceback.format_exception(again))


def test_a_deep_recursion_folds_into_one_frame() -> None:
    exc = caught(lambda: recurse(2000))
    doc = build_trace(exc, HEADER)
    assert doc.traceback_text == "".join(traceback.format_exception(exc))
    folded = [f for f in doc.chain[-1].frames if f.name == "recurse"]
    assert len(folded) == 1 and folded[0].repeat > 500  # (the recursion limit stops it first)


def test_the_same_line_at_other_columns_is_not_confused() -> None:
    exc = caught(two_on_one_line)
    text = text_of(exc)
    assert text == "".join(traceback.format_exception(exc))
    assert "^" in text  # the marker points at the failing call, not the other one


def test_a_context_cycle_is_printed_once() -> None:
    a, b = ValueError("a"), KeyError("b")
    try:
        raise a
    except ValueError:
        pass
    a.__context__, b.__context__ = b, a  # a cycle traceback itself handles
    doc = build_trace(a, HEADER)
    assert doc.traceback_text == "".join(traceback.format_exception(a))
    assert [n.type for n in doc.chain] == ["KeyError", "ValueError"]


def test_frames_keep_their_source_lines_with_any_classifier() -> None:
    first = build_trace(caught(chained), HEADER)
    second = build_trace(caught(chained), HEADER)
    assert first.chain == second.chain
    assert first.chain[0].frames[-1].line.startswith('_ = a["k"][0] + b  # type: ignore[operator]')
    other = build_trace(caught(chained), HEADER, in_app=lambda filename: False)
    assert not any(f.in_app for node in other.chain for f in node.frames)
    assert [f.line for f in other.chain[0].frames] == [f.line for f in first.chain[0].frames]


# -- the printed-frame memo (core/trace/frametext) ---------------------------------------------


def remembered_text(exc: BaseException, **kwargs: bool) -> str:
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True, **kwargs)
    frametext.remember_frames(te)
    return "".join(te.format())


@pytest.fixture
def empty_memo():
    frametext.forget_frames()
    yield
    frametext.forget_frames()


@pytest.mark.parametrize("name", sorted(CASES))
def test_remembered_frames_print_tracebacks_own_text_cold_and_warm(name: str, empty_memo: None) -> None:
    exc = caught(CASES[name])
    expected = "".join(traceback.format_exception(exc))
    assert remembered_text(exc) == expected  # cold
    assert remembered_text(exc) == expected  # warm: every frame from the memo
    again = caught(CASES[name])
    assert remembered_text(again) == "".join(traceback.format_exception(again))


def test_a_deep_recursion_is_printed_once_per_location(empty_memo: None) -> None:
    exc = caught(lambda: recurse(2000))
    assert remembered_text(exc) == "".join(traceback.format_exception(exc))
    assert len(frametext._printed) < 10


def with_a_local() -> None:
    rows_seen = 3
    raise ValueError(f"bad row {rows_seen}")


def test_frames_with_captured_locals_are_never_remembered(empty_memo: None) -> None:
    exc = caught(with_a_local)
    expected = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert "rows_seen = 3" in expected
    assert remembered_text(exc, capture_locals=True) == expected
    assert not any("rows_seen" in text for text in frametext._printed.values())
    assert remembered_text(exc) == "".join(traceback.format_exception(exc))


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch, empty_memo: None) -> None:
    monkeypatch.setattr(frametext, "MEMO_LIMIT", 3)
    exc = caught(group)
    assert remembered_text(exc) == "".join(traceback.format_exception(exc))
    assert len(frametext._printed) <= 3


def test_remembering_survives_a_cycle_and_leaves_frames_alone(empty_memo: None) -> None:
    a, b = ValueError("a"), KeyError("b")
    try:
        raise a
    except ValueError:
        pass
    a.__context__, b.__context__ = b, a
    te = traceback.TracebackException(type(a), a, a.__traceback__)
    before = [(f.filename, f.lineno, f.name) for f in te.stack]
    frametext.remember_frames(te)
    assert [(f.filename, f.lineno, f.name) for f in te.stack] == before
    assert "".join(te.format()) == "".join(traceback.format_exception(a))
