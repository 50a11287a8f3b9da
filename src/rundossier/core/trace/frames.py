"""Format traceback frames once per code location (pure; a bounded in-memory memo).

`traceback` formats every frame of a stack, including the repeats of a deep recursion it then
folds into "[Previous line repeated N more times]", and each frame costs a parse of its source
line for the `~~~^^^` markers. The printed frame depends only on the frame's location and
source (file, line numbers, columns, function name, the source line itself) and on nothing
else when no locals are captured, so the text is remembered per location: a recursion pays
for one frame, and a failure that comes back (a retry, the same bug in every mapped task) pays
for none. The output is exactly what `traceback` prints.

`memoize_frames(te)` switches a `TracebackException` (its causes, contexts and group members
included) to the memoised formatter; the frames themselves are untouched. `remember(key, build)`
keeps other per-location results the same way (the trace builder's `Frame`s).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: at most this many results are remembered (then the memo starts over)
MEMO_LIMIT = 4096

_memo: dict[Any, Any] = {}
_MISSING = object()


def _key(fs: Any, kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """Everything `format_frame_summary` reads, or None when a frame must be formatted afresh."""
    if getattr(fs, "locals", None):
        return None
    source = getattr(fs, "_original_line", _MISSING)  # Python 3.11-3.12
    if source is _MISSING:
        source = getattr(fs, "_original_lines", _MISSING)  # Python 3.13+
    if source is _MISSING or not isinstance(source, str | type(None)):
        return None
    return (
        "format",
        fs.filename,
        fs.lineno,
        getattr(fs, "end_lineno", None),
        getattr(fs, "colno", None),
        getattr(fs, "end_colno", None),
        fs.name,
        source,
        tuple(sorted(kwargs.items())) if kwargs else (),
    )


class _MemoStack(traceback.StackSummary):
    """A StackSummary whose frames are formatted once per code location."""

    def format_frame_summary(self, frame_summary: Any, **kwargs: Any) -> Any:
        try:
            key = _key(frame_summary, kwargs)
        except Exception:  # noqa: BLE001 - an odd frame: format it the normal way
            key = None
        if key is None:
            return super().format_frame_summary(frame_summary, **kwargs)
        fmt = super().format_frame_summary
        return remember(key, lambda: fmt(frame_summary, **kwargs))


def memoize_frames(te: traceback.TracebackException) -> None:
    """Format the stacks of `te` and of every exception chained or grouped in it through the memo."""
    seen: set[int] = set()
    todo = [te]
    while todo:
        t = todo.pop()
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        stack = getattr(t, "stack", None)
        if type(stack) is traceback.StackSummary:
            stack.__class__ = _MemoStack
        todo.append(getattr(t, "__cause__", None))
        todo.append(getattr(t, "__context__", None))
        todo.extend(getattr(t, "exceptions", None) or ())


def remember(key: Any, build: Callable[[], T]) -> T:
    """`build()`, computed once per `key` (a hashable description of everything it depends on)."""
    hit = _memo.get(key, _MISSING)
    if hit is _MISSING:
        hit = build()
        if len(_memo) >= MEMO_LIMIT:
            _memo.clear()
        _memo[key] = hit
    return hit  # type: ignore[no-any-return]


def clear_memo() -> None:
    """Forget everything (the next failure is formatted as if it were the first)."""
    _memo.clear()


__all__ = ["memoize_frames", "remember", "clear_memo", "MEMO_LIMIT"]
