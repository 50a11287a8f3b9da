"""Run ids: `run_` + a ULID (48-bit millisecond time + 80 random bits, Crockford base32).

Ids sort by creation time as plain strings, so the store pages newest-first on the primary key.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
PREFIX = "run_"
RUN_ID_RE = re.compile(r"^run_[0-9A-HJKMNP-TV-Z]{26}$")
#: the step id of what happens to a run as a whole (a failure no step owns), and its blob folder
RUN_STEP = "_run"

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id(now_ms: int | None = None) -> str:
    """A new, unique, time-sortable run id. Monotonic within one process."""
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    return PREFIX + _encode(ms, 10) + _encode(rand, 16)


def new_uid() -> str:
    """A unique, time-sortable id for a row written from several places (an event): a run id's ULID."""
    return new_run_id()[len(PREFIX) :]


def run_id_at(ts: datetime) -> str:
    """A run id for a run created at `ts` (imports, backfills, examples): not monotonic, random bits."""
    ms = max(int(ts.timestamp() * 1000), 0)
    return PREFIX + _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def is_run_id(value: str) -> bool:
    """True if `value` has the exact shape of a run id (safe to use in paths and headers)."""
    return bool(RUN_ID_RE.match(value))


def run_id_time(run_id: str) -> datetime:
    """The creation time encoded in a run id."""
    if not is_run_id(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    ms = 0
    for c in run_id[len(PREFIX) : len(PREFIX) + 10]:
        ms = ms * 32 + _DECODE[c]
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def run_id_floor(ts: datetime) -> str:
    """The smallest run id that could have been created at or after `ts`."""
    ms = int(ts.timestamp() * 1000)
    return PREFIX + _encode(max(ms, 0), 10) + "0" * 16


__all__ = ["new_run_id", "new_uid", "run_id_at", "is_run_id", "run_id_time", "run_id_floor", "PREFIX", "RUN_STEP"]
