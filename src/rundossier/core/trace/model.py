"""The trace document's frozen data model, and the UTF-8-safe text helpers the trace modules share.

A `TraceDoc` is what rundossier keeps of a failure: a header (run, flow, step, times), the
exception chain as `traceback` prints it (root cause first), the exact `traceback` text, and the
last log lines before the failure. Every string in a document built by `build_trace` encodes to
UTF-8 (`sanitize`), and cut strings carry a visible marker (`cut_middle`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Marker formats for what `bound()` (and `build_trace`'s string cap) dropped.
MARKER_FRAMES = "... {n} frames omitted ..."
MARKER_LOG_LINES = "... {n} log lines omitted ..."
MARKER_BYTES = "... {n} bytes omitted ..."
MARKER_EXCEPTIONS = "... {n} exceptions omitted ..."

#: Relation values of `ExceptionNode.relation`.
CAUSE = "cause"
CONTEXT = "context"


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame, innermost last; `repeat` counts identical consecutive frames folded in."""

    filename: str
    lineno: int | None
    name: str
    line: str
    in_app: bool
    repeat: int = 0


@dataclass(frozen=True, slots=True)
class ExceptionNode:
    """One exception of a chain; `relation` says how it leads to the next one in the chain.

    `relation` is "cause" (`raise ... from ...`), "context" (raised while handling) or None for
    the last (outermost) node. `group` holds, for an exception group, each sub-exception's own
    chain (root cause first). `omitted_exceptions` counts group members left out (by `bound()`, or
    because the group is nested deeper than traceback's max_group_depth); members are kept from
    both ends, the marker sits after the first `len(group) // 3`.
    """

    type: str
    message: str
    frames: tuple[Frame, ...]
    omitted_frames: int = 0
    notes: tuple[str, ...] = ()
    relation: str | None = None
    group: tuple[tuple[ExceptionNode, ...], ...] = ()
    omitted_exceptions: int = 0


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """Who failed where and when: the block printed above the traceback."""

    run_id: str
    flow_id: str
    step_id: str | None = None
    try_number: int | None = None
    orchestrator: str = "python"
    host: str | None = None
    started_at: str | None = None
    failed_at: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TraceDoc:
    """A failure's trace document: header, exception chain, traceback text and log tail."""

    header: TraceHeader
    error_type: str | None
    error_message: str | None
    chain: tuple[ExceptionNode, ...]
    traceback_text: str
    captured: bool
    reason: str | None = None
    log_tail: tuple[str, ...] = ()
    omitted_log_lines: int = 0
    truncated: bool = False

    def replace(self, **changes: Any) -> TraceDoc:
        """A copy with `changes` applied (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)


def head_count(kept: int) -> int:
    """How many of `kept` items sit before an omission marker (the rest come after it)."""
    return kept // 3


def utf8_len(s: str) -> int:
    """Byte length of `sanitize(s)` encoded as UTF-8 (O(1) for ASCII strings)."""
    if s.isascii():
        return len(s)
    return len(s.encode("utf-8", "backslashreplace"))


def sanitize(s: str) -> str:
    """`s` with lone surrogates turned into backslash escapes, so it always encodes to UTF-8."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def cut_middle(s: str, max_bytes: int, *, own_line: bool = False, nbytes: int | None = None) -> str:
    """`sanitize(s)`, cut in the middle to at most `max_bytes` UTF-8 bytes with a bytes marker.

    The marker (`MARKER_BYTES`, counting the bytes dropped) is inline between spaces, or on its
    own line with `own_line`. Work is proportional to `max_bytes` for ASCII input, plus one
    encoding pass otherwise, however long `s` is. `nbytes` may pass a known `utf8_len(s)`.
    When `max_bytes` has no room for a marker, the head is kept without one.
    """
    total = utf8_len(s) if nbytes is None else nbytes
    if total <= max_bytes:
        return sanitize(s)
    if max_bytes <= 0:
        return ""
    edge = "\n" if own_line else " "
    marker_len = len(MARKER_BYTES.format(n=total)) + 2
    keep = max_bytes - marker_len
    if keep < 8:
        return _head_bytes(s, max_bytes)
    head_len = keep // 2
    tail_len = keep - head_len
    head = _head_bytes(s, head_len)
    tail = _tail_bytes(s, tail_len)
    omitted = total - utf8_len(head) - utf8_len(tail)
    return head + edge + MARKER_BYTES.format(n=omitted) + edge + tail


def _head_bytes(s: str, n: int) -> str:
    """The longest sanitized prefix of `s` that is at most `n` UTF-8 bytes."""
    piece = s[:n]
    if piece.isascii():
        return piece
    return piece.encode("utf-8", "backslashreplace")[:n].decode("utf-8", "ignore")


def _tail_bytes(s: str, n: int) -> str:
    """The longest sanitized suffix of `s` that is at most `n` UTF-8 bytes."""
    if n <= 0:
        return ""
    piece = s[-n:]
    if piece.isascii():
        return piece
    return piece.encode("utf-8", "backslashreplace")[-n:].decode("utf-8", "ignore")


__all__ = [
    "Frame",
    "ExceptionNode",
    "TraceHeader",
    "TraceDoc",
    "CAUSE",
    "CONTEXT",
    "MARKER_FRAMES",
    "MARKER_LOG_LINES",
    "MARKER_BYTES",
    "MARKER_EXCEPTIONS",
    "head_count",
    "utf8_len",
    "sanitize",
    "cut_middle",
]
