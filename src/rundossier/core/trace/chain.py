"""Walking an exception's chain: its causes, contexts and exception-group members (pure)."""

from __future__ import annotations

from collections.abc import Iterator


def exceptions_in(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception it links to (`__cause__`, `__context__`, group members), each
    once, outermost first; cycles end the walk. Suppressed contexts count: the exception did
    happen while handling them."""
    stack, seen = [error], set()
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        members = exc.exceptions if isinstance(exc, BaseExceptionGroup) else ()
        stack.extend(reversed(members))
        for linked in (exc.__context__, exc.__cause__):
            if linked is not None:
                stack.append(linked)


__all__ = ["exceptions_in"]
