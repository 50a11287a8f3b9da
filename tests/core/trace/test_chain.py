"""The one exception-chain walk: what Python prints, and everything an exception links to."""

from __future__ import annotations

from rundossier.core.trace.chain import exceptions_in, group_members, printed_chain
from rundossier.core.trace.model import CAUSE, CONTEXT
from tests.core.trace.helpers import caught


def _cause() -> None:
    try:
        raise ConnectionError("timeout")
    except ConnectionError as exc:
        raise RuntimeError("load failed") from exc


def _context() -> None:
    try:
        {}["k"]
    except KeyError:
        raise ValueError("while handling")  # noqa: B904 - a context, on purpose


def _suppressed() -> None:
    try:
        {}["k"]
    except KeyError:
        raise ValueError("hidden") from None


def _cause_and_context() -> None:
    try:
        {}["k"]
    except KeyError:
        try:
            raise ConnectionError("timeout")
        except ConnectionError as inner:
            raise RuntimeError("load failed") from inner


def kinds(links: list[tuple[BaseException, str | None]]) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, relation) for e, relation in links]


def test_a_cause_then_a_context_outermost_first() -> None:
    assert kinds(printed_chain(caught(_cause))) == [("RuntimeError", None), ("ConnectionError", CAUSE)]
    assert kinds(printed_chain(caught(_context))) == [("ValueError", None), ("KeyError", CONTEXT)]


def test_a_suppressed_context_is_not_printed_but_is_in_the_exceptions() -> None:
    exc = caught(_suppressed)
    assert kinds(printed_chain(exc)) == [("ValueError", None)]
    assert [type(e).__name__ for e in exceptions_in(exc)] == ["ValueError", "KeyError"]


def test_a_cause_hides_the_context_in_print_only() -> None:
    exc = caught(_cause_and_context)
    assert kinds(printed_chain(exc)) == [("RuntimeError", None), ("ConnectionError", CAUSE), ("KeyError", CONTEXT)]
    assert sorted(type(e).__name__ for e in exceptions_in(exc)) == ["ConnectionError", "KeyError", "RuntimeError"]


def test_cycles_end_the_walks() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert [str(e) for e, _ in printed_chain(a)] == ["a", "b"]
    assert [str(e) for e in exceptions_in(a)] == ["a", "b"]


def test_a_shared_seen_set_ends_a_walk_at_what_another_walk_met() -> None:
    root = ValueError("root")
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__ = b.__cause__ = root
    seen: set[int] = set()
    assert len(printed_chain(a, seen)) == 2
    assert [str(e) for e, _ in printed_chain(b, seen)] == ["b"]


def test_group_members_in_order() -> None:
    first, second = ValueError("1"), TypeError("2")
    group = ExceptionGroup("g", [first, second])
    assert group_members(group) == (first, second)
    assert group_members(first) == ()
    assert list(exceptions_in(group)) == [group, first, second]
