"""Blob keys: turn run id parts into safe, injective, `/`-separated relative keys (pure, no I/O).

A key looks like `airflow/my%3Adag/run_01J.../extract.part.1.trace.txt.gz`:

    {orchestrator}/{flow_id}/{run_id}/{step_id | "_run"}.{try_number | 0}.{name}

One folder per run, and a step try's blobs side by side in it: a run costs its files and one
folder, so writing a failure creates no folders once the run has one, and deleting a run frees
one folder block instead of three (on a disk with online discard every freed block is a discard).
The parse is unique from the right: `name` is one of a fixed set, the try is digits only, the rest
is the step segment (which may itself contain dots: `group.task.2.log.jsonl.gz` is step
`group.task`, try 2). Log parts of a long log sit in one folder per step try:
`{step}.{try}.log.parts/000001.jsonl.gz`.

Every id part goes through `encode_segment`:

* `[A-Za-z0-9_-]` and a non-leading `.` are kept; every other character is percent-encoded as
  its UTF-8 bytes (`%3A`, `%2B`, `%20`, `%2F`, `%25`, ...), upper-case hex. So a segment never
  contains `/`, `\\`, control characters, glob characters, `~`, or a leading `.` (hence never
  `.`, `..` or a hidden name), and it is the same on every filesystem and object store.
* The empty string becomes `%empty`: the encoder never writes `%` followed by anything but two
  upper-case hex digits, so no other value can map to it.
* An encoded segment longer than 180 bytes becomes its first 150 bytes (cut before a partial
  `%XX`), `~`, and the first 16 hex digits of the SHA-256 of the original value. `~` only ever
  appears in hashed segments, so hashed and plain segments cannot collide; two hashed values
  collide only if their 64-bit hashes do. Hashed segments cannot be decoded.

`encode_segment` is injective: plain segments decode back exactly (`decode_segment`).
"""

from __future__ import annotations

import functools
import hashlib
import re

from rundossier.core.ids import RUN_STEP

MAX_SEGMENT_BYTES = 180
HASHED_PREFIX_BYTES = 150
HASH_HEX_DIGITS = 16
EMPTY_SEGMENT = "%empty"
HASH_MARK = "~"

# the step segment of run-level blobs (no step) is RUN_STEP; a step literally named "_run" is "%5Frun"
#: the try segment when there is no try number
NO_TRY = "0"

TRACE_TEXT = "trace.txt.gz"
TRACE_JSON = "trace.json.gz"
LOG = "log.jsonl.gz"
#: where each ~1,000 lines of `LOG` start (core/logs/index.py): a log page reads only its members
LOG_INDEX = "log.index.json"
#: a running step's latest log snapshot (follow mode); deleted when the step ends
LOG_LIVE = "log.live.jsonl.gz"
LOG_PARTS_DIR = "log.parts"
MAX_LOG_PART = 999_999
BLOB_NAMES = (TRACE_TEXT, TRACE_JSON, LOG, LOG_INDEX, LOG_LIVE)

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_LOG_PART_RE = re.compile(r"^log\.parts/[0-9]{6}\.jsonl\.gz$")
_PLAIN_RE = re.compile(r"^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*$")
_ESCAPE_RE = re.compile(r"%([0-9A-F]{2})")


def encode_segment(value: str) -> str:
    """Encode one id part as a single safe path segment (see the module docstring for the rules)."""
    if not isinstance(value, str):
        raise TypeError(f"a path segment must be a str, got {type(value).__name__}")
    return _encode_cached(value)


@functools.lru_cache(maxsize=4096)
def _encode_cached(value: str) -> str:
    # the same flow, run and step ids are encoded for every blob of a run: pure, so cache it
    if value == "":
        return EMPTY_SEGMENT
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in _SAFE or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    encoded = "".join(out)
    if len(encoded) <= MAX_SEGMENT_BYTES:
        return encoded
    prefix = encoded[:HASHED_PREFIX_BYTES]
    cut = prefix.rfind("%", len(prefix) - 2)
    if cut != -1:  # do not end inside a %XX escape
        prefix = prefix[:cut]
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}{HASH_MARK}{digest[:HASH_HEX_DIGITS]}"


def decode_segment(segment: str) -> str:
    """The value `encode_segment` was given. ValueError for hashed or malformed segments."""
    if segment == EMPTY_SEGMENT:
        return ""
    if HASH_MARK in segment:
        raise ValueError(f"segment {segment!r} is hashed (its value was too long); cannot decode")
    if not _PLAIN_RE.match(segment):
        raise ValueError(f"{segment!r} is not an encoded path segment")
    raw = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), segment)
    try:
        value = raw.encode("latin-1").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ValueError(f"segment {segment!r} does not encode valid UTF-8") from None
    return value  # lenient about needless escapes: "%5Frun" (see blob_key) decodes to "_run"


