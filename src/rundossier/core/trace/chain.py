"""The one walk of an exception's chain: causes, contexts and exception-group members (pure).

Python prints an exception after the one it was raised from (`__cause__`, `raise ... from ...`)
or, failing that, the one it was raised while handling (`__context__`, unless
`__suppress_context__` hides it: `from None`, or a cause). `printed_chain` follows exactly those
links; `exceptions_in` follows every link, hidden contexts and group members included. Both end
at an exception they have already met, so a cycle ends the walk.

They walk live exceptions and `traceback.TracebackException`s alike (the same attributes; a
TracebackException built with `compact=True` keeps only the context it prints).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import TypeVar

from rundossier.core.trace.model import CAUSE, CONTEXT

#: a live exception, or `traceback`'s snapshot of one
Chained = TypeVar("Chained", BaseException, traceback.TracebackException)


def printed_chain(error: Chained, seen: set[int] | None = None) -> list[tuple[Chained, str | None]]:
    """`error` and the exceptions Python prints before it, outermost first, each with how it leads
    to the one before it in the list: CAUSE (it is that one's `__cause__`) or CONTEXT (its shown
    `__context__`); None for `error` itself.

    `seen` (ids) is shared by several walks over one tree (group members): an exception already
    in it ends the walk, and every exception walked is added to it.
    """
    seen = set() if seen is None else seen
    out: list[tuple[Chained, str | None]] = []
    exc: Chained | None = error
    relation: str | None = None
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append((exc, relation))
        if exc.__cause__ is not None:
            exc, relation = exc.__cause__, CAUSE
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, relation = exc.__context__, CONTEXT
        else:
            exc = None
    return out


def group_members(error: Chained) -> tuple[Chained, ...]:
    """The members of an exception group, in order; () for any other exception."""
    if isinstance(error, traceback.TracebackException):
        return tuple(error.exceptions or ())
    return tuple(error.exceptions) if isinstance(error, BaseExceptionGroup) else ()


def exceptions_in(error: Chained) -> Iterator[Chained]:
    """`error` and every exception it links to (`__cause__`, `__context__`, group members), each
    once, outermost first; cycles end the walk. Suppressed contexts count: the exception did
    happen while handling them."""
    stack: list[Chained] = [error]
    seen: set[int] = set()
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        stack.extend(reversed(group_members(exc)))
        for linked in (exc.__context__, exc.__cause__):
            if linked is not None:
                stack.append(linked)


__all__ = ["printed_chain", "group_members", "exceptions_in"]
