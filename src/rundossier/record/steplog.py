"""The bounded, thread-safe buffer of one step's log lines, spilled to storage in gzip parts.

A `StepLog` encodes each line to JSONL as it is written and buffers the bytes. When the buffer
reaches `chunk_bytes` it hands the oldest ~`chunk_bytes` of lines, gzipped, to
`spill(part_number, gz_bytes)` (parts 1, 2, 3...). `finish()` returns the gzip of what is left,
so `part 1 + part 2 + ... + finish()` is one multi-member gzip of the whole log, in order.

Lines are gzipped while they are still warm: every `PACK_BYTES` of new lines become one gzip
member (a `Packer` keeps them beside the raw lines). A part is whole members joined, and
`finish()` only gzips the last few lines: a failing step does not compress its whole log at the
worst moment, and nothing is compressed twice. (Concatenated members are one valid gzip, read in
order here and by `gzip` alike.) The raw lines stay until spilled: follow mode reads them.
(An open zlib stream per log was tried: its ~256 KiB of state per running step is cold by the
time the step fails, and the failure paid more than with members.)

Memory is bounded whatever happens: when there is no spill callback or it keeps failing, the
buffer holds at most `4 * chunk_bytes` and drops its OLDEST lines (counted in `dropped_lines`).
A failed spill is retried with the same part number after another 1/4, 1/2, 1, 2, 4, 8, then
every 16 chunks of new bytes: a blip recovers before anything is dropped, an outage costs neither
a gzip per line nor a gap in part numbers.

`write` never raises: a mask that raises or returns something else than a str withholds that
line's text, any other fault is counted in `internal_errors`. A masked log also remembers, per
stream, a private key left open by a line (`masking.KeyBlocks`): the key material on the lines
that follow is masked too, across parts, with no buffering. The mask runs outside the lock, the
spill callback inside it (parts are handed over in order, one at a time, on the writing thread);
the spill callback may itself write to this log (the lines land after the part being spilled).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice

from rundossier.core.logs.index import IndexBuilder, LogIndex
from rundossier.core.logs.jsonl import LogLine, encode_fields, format_many, gzip_bytes
from rundossier.core.masking import KeyBlocks

Spill = Callable[[int, bytes], None]

#: Text stored instead of a line whose mask raised or returned a non-str: never store unmasked text.
MASK_FAILED = "[rundossier: line withheld, the mask raised an error]"
_MIN_LINE_BYTES = 64
_MASK_WINDOW = 2  # mask/encode at most this many times max_line_bytes characters of a message
_MAX_BACKOFF_CHUNKS = 16
#: new lines are gzipped into one member as soon as they add up to this many bytes
PACK_BYTES = 16 * 1024


class Packer:
    """Gzip members of the oldest lines of a buffer, one per feed, made as lines arrive (not
    thread-safe: the StepLog's lock guards it). `members` are (member, lines, raw bytes);
    `lines`/`raw_bytes` is how much of the buffer they cover."""

    def __init__(self) -> None:
        self.members: deque[tuple[bytes, int, int]] = deque()
        self.lines = 0
        self.raw_bytes = 0

    def feed(self, lines: Iterable[bytes], n_lines: int, n_bytes: int) -> None:
        """Compress the next `n_lines` lines (`n_bytes` bytes) into one member."""
        if n_lines <= 0:
            return
        self.members.append((gzip_bytes(b"".join(lines)), n_lines, n_bytes))
        self.lines += n_lines
        self.raw_bytes += n_bytes

    def take(self, n: int) -> None:
        """Forget the first `n` members (their lines left the buffer)."""
        for _ in range(n):
            _, lines, raw = self.members.popleft()
            self.lines -= lines
            self.raw_bytes -= raw

    def clear(self) -> None:
        self.members.clear()
        self.lines = self.raw_bytes = 0


def _utf8_len(text: str, step: int = 1 << 20) -> int:
    """UTF-8 length of `text` (lone surrogates count 3), with bounded temporary memory."""
    return sum(len(text[i : i + step].encode("utf-8", "surrogatepass")) for i in range(0, len(text), step))


class StepLog:
    """The log lines of one step (one try of one task): buffered, bounded, spilled in parts."""

    def __init__(
        self,
        *,
        spill: Spill | None = None,
        chunk_bytes: int = 1 << 20,
        tail_lines: int = 50,
        mask: Callable[[str], str] | None = None,
        max_line_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
        if tail_lines < 0:
            raise ValueError(f"tail_lines must be 0 or more, got {tail_lines}")
        if max_line_bytes < _MIN_LINE_BYTES:
            raise ValueError(f"max_line_bytes must be at least {_MIN_LINE_BYTES}, got {max_line_bytes}")
        self._spill = spill
        self._chunk = chunk_bytes
        self._cap = 4 * chunk_bytes
        self._tail_lines = tail_lines
        self._mask = mask
        self._blocks = KeyBlocks() if mask is not None else None
        self._max_line = max_line_bytes
        self._clock = clock
        self._lock = threading.RLock()
        self._buf: deque[bytes] = deque()
        self._buf_bytes = 0
        # gzip of the oldest buffered lines; dropping lines (a degraded log) ends packing for good
        self._packer = Packer()
        self._packing = True
        self._tail: deque[tuple[float, str, str | None, str]] = deque(maxlen=tail_lines)
        self._counts: dict[str, int] = {"stdout": 0, "stderr": 0}
        self._total_bytes = 0
        self._parts = 0
        self._dropped = 0
        self._failures = 0  # consecutive spill failures
        self._backoff = 0  # bytes still to write before the next spill attempt
        self._spilling = False
        self._finished = False
        self._final: bytes | None = None
        self._index = IndexBuilder()  # the members stored so far (spilled parts, then the final one)
        self._first_ts: float | None = None
        self._last_ts: float | None = None
        self.spill_errors = 0
        self.mask_errors = 0
        self.internal_errors = 0

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        stream: str,
        message: str,
        level: str | None = None,
        ts: float | None = None,
        *,
        prefix: str = "",
        omitted: int = 0,
    ) -> None:
        """Record one line (callers split on newlines). Thread-safe; never raises.

        `prefix` (a logger's name) goes before the message unmasked and uncut. `omitted`: UTF-8
        bytes of this line the caller already dropped (they count in its omitted-bytes marker)."""
        if self._finished:
            return
        try:
            if ts is None:
                ts = self._clock()
            if type(message) is not str:
                message = str(message)
            message = self._prepare(stream, message, omitted)
            if prefix:
                message = prefix + message
            data = encode_fields(ts, stream, level, message)
            n = len(data)
            with self._lock:
                if self._finished:
                    return
                self._buf.append(data)
                self._buf_bytes += n
                self._total_bytes += n
                self._tail.append((ts, stream, level, message))
                self._counts[stream] = self._counts.get(stream, 0) + 1
                if self._first_ts is None:
                    self._first_ts = ts
                self._last_ts = ts
                if self._backoff > 0:
                    self._backoff -= n
                if self._spilling:
                    return
                if self._buf_bytes >= self._chunk:
                    self._spill_parts()
                if self._buf_bytes > self._cap:
                    self._drop_oldest()
                elif self._packing and self._buf_bytes - self._packer.raw_bytes >= PACK_BYTES:
                    self._pack()
        except Exception:
            self.internal_errors += 1

    def _prepare(self, stream: str, message: str, omitted: int = 0) -> str:
        """`message` masked, then cut to `max_line_bytes` UTF-8 bytes with a visible marker."""
        limit = self._max_line
        rest_bytes = omitted
        window = _MASK_WINDOW * limit
        if len(message) > window:  # bound the mask's and encoder's work on a huge message
            rest_bytes += _utf8_len(message[window:])
            message = message[:window]
        if self._mask is not None and self._blocks is not None:
            raw = message
            try:
                message = self._mask(message)
            except Exception:
                message = MASK_FAILED
            if type(message) is not str:
                message = MASK_FAILED
            message = self._blocks.line(stream, raw, message)
            if message is MASK_FAILED:
                self.mask_errors += 1
                return MASK_FAILED
        if not rest_bytes and len(message) * 4 <= limit:
            return message
        data = message.encode("utf-8", "surrogatepass")
        total = len(data) + rest_bytes
        if total <= limit and not rest_bytes:
            return message
        cut = min(max(limit - len(f" ... {total} bytes omitted"), 0), len(data))
        while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:  # not inside a character
            cut -= 1
        head = data[:cut].decode("utf-8", "surrogatepass")
        return f"{head} ... {total - cut} bytes omitted"

    def _spill_parts(self) -> None:
        """Hand full chunks to the spill callback, oldest first. Caller holds the lock."""
        if self._spill is None or self._backoff > 0:
            return
        self._spilling = True
        try:
            while self._buf_bytes >= self._chunk:
                members = take = size = 0
                stored: list[tuple[int, int]] = []  # (lines, bytes) of each member in the part
                try:
                    if self._packing:  # whole members, the rest of the buffer packed first
                        if self._packer.raw_bytes < self._buf_bytes:
                            self._pack()
                        pieces = []
                        for member, lines, raw in self._packer.members:
                            pieces.append(member)
                            stored.append((lines, len(member)))
                            members += 1
                            take += lines
                            size += raw
                            if size >= self._chunk:
                                break
                        part = b"".join(pieces)
                    else:
                        for item in self._buf:
                            take += 1
                            size += len(item)
                            if size >= self._chunk:
                                break
                        part = gzip_bytes(b"".join(islice(self._buf, take)))
                        stored.append((take, len(part)))
                    self._spill(self._parts + 1, part)
                except Exception:
                    self.spill_errors += 1
                    self._failures += 1
                    eighths = min(1 << self._failures, 8 * _MAX_BACKOFF_CHUNKS)
                    self._backoff = max(eighths * self._chunk // 8, 1)
                    return
                self._failures = 0
                self._parts += 1
                for lines, nbytes in stored:
                    self._index.add(lines, nbytes)
                for _ in range(take):
                    self._buf.popleft()
                self._buf_bytes -= size
                self._packer.take(members)
        finally:
            self._spilling = False

    def _pack(self) -> None:
        """Feed the lines not yet packed to the packer. Caller holds the lock."""
        packer = self._packer
        packer.feed(
            islice(self._buf, packer.lines, None), len(self._buf) - packer.lines, self._buf_bytes - packer.raw_bytes
        )

    def _drop_oldest(self) -> None:
        """Drop the oldest buffered lines until at most `4 * chunk_bytes` remain (ends packing:
        members can no longer stand for the lines that are left)."""
        if self._packing:
            self._packing = False
            self._packer.clear()
        while self._buf_bytes > self._cap and self._buf:
            self._buf_bytes -= len(self._buf.popleft())
            self._dropped += 1

    # -- reading ---------------------------------------------------------------------------

    def recent(self, n: int | None = None) -> list[LogLine]:
        """The last `n` (default `tail_lines`) lines as `LogLine`s, whether spilled or not."""
        return [LogLine(*item) for item in self._last(n)]

    def tail(self, n: int | None = None) -> list[str]:
        """The last `n` (default `tail_lines`) lines, formatted with `format_line`."""
        return format_many(self._last(n))

    def _last(self, n: int | None) -> list[tuple[float, str, str | None, str]]:
        if n is None:
            n = self._tail_lines
        if n <= 0:
            return []
        with self._lock:
            items = list(self._tail)
        return items[-n:]

    def snapshot(self) -> bytes:
        """Gzip of the buffered (not yet spilled) lines, without clearing them (follow mode)."""
        with self._lock:
            payload = b"".join(self._buf)
        return gzip_bytes(payload)

    def live_view(self) -> tuple[int, bytes]:
        """`(parts spilled, buffered JSONL bytes)`, taken together: what a live snapshot holds."""
        with self._lock:
            return self._parts, b"".join(self._buf)

    def finish(self) -> bytes:
        """Gzip of the remaining buffered lines; afterwards `write` is a no-op. Idempotent."""
        with self._lock:
            if self._final is None:
                self._finished = True
                if self._packing and self._packer.lines:
                    self._pack()
                    final = b"".join(member for member, _, _ in self._packer.members)
                    for member, lines, _ in self._packer.members:
                        self._index.add(lines, len(member))
                else:
                    final = gzip_bytes(b"".join(self._buf))
                    self._index.add(len(self._buf), len(final))
                self._buf.clear()
                self._packer.clear()
                self._buf_bytes = 0
                self._final = final
            return self._final

    def index(self) -> LogIndex:
        """Where each ~1,000 lines start in `part 1 + part 2 + ... + finish()` (call after
        `finish`): the index stored beside the joined log, so a page is read without the rest."""
        with self._lock:
            return self._index.build()

    # -- accounting ------------------------------------------------------------------------

    @property
    def masked(self) -> bool:
        """True when every line was masked as it was written (the log has a mask)."""
        return self._mask is not None

    @property
    def counts(self) -> dict[str, int]:
        """Lines written per stream (including dropped ones), e.g. `{"stdout": 3, "stderr": 7}`."""
        with self._lock:
            return dict(self._counts)

    @property
    def first_ts(self) -> float | None:
        """When the first line was written (unix seconds), or None: the step's first output."""
        return self._first_ts

    @property
    def last_ts(self) -> float | None:
        """When the latest line was written (unix seconds), or None."""
        return self._last_ts

    @property
    def total_bytes(self) -> int:
        """Uncompressed JSONL bytes written so far (including dropped lines)."""
        return self._total_bytes

    @property
    def buffered_bytes(self) -> int:
        """Uncompressed JSONL bytes held in memory now (not yet spilled or finished)."""
        return self._buf_bytes

    @property
    def parts_spilled(self) -> int:
        """How many parts the spill callback accepted."""
        return self._parts

    @property
    def dropped_lines(self) -> int:
        """Lines dropped (oldest first) because the buffer hit its cap with no working spill."""
        return self._dropped

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def max_line_bytes(self) -> int:
        return self._max_line


__all__ = ["StepLog", "Spill", "MASK_FAILED"]