def log_part_name(n: int) -> str:
    """The blob name of the n-th log part: `log.parts/000042.jsonl.gz` (sorts by n)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_LOG_PART:
        raise ValueError(f"log part number must be an int in 0..{MAX_LOG_PART}, got {n!r}")
    return f"{LOG_PARTS_DIR}/{n:06d}.jsonl.gz"


def is_blob_name(name: str) -> bool:
    """True if `name` is one of the blob names a key may end with."""
    return name in BLOB_NAMES or bool(isinstance(name, str) and _LOG_PART_RE.match(name))


def run_prefix(orchestrator: str, flow_id: str, run_id: str) -> str:
    """The key prefix (no trailing slash) under which all of a run's blobs live: the run's folder."""
    return "/".join(encode_segment(part) for part in (orchestrator, flow_id, run_id))


def step_prefix(orchestrator: str, flow_id: str, run_id: str, step_id: str | None, try_number: int | None) -> str:
    """`{run_prefix}/{step}.{try}`: how every key of one step try starts (a name prefix, not a folder).

    `step_id=None` means run-level blobs (segment `_run`); `try_number=None` is written as `0`,
    the same as try 0."""
    return f"{run_prefix(orchestrator, flow_id, run_id)}/{_step_segment(step_id)}.{_try_segment(try_number)}"


def blob_key(
    orchestrator: str,
    flow_id: str,
    run_id: str,
    step_id: str | None,
    try_number: int | None,
    name: str,
) -> str:
    """The key of one blob: `{run_prefix}/{step or _run}.{try or 0}.{name}` (see `step_prefix`).

    `name` must be TRACE_TEXT, TRACE_JSON, LOG, LOG_LIVE or `log_part_name(n)`.
    """
    _check_name(name)
    return f"{step_prefix(orchestrator, flow_id, run_id, step_id, try_number)}.{name}"


def log_parts_prefix(orchestrator: str, flow_id: str, run_id: str, step_id: str | None, try_number: int | None) -> str:
    """The folder key (no trailing slash) holding a step try's log parts (`log_part_name(n)`)."""
    return f"{step_prefix(orchestrator, flow_id, run_id, step_id, try_number)}.{LOG_PARTS_DIR}"


def structured_trace(text: str) -> str | None:
    """The key or URI of the structured trace stored beside a trace text (None if `text` is not one)."""
    if not isinstance(text, str) or not text.endswith(TRACE_TEXT):
        return None
    head = text[: -len(TRACE_TEXT)]
    if not head.endswith(("/", ".")):  # `.../step.1.trace.txt.gz` (or a hand-made `.../trace.txt.gz`)
        return None
    return head + TRACE_JSON


def log_index(log: str) -> str | None:
    """The key or URI of the index stored beside a step log (None if `log` is not one)."""
    if not isinstance(log, str) or not log.endswith(LOG) or not log[: -len(LOG)].endswith(("/", ".")):
        return None
    return log[: -len(LOG)] + LOG_INDEX


def row_step(step_id: str) -> str | None:
    """The `step_id` to build a step row's keys with: None for the run-level row (`ids.RUN_STEP`)."""
    return None if step_id == RUN_STEP else step_id


def _check_name(name: str) -> None:
    if not is_blob_name(name):
        raise ValueError(f"unknown blob name {name!r}; use one of {', '.join(BLOB_NAMES)} or log_part_name(n)")


def _step_segment(step_id: str | None) -> str:
    if step_id is None:
        return RUN_STEP
    if step_id == RUN_STEP:
        return "%5Frun"  # keep a step literally named "_run" apart from run-level blobs
    return encode_segment(step_id)


def _try_segment(try_number: int | None) -> str:
    if try_number is None:
        return NO_TRY
    if isinstance(try_number, bool) or not isinstance(try_number, int) or try_number < 0:
        raise ValueError(f"try_number must be a non-negative int or None, got {try_number!r}")
    return str(try_number)


__all__ = [
    "encode_segment",
    "decode_segment",
    "blob_key",
    "run_prefix",
    "step_prefix",
    "log_parts_prefix",
    "structured_trace",
    "log_index",
    "row_step",
    "log_part_name",
    "is_blob_name",
    "TRACE_TEXT",
    "TRACE_JSON",
    "LOG",
    "LOG_INDEX",
    "LOG_LIVE",
    "LOG_PARTS_DIR",
    "BLOB_NAMES",
    "EMPTY_SEGMENT",
    "MAX_SEGMENT_BYTES",
]
