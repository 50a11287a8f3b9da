"""Tests of StepLog: counts, tail, spilling in parts, bounded memory, truncation, masking."""

from __future__ import annotations

import gzip
import threading

import pytest

from rundossier.core.logs import decode_lines
from rundossier.core.logs.jsonl import LogLine, encode_fields, format_line
from rundossier.record.steplog import MASK_FAILED, StepLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class Parts:
    """A spill callback that keeps the parts (or only their sizes) and checks their numbers."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.numbers: list[int] = []
        self.blobs: list[bytes] = []
        self.sizes: list[int] = []

    def __call__(self, number: int, data: bytes) -> None:
        self.numbers.append(number)
        self.sizes.append(len(data))
        if self.keep:
            self.blobs.append(data)


def all_lines(parts: Parts, log: StepLog) -> list[LogLine]:
    return list(decode_lines(b"".join(parts.blobs) + log.finish()))


@pytest.mark.parametrize(("n_out", "n_err"), [(0, 0), (3, 7), (1, 0), (0, 5), (100, 1)])
def test_counts_per_stream(n_out, n_err):
    log = StepLog()
    for i in range(max(n_out, n_err)):
        if i < n_out:
            log.write("stdout", f"o{i}")
        if i < n_err:
            log.write("stderr", f"e{i}", "INFO")
    assert log.counts == {"stdout": n_out, "stderr": n_err}
    lines = list(decode_lines(log.finish()))
    assert sum(x.stream == "stdout" for x in lines) == n_out
    assert sum(x.stream == "stderr" and x.level == "INFO" for x in lines) == n_err


def test_counts_is_a_copy():
    log = StepLog()
    log.counts["stdout"] = 99
    assert log.counts == {"stdout": 0, "stderr": 0}


def test_total_bytes_is_the_uncompressed_jsonl_size():
    clock = Clock()
    log = StepLog(clock=clock)
    log.write("stdout", "a")
    log.write("stderr", "bb", "WARNING", ts=5.0)
    data = gzip.decompress(log.finish())
    assert log.total_bytes == len(data)
    assert data.endswith(encode_fields(5.0, "stderr", "WARNING", "bb"))


def test_clock_is_used_unless_ts_is_given():
    log = StepLog(clock=lambda: 42.5)
    log.write("stdout", "a")
    log.write("stdout", "b", ts=7.0)
    assert [x.ts for x in decode_lines(log.finish())] == [42.5, 7.0]


@pytest.mark.parametrize("n", [None, 0, 1, 5, 50, 500])
def test_tail_keeps_the_last_n(n):
    log = StepLog(tail_lines=50, clock=Clock())
    for i in range(200):
        log.write("stdout", f"line {i}")
    expected = [f"line {i}" for i in range(200)][-(50 if n is None else min(n, 50)) :]
    if n == 0:
        expected = []
    got = log.tail(n)
    assert [t.rsplit(" ", 2)[-2] + " " + t.rsplit(" ", 1)[-1] for t in got] == expected
    assert got == [format_line(x) for x in log.recent(n)]


def test_tail_after_spills_and_after_finish():
    parts = Parts()
    log = StepLog(spill=parts, chunk_bytes=1024, tail_lines=5, clock=Clock())
    for i in range(1000):
        log.write("stderr", f"message number {i}", "INFO")
    assert log.parts_spilled > 10
    assert [x.message for x in log.recent()] == [f"message number {i}" for i in range(995, 1000)]
    log.finish()
    assert log.tail(2)[-1].endswith("stderr INFO message number 999")


@pytest.mark.parametrize("chunk", [100, 1024, 10_000])
def test_spill_part_numbers_increase_and_parts_are_bounded(chunk):
    parts = Parts()
    log = StepLog(spill=parts, chunk_bytes=chunk, clock=Clock())
    for i in range(3000):
        log.write("stdout" if i % 3 else "stderr", f"line {i} " + "z" * (i % 50))
        assert log.buffered_bytes < chunk + 200
    assert parts.numbers == list(range(1, len(parts.numbers) + 1))
    assert log.parts_spilled == len(parts.numbers) > 1
    line_max = 200
    for blob in parts.blobs:
        size = len(gzip.decompress(blob))
        assert chunk <= size < chunk + line_max


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_parts_then_finish_is_the_whole_log_in_order(chunk):
    parts = Parts()
    log = StepLog(spill=parts, chunk_bytes=chunk, clock=Clock())
    written = []
    for i in range(2000):
        stream, level = ("stderr", "INFO") if i % 2 else ("stdout", None)
        log.write(stream, f"msg {i} ✓", level)
        written.append((stream, level, f"msg {i} ✓"))
    whole = b"".join(parts.blobs) + log.finish()
    lines = list(decode_lines(gzip.decompress(whole)))
    assert [(x.stream, x.level, x.message) for x in lines] == written
    assert lines == list(decode_lines(whole))
    assert len(gzip.decompress(whole)) == log.total_bytes
    assert log.dropped_lines == 0


def test_finish_without_lines_is_gzip_of_nothing():
    log = StepLog()
    assert gzip.decompress(log.finish()) == b""


def test_write_after_finish_is_a_no_op_and_finish_is_idempotent():
    log = StepLog()
    log.write("stdout", "before")
    final = log.finish()
    log.write("stdout", "after")
    assert log.finished
    assert log.counts == {"stdout": 1, "stderr": 0}
    assert log.finish() == final
    assert [x.message for x in decode_lines(final)] == ["before"]
    assert log.tail() and log.tail()[-1].endswith("before")


def test_snapshot_returns_buffered_lines_without_clearing():
    parts = Parts()
    log = StepLog(spill=parts, chunk_bytes=500, clock=Clock())
    for i in range(33):
        log.write("stdout", f"line {i:03d} " + "p" * 20)
    spilled = list(decode_lines(b"".join(parts.blobs)))
    snap = list(decode_lines(log.snapshot()))
    assert spilled and snap
    assert [x.message for x in spilled + snap] == [f"line {i:03d} " + "p" * 20 for i in range(33)]
    assert log.buffered_bytes > 0
    assert list(decode_lines(log.finish())) == snap


def raising_spill(number: int, data: bytes) -> None:
    raise OSError("storage down")


@pytest.mark.parametrize("spill", [None, raising_spill], ids=["no-spill", "raising-spill"])
def test_memory_stays_bounded_without_a_working_spill(spill):
    chunk = 1 << 20
    calls = []

    def counting(number, data):
        calls.append(number)
        raising_spill(number, data)

    log = StepLog(spill=counting if spill else None, chunk_bytes=chunk, clock=Clock())
    message = "w" * 1000
    peak = 0
    while log.total_bytes < 50 * 1024 * 1024:
        log.write("stdout", message)
        peak = max(peak, log.buffered_bytes)
    assert peak <= 4 * chunk
    assert log.dropped_lines > 0
    assert log.parts_spilled == 0
    assert len(calls) <= 12  # backed off, not one gzip per line
    assert set(calls) <= {1}  # a failed part is retried with the same number
    kept = list(decode_lines(log.finish()))
    assert len(kept) + log.dropped_lines == log.counts["stdout"]
    assert len(gzip.decompress(log.snapshot())) == 0


def flaky(parts: Parts, failures: int):  # noqa: ANN201
    """A spill callback whose first `failures` calls raise, then hands parts to `parts`."""
    left = [failures]

    def spill(number, data):
        if left[0]:
            left[0] -= 1
            raise OSError("transient")
        parts(number, data)

    return spill


def test_spill_recovers_with_contiguous_part_numbers():
    parts = Parts()
    log = StepLog(spill=flaky(parts, 2), chunk_bytes=1000, clock=Clock())
    for i in range(2000):
        log.write("stdout", f"line {i}")
    assert log.spill_errors == 2
    assert parts.numbers == list(range(1, log.parts_spilled + 1))
    assert log.dropped_lines == 0
    assert [x.message for x in all_lines(parts, log)] == [f"line {i}" for i in range(2000)]


def test_two_hundred_mb_with_a_working_spill_keeps_memory_flat():
    parts = Parts(keep=False)
    chunk = 1 << 20
    log = StepLog(spill=parts, chunk_bytes=chunk, clock=Clock())
    message = "flat memory " * 340  # ~4 KiB
    peak = 0
    while log.total_bytes < 200 * 1024 * 1024:
        log.write("stdout", message)
        peak = max(peak, log.buffered_bytes)
    assert peak < chunk + 8192
    assert log.parts_spilled == len(parts.sizes) >= 190
    assert parts.numbers == list(range(1, len(parts.numbers) + 1))
    assert log.dropped_lines == 0
    assert len(gzip.decompress(log.finish())) < chunk


@pytest.mark.parametrize("limit", [64, 100, 1024, 64 * 1024])
@pytest.mark.parametrize("char", ["a", "é", "日", "🎉"])
def test_long_line_is_cut_with_a_marker(limit, char):
    message = char * (limit * 3)
    log = StepLog(max_line_bytes=limit)
    log.write("stdout", message)
    (line,) = decode_lines(log.finish())
    stored = line.message.encode()
    assert len(stored) <= limit
    head, _, marker = line.message.rpartition(" ... ")
    assert marker.endswith(" bytes omitted")
    omitted = int(marker.split()[0])
    assert message.startswith(head)
    assert len(head.encode()) + omitted == len(message.encode())


@pytest.mark.parametrize("size", [10, 1000, 1024])
def test_line_at_or_under_the_limit_is_kept_whole(size):
    log = StepLog(max_line_bytes=1024)
    log.write("stdout", "q" * size)
    (line,) = decode_lines(log.finish())
    assert line.message == "q" * size


def test_huge_line_counts_every_omitted_byte():
    message = "h" * 5_000_000
    log = StepLog(max_line_bytes=1000)
    log.write("stdout", message)
    (line,) = decode_lines(log.finish())
    head, _, marker = line.message.rpartition(" ... ")
    assert len(head) + int(marker.split()[0]) == 5_000_000


def test_huge_line_collapsed_by_the_mask_still_gets_its_marker():
    log = StepLog(max_line_bytes=1000, mask=lambda text: "short")
    log.write("stdout", "s" * 5_000_000)
    (line,) = decode_lines(log.finish())
    assert line.message == f"short ... {5_000_000 - 2000} bytes omitted"
    assert log.internal_errors == 0


def test_cut_keeps_lone_surrogates_safe():
    log = StepLog(max_line_bytes=100)
    log.write("stdout", "\udc80" * 500)
    (line,) = decode_lines(log.finish())
    assert line.message.startswith("\\udc80") and line.message.endswith(" bytes omitted")
    line.message.encode("utf-8")


def mask_secret(text: str) -> str:
    return text.replace("hunter2", "***")


def test_mask_is_applied_before_buffering_and_in_tail():
    log = StepLog(mask=mask_secret)
    log.write("stdout", "password=hunter2")
    log.write("stderr", "again hunter2", "WARNING")
    assert "hunter2" not in "".join(log.tail())
    assert [x.message for x in decode_lines(log.finish())] == ["password=***", "again ***"]
    assert log.masked and not StepLog().masked  # the trace does not mask a masked tail again


def test_mask_runs_before_the_cut():
    log = StepLog(mask=mask_secret, max_line_bytes=100)
    log.write("stdout", "x" * 70 + "hunter2" * 10)
    (line,) = decode_lines(log.finish())
    assert "hunt" not in line.message and "***" in line.message


@pytest.mark.parametrize(
    ("mask", "stored"),
    [
        (lambda text: 1 / 0, MASK_FAILED),
        (lambda text: 12345, MASK_FAILED),  # a non-str is not vouched for: withheld, not str()-ed
        (lambda text: text.encode(), MASK_FAILED),
        (lambda text: text.upper(), "SECRET"),
    ],
)
def test_mask_failures_never_store_unmasked_text(mask, stored):
    log = StepLog(mask=mask)
    log.write("stdout", "secret")
    assert [x.message for x in decode_lines(log.finish())] == [stored]
    assert log.mask_errors == (1 if stored == MASK_FAILED else 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda log: log.write(123, "m"),
        lambda log: log.write("stdout", "m", 5),
        lambda log: log.write("stdout", object()),
    ],
)
def test_write_never_raises(call):
    log = StepLog()
    call(log)
    log.write("stdout", "still fine")
    assert list(decode_lines(log.finish()))[-1].message == "still fine"


def test_clock_failure_is_counted_not_raised():
    def broken() -> float:
        raise RuntimeError("clock")

    log = StepLog(clock=broken)
    log.write("stdout", "m")
    assert log.internal_errors == 1 and log.counts["stdout"] == 0


def test_spill_callback_may_write_to_the_same_log():
    parts = Parts()
    holder: list[StepLog] = []

    def spill(number, data):  # e.g. storage code whose logging is captured into this step
        holder[0].write("stderr", f"spilled part {number}", "DEBUG")
        parts(number, data)

    log = StepLog(spill=spill, chunk_bytes=300, clock=Clock())
    holder.append(log)
    for i in range(40):
        log.write("stdout", f"line {i:02d} padding padding")
    messages = [x.message for x in all_lines(parts, log)]
    assert [m for m in messages if m.startswith("line")] == [f"line {i:02d} padding padding" for i in range(40)]
    assert "spilled part 1" in messages


@pytest.mark.parametrize("kwargs", [{"chunk_bytes": 0}, {"tail_lines": -1}, {"max_line_bytes": 10}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        StepLog(**kwargs)


def test_thread_safety_counts_are_exact():
    parts = Parts()
    log = StepLog(spill=parts, chunk_bytes=64 * 1024)
    start = threading.Barrier(8)

    def worker(k: int) -> None:
        start.wait()
        stream = "stdout" if k % 2 else "stderr"
        for i in range(10_000):
            log.write(stream, f"t{k} {i}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.counts == {"stdout": 40_000, "stderr": 40_000}
    lines = all_lines(parts, log)
    assert len(lines) == 80_000
    for k in range(8):  # each thread's lines stay in its own order
        mine = [int(x.message.split()[1]) for x in lines if x.message.startswith(f"t{k} ")]
        assert mine == list(range(10_000))
    assert parts.numbers == list(range(1, len(parts.numbers) + 1))


# -- packing: lines gzipped in members as they are written ---------------------------------------


class Gzips:
    """Counts the raw bytes StepLog hands to gzip (its packer's members included), and when."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from rundossier.record import steplog

        self.sizes: list[int] = []
        real = steplog.gzip_bytes

        def counting(data: bytes) -> bytes:
            self.sizes.append(len(data))
            return real(data)

        monkeypatch.setattr(steplog, "gzip_bytes", counting)


@pytest.mark.parametrize("lines", [10, 200, 3000])
def test_finish_gzips_only_the_lines_since_the_last_member(monkeypatch, lines):
    from rundossier.record.steplog import PACK_BYTES

    gz = Gzips(monkeypatch)
    log = StepLog(clock=Clock())
    for i in range(lines):
        log.write("stdout", f"line {i} " + "x" * 100)
    before = sum(gz.sizes)
    final = log.finish()
    assert sum(gz.sizes) - before < PACK_BYTES + 200  # the last few lines, not the whole log
    assert sum(gz.sizes) == log.total_bytes  # every byte gzipped exactly once
    assert [x.message for x in decode_lines(final)] == [f"line {i} " + "x" * 100 for i in range(lines)]
    lines_back = decode_lines(final)
    assert gzip.decompress(final) == b"".join(encode_fields(x.ts, x.stream, x.level, x.message) for x in lines_back)


def test_parts_are_whole_members_and_nothing_is_gzipped_twice(monkeypatch):
    gz = Gzips(monkeypatch)
    parts = Parts()
    chunk = 256 * 1024
    log = StepLog(spill=parts, chunk_bytes=chunk, clock=Clock())
    for i in range(20_000):
        log.write("stderr", f"row {i} " + "y" * (i % 90), "INFO")
        assert log.buffered_bytes < chunk + 200
    assert log.parts_spilled >= 5
    for blob in parts.blobs:
        assert chunk <= len(gzip.decompress(blob)) < chunk + 200
    lines = all_lines(parts, log)
    assert [x.message for x in lines] == [f"row {i} " + "y" * (i % 90) for i in range(20_000)]
    assert sum(gz.sizes) == log.total_bytes


def test_a_spill_failing_while_members_wait_loses_nothing_and_repeats_nothing():
    parts = Parts()
    log = StepLog(spill=flaky(parts, 3), chunk_bytes=64 * 1024, clock=Clock())
    for i in range(30_000):
        log.write("stdout", f"line {i}")
    assert log.spill_errors == 3 and log.dropped_lines == 0
    assert parts.numbers == list(range(1, log.parts_spilled + 1))
    assert [x.message for x in all_lines(parts, log)] == [f"line {i}" for i in range(30_000)]


def test_dropping_lines_after_members_were_made_keeps_exactly_the_lines_left():
    chunk = 32 * 1024
    log = StepLog(chunk_bytes=chunk, clock=Clock())  # no spill: the cap drops the oldest lines
    n = 20_000
    for i in range(n):
        log.write("stdout", f"line {i:05d} " + "d" * 40)
    assert log.dropped_lines > 0 and log.buffered_bytes <= 4 * chunk
    kept = [x.message for x in decode_lines(log.finish())]
    assert kept == [f"line {i:05d} " + "d" * 40 for i in range(log.dropped_lines, n)]


@pytest.mark.parametrize("feeds", [[1], [1, 1, 1], [5, 50, 1], [300]])
def test_packer_members_hold_the_fed_lines_in_order(feeds):
    from rundossier.record.steplog import Packer

    packer = Packer()
    fed: list[bytes] = []
    for n in feeds:
        lines = [f"line {len(fed) + i}\n".encode() for i in range(n)]
        packer.feed(iter(lines), n, sum(map(len, lines)))
        fed += lines
    packer.feed(iter([]), 0, 0)  # nothing to feed: nothing changes
    assert packer.lines == len(fed) and packer.raw_bytes == sum(map(len, fed))
    members = list(packer.members)
    assert [n for _, n, _ in members] == feeds
    assert gzip.decompress(b"".join(m for m, _, _ in members)) == b"".join(fed)
    packer.take(1)
    assert packer.lines == len(fed) - feeds[0] and len(packer.members) == len(feeds) - 1
    packer.clear()
    assert packer.lines == packer.raw_bytes == 0 and not packer.members


def _check_index(data: bytes, log: StepLog, messages: list[str]) -> None:
    """Every point of the log's index starts a gzip member whose first line is that point's line."""
    import io
    from itertools import islice

    from rundossier.core.logs import gunzip_stream

    index = log.index()
    assert index.size == len(data) and index.lines == len(messages)
    assert len(index.points) >= min(len(messages) // 2000, 2)  # a point every ~1,000 lines
    for before, offset in index.points:
        assert data[offset : offset + 2] == b"\x1f\x8b"
        got = [x.message for x in islice(gunzip_stream(io.BytesIO(data[offset:])), 3)]
        assert got == messages[before : before + 3]
    for first in (0, 999, 1000, 1234, len(messages) - 500):
        skip, start, end = index.span(first, 500)
        got = [x.message for x in islice(gunzip_stream(io.BytesIO(data[start:end])), skip, skip + 500)]
        assert got == messages[first : first + 500]


@pytest.mark.parametrize(
    "make",
    [
        lambda parts: StepLog(spill=parts, chunk_bytes=64 * 1024, clock=Clock()),  # members in parts
        lambda parts: StepLog(chunk_bytes=8 << 20, clock=Clock()),  # members, no spill
        lambda parts: StepLog(spill=flaky(parts, 3), chunk_bytes=64 * 1024, clock=Clock()),  # a flaky spill
    ],
    ids=["parts", "one-blob", "flaky-spill"],
)
def test_the_index_finds_every_page_of_the_joined_log(make):
    parts = Parts()
    log = make(parts)
    messages = [f"line {i:06d} " + "z" * (i % 70) for i in range(30_000)]
    for m in messages:
        log.write("stdout", m)
    data = b"".join(parts.blobs) + log.finish()
    _check_index(data, log, messages)


def test_the_index_of_a_degraded_log_covers_the_lines_kept():
    chunk = 32 * 1024
    parts = Parts()
    log = StepLog(spill=flaky(parts, 5), chunk_bytes=chunk, clock=Clock())  # drops lines, then spills
    messages = [f"line {i:05d} " + "d" * 40 for i in range(40_000)]
    for m in messages:
        log.write("stdout", m)
    data = b"".join(parts.blobs) + log.finish()
    kept = [x.message for x in decode_lines(data)]
    assert log.dropped_lines > 0 and len(kept) == len(messages) - log.dropped_lines
    _check_index(data, log, kept)
