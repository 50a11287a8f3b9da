"""Printed frames, remembered per code location: the one memo on the failure path (pure).

Why it exists: formatting a frame is most of what a failure costs (`traceback` parses the
source line of every frame for its `~~~^^^` markers), and without it recording a failure
misses its target (<= 1.5x `traceback.format_exception` + one write, benchmarks/record_failure.py).

`traceback.StackSummary.format_frame_summary` is the documented hook for formatting one frame;
`RememberedStack` overrides it. A frame's text depends only on its public fields (file, line
numbers, columns, function name, source line) when no locals are captured, so that is the key:
a recursion is formatted once, and a failure that comes back (a retry, the same bug in every
mapped task) costs no formatting at all. The text is exactly what `traceback` prints.
"""

from __future__ import annotations

import traceback

from rundossier.core.trace.chain import exceptions_in

#: at most this many printed frames are remembered (then the memo starts over)
MEMO_LIMIT = 4096

_printed: dict[tuple[object, ...], str] = {}


class RememberedStack(traceback.StackSummary):
    """A StackSummary whose frames are formatted once per code location."""

    def format_frame_summary(self, frame_summary: traceback.FrameSummary, **kwargs: object) -> str:
        fs = frame_summary
        if fs.locals:
            return super().format_frame_summary(fs, **kwargs)
        key = (fs.filename, fs.lineno, fs.end_lineno, fs.colno, fs.end_colno, fs.name, fs.line, *sorted(kwargs.items()))
        text = _printed.get(key)
        if text is None:
            text = super().format_frame_summary(fs, **kwargs)
            if len(_printed) >= MEMO_LIMIT:
                _printed.clear()
            _printed[key] = text
        return text


def remember_frames(te: traceback.TracebackException) -> None:
    """Print the frames of `te` and of every exception chained or grouped in it through the memo."""
    for t in exceptions_in(te):
        t.stack = RememberedStack(t.stack)


def forget_frames() -> None:
    """Empty the memo (the next failure is formatted as if it were the first)."""
    _printed.clear()


__all__ = ["RememberedStack", "remember_frames", "forget_frames", "MEMO_LIMIT"]
