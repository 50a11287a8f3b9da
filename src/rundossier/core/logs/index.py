"""Where a page of a stored step log starts: the small index kept beside `log.jsonl.gz` (pure).

A stored log is a chain of gzip members, each holding whole lines (the step log gzips its lines
in members of ~16 KiB as they arrive, see `record/steplog.py`); the chain is one valid `.gz`
file for `gunzip` and for a download. Members decompress on their own, so a reader that knows
where one starts can seek there and read on. The index lists such starting points: at a member
boundary at least every `SPAN` lines, how many lines come before it and its compressed byte
offset, plus the log's total lines and bytes.

To read lines `[first, first + count)` a reader seeks to the last point at or before `first`,
decompresses from there, skips the lines before `first` and stops after `count` lines: it reads
at most the bytes up to the first point after the page, whatever the log's size. Points sit on
member boundaries (never inside one) and at least `SPAN` lines apart, so a million-line log has
about a thousand points (a few tens of kB of JSON).

The index is a separate blob rather than a row column: it is written with the log, in the same
ordered batch (log first), deleted with it, and a log without one (recorded before the index
existed, or left in parts) is read by the old full scan. `LogIndex.size` lets a reader refuse an
index that does not describe the blob it sits beside.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass

#: a point at least every this many lines (a page is 500 lines: at most ~1,500 decoded per page)
SPAN = 1000
FORMAT = 1


@dataclass(frozen=True, slots=True)
class LogIndex:
    """`lines`/`size`: the log's lines and compressed bytes; `points`: (lines before, byte
    offset) of member starts, ascending, the first `(0, 0)`."""

    lines: int
    size: int
    points: tuple[tuple[int, int], ...]

    def span(self, first: int, count: int) -> tuple[int, int, int]:
        """`(skip, start, end)` for lines `[first, first + count)` (0-based): seek to byte `start`,
        skip `skip` lines, read `count`; no byte at or after `end` is needed."""
        if first < 0 or count < 0:
            raise ValueError(f"first and count must be 0 or more, got {first} and {count}")
        starts = [p[0] for p in self.points]
        i = max(bisect_right(starts, first) - 1, 0)
        before, start = self.points[i]
        j = bisect_right(starts, first + count - 1) if count else i + 1
        # the point after the one holding the page's last line, if any
        end = self.points[j][1] if j < len(self.points) else self.size
        return first - before, start, max(end, start)

    def to_json(self) -> bytes:
        """The index as compact JSON (what is stored beside the log)."""
        doc = {"format": FORMAT, "lines": self.lines, "size": self.size, "points": [list(p) for p in self.points]}
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> LogIndex:
        """Parse a stored index; ValueError (saying what is wrong) for anything else."""
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a log index of a known format")
        lines, size, raw = doc.get("lines"), doc.get("size"), doc.get("points")
        if not isinstance(lines, int) or not isinstance(size, int) or not _count(lines) or not _count(size):
            raise ValueError("a log index needs whole `lines` and `size`")
        if not isinstance(raw, list) or not raw:
            raise ValueError("a log index needs a non-empty `points` list")
        points: list[tuple[int, int]] = []
        for p in raw:
            if not isinstance(p, list) or len(p) != 2 or not _count(p[0]) or not _count(p[1]):
                raise ValueError(f"a point must be [lines before, byte offset], got {p!r}")
            if points and (p[0] <= points[-1][0] or p[1] <= points[-1][1]):
                raise ValueError("points must ascend")
            points.append((p[0], p[1]))
        if points[0] != (0, 0) or points[-1][0] > lines or points[-1][1] > size:
            raise ValueError("points must start at (0, 0) and stay inside the log")
        return cls(lines, size, tuple(points))


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


class IndexBuilder:
    """Builds a `LogIndex` from the members of a log as they are stored, in order."""

    __slots__ = ("lines", "size", "_points", "_since", "_span")

    def __init__(self, span: int = SPAN) -> None:
        if span < 1:
            raise ValueError(f"span must be at least 1, got {span}")
        self._span = span
        self._points: list[tuple[int, int]] = [(0, 0)]
        self._since = 0
        self.lines = 0
        self.size = 0

    def add(self, lines: int, size: int) -> None:
        """One gzip member (or several joined) of `lines` lines and `size` compressed bytes."""
        if self._since >= self._span and size:
            self._points.append((self.lines, self.size))
            self._since = 0
        self.lines += lines
        self.size += size
        self._since += lines

    def build(self) -> LogIndex:
        return LogIndex(self.lines, self.size, tuple(self._points))


__all__ = ["LogIndex", "IndexBuilder", "SPAN"]
