"""The live snapshot of a running step's log: how many spilled parts precede it, and the lines since.

While a step runs, its lines live in the worker's `StepLog`: the oldest went to storage as
`log.parts/000001.jsonl.gz`, `000002`, ...; the rest are buffered. A live snapshot is one gzip
member whose first JSONL line is a header and whose other lines are the buffered lines:

    {"rundossier_live": 1, "parts": 3, "ts": 1732233600.5}
    {"ts": ..., "stream": "stdout", "level": null, "message": "..."}
    ...

A reader takes parts 1..`parts` and then the snapshot's lines: no line twice and none missing,
even when more parts were spilled after the snapshot was taken (those lines are also in the
snapshot; the later parts are ignored until the next snapshot names them).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field

from rundossier.core.logs.jsonl import LogLine, decode_lines, gzip_bytes

LIVE_VERSION = 1
_HEADER_KEY = "rundossier_live"
MAX_HEADER = 4096


@dataclass(frozen=True)
class LiveSnapshot:
    """A decoded live snapshot: parts 1..`parts` come before `lines`; `ts` is when it was taken."""

    parts: int
    ts: float
    lines: list[LogLine] = field(default_factory=list)


def encode_live(parts: int, payload: bytes, ts: float) -> bytes:
    """The gzipped snapshot of `payload` (buffered JSONL bytes), preceded by `parts` spilled parts."""
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 0:
        raise ValueError(f"parts must be a non-negative int, got {parts!r}")
    head = json.dumps({_HEADER_KEY: LIVE_VERSION, "parts": parts, "ts": float(ts)}).encode("ascii") + b"\n"
    return gzip_bytes(head + payload)


def decode_live(data: bytes) -> LiveSnapshot:
    """The snapshot in `data`; ValueError when it is not one (corrupt log lines are skipped)."""
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"not a live log snapshot: {exc}") from None
    nl = raw.find(b"\n", 0, MAX_HEADER)
    if nl < 0:
        raise ValueError("not a live log snapshot: no header line")
    try:
        head = json.loads(raw[:nl])
    except ValueError:
        raise ValueError("not a live log snapshot: the header is not JSON") from None
    if not isinstance(head, dict) or head.get(_HEADER_KEY) != LIVE_VERSION:
        raise ValueError(f"not a live log snapshot of version {LIVE_VERSION}")
    parts, ts = head.get("parts"), head.get("ts")
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 0:
        raise ValueError("not a live log snapshot: bad part count")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise ValueError("not a live log snapshot: bad timestamp")
    return LiveSnapshot(parts, float(ts), list(decode_lines(raw[nl + 1 :])))


__all__ = ["LiveSnapshot", "encode_live", "decode_live", "LIVE_VERSION"]
