"""Live log snapshots: the header names the parts before the lines; bad input is refused clearly."""

from __future__ import annotations

import gzip

import pytest

from rundossier.core.logs import LogLine, decode_live, encode_live
from rundossier.core.logs.jsonl import encode_lines
from rundossier.record.steplog import StepLog


def test_round_trip() -> None:
    lines = [LogLine(1.5, "stdout", None, "hello"), LogLine(2.0, "stderr", "WARNING", "careful ✓")]
    snap = decode_live(encode_live(3, encode_lines(lines), 123.25))
    assert (snap.parts, snap.ts, snap.lines) == (3, 123.25, lines)


def test_empty_payload() -> None:
    snap = decode_live(encode_live(0, b"", 1.0))
    assert snap.parts == 0 and snap.lines == []


def test_uncompressed_input_is_read_too() -> None:
    data = gzip.decompress(encode_live(1, encode_lines([LogLine(1.0, "stdout", None, "x")]), 5.0))
    assert decode_live(data).lines[0].message == "x"


@pytest.mark.parametrize("parts", [-1, True, 1.5, "2"])
def test_bad_part_counts_are_refused(parts: object) -> None:
    with pytest.raises(ValueError, match="parts"):
        encode_live(parts, b"", 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x1f\x8b\x08garbage",
        gzip.compress(b"no newline at all", mtime=0),
        gzip.compress(b"not json\n", mtime=0),
        gzip.compress(b'{"rundossier_live": 2, "parts": 0, "ts": 1}\n', mtime=0),
        gzip.compress(b'{"rundossier_live": 1, "parts": -3, "ts": 1}\n', mtime=0),
        gzip.compress(b'{"rundossier_live": 1, "parts": 0, "ts": "now"}\n', mtime=0),
        gzip.compress(b"[1, 2]\n", mtime=0),
    ],
)
def test_what_is_not_a_snapshot_says_so(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a live log snapshot"):
        decode_live(data)


def test_corrupt_lines_are_skipped() -> None:
    payload = (
        encode_lines([LogLine(1.0, "stdout", None, "a")])
        + b"{broken\n"
        + encode_lines([LogLine(2.0, "stdout", None, "b")])
    )
    assert [x.message for x in decode_live(encode_live(0, payload, 1.0)).lines] == ["a", "b"]


def test_steplog_live_view_is_parts_then_buffer() -> None:
    spilled: list[bytes] = []
    log = StepLog(spill=lambda n, data: spilled.append(data), chunk_bytes=200)
    for i in range(10):
        log.write("stdout", f"line {i:02d} " + "x" * 40, ts=float(i))
    parts, payload = log.live_view()
    assert parts == len(spilled) > 0
    from rundossier.core.logs import decode_lines

    spilled_lines = [line for part in spilled for line in decode_lines(part)]
    live_lines = list(decode_lines(payload))
    assert [x.message[:7] for x in spilled_lines + live_lines] == [f"line {i:02d}" for i in range(10)]
