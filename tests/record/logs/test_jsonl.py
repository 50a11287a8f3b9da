"""Tests of the JSONL encoding, decoding, gzip streaming and text formatting of log lines."""

from __future__ import annotations

import gzip
import io
import json
import math
from datetime import UTC, datetime

import pytest

from rundossier.core.logs import jsonl
from rundossier.core.logs.jsonl import (
    LogLine,
    decode_lines,
    encode_lines,
    format_line,
    gunzip_stream,
    gzip_bytes,
)

MESSAGES = [
    "",
    "hello",
    "üñíçødé ✓ 日本語",
    "emoji 🎉🚀",
    "line1\nline2\r\nline3",
    'tab\tquote"back\\slash',
    "nul \x00 and bell \x07",
    "separators \u2028 \u2029 \x85",
    "x" * 10_000,
]


def lines_of(messages, stream="stdout", level=None):
    return [LogLine(1_700_000_000.0 + i / 7, stream, level, m) for i, m in enumerate(messages)]


class Chunky(io.RawIOBase):
    """A binary file that returns at most `size` bytes per read (splits gzip headers)."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data = io.BytesIO(data)
        self._size = size

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, self._size) if n >= 0 else self._size)

    def readable(self) -> bool:
        return True


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("level", [None, "INFO", "WARNING"])
def test_round_trip(message, level):
    line = LogLine(1_732_233_600.123456, "stderr", level, message)
    data = encode_lines([line])
    assert data.endswith(b"\n") and data.count(b"\n") == 1  # newlines inside are escaped
    assert list(decode_lines(data)) == [line]


def test_round_trip_many_in_order():
    lines = lines_of(MESSAGES) + lines_of(MESSAGES, "stderr", "DEBUG")
    assert list(decode_lines(encode_lines(lines))) == lines


def test_empty():
    assert encode_lines([]) == b""
    assert list(decode_lines(b"")) == []


def test_one_json_object_per_line_in_key_order():
    data = encode_lines(lines_of(["a", "b"], "stderr", "INFO"))
    objects = [json.loads(raw) for raw in data.splitlines()]
    assert [list(o) for o in objects] == [["ts", "stream", "level", "message"]] * 2
    assert objects[0] == {
        "ts": 1_700_000_000.0,
        "stream": "stderr",
        "level": "INFO",
        "message": "a",
    }


def test_non_ascii_stays_readable_utf8():
    data = encode_lines(lines_of(["日本語 ✓"]))
    assert "日本語 ✓".encode() in data


@pytest.mark.parametrize(
    ("message", "stored"),
    [
        ("\udc80abc", "\\udc80abc"),
        ("a\ud800b", "a\\ud800b"),
        ("ok 日本 \udcff", "ok 日本 \\udcff"),
    ],
)
def test_lone_surrogates_become_backslash_escapes(message, stored):
    data = encode_lines([LogLine(1.0, "stdout", None, message)])
    data.decode("utf-8")  # strict UTF-8
    (line,) = decode_lines(data)
    assert line.message == stored
    line.message.encode("utf-8")  # safe to encode again


def test_surrogates_in_stream_and_level_never_raise():
    data = encode_lines([LogLine(1.0, "std\udc80", "IN\udc80FO", "m")])
    (line,) = decode_lines(data)
    assert (line.stream, line.level) == ("std\\udc80", "IN\\udc80FO")


def test_surrogate_escape_written_by_someone_else_is_sanitized_on_read():
    raw = b'{"ts": 1, "stream": "stdout", "level": null, "message": "a\\udc80b"}\n'
    (line,) = decode_lines(raw)
    assert line.message == "a\\udc80b"
    assert line.ts == 1.0 and isinstance(line.ts, float)


@pytest.mark.parametrize("ts", [0.0, 1.5, 1_732_233_600.123456, 1e-7, 4_102_444_800.999])
def test_timestamps_round_trip_exactly(ts):
    (line,) = decode_lines(encode_lines([LogLine(ts, "stdout", None, "m")]))
    assert line.ts == ts


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf])
def test_non_finite_timestamp_is_valid_json(ts):
    data = encode_lines([LogLine(ts, "stdout", None, "m")])

    def refuse(name):
        raise ValueError(name)

    assert json.loads(data, parse_constant=refuse)["ts"] == 0.0


GOOD = b'{"ts": 1.0, "stream": "stdout", "level": null, "message": "good"}'


@pytest.mark.parametrize(
    "corrupt",
    [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b'{"ts": "x", "stream": "stdout", "level": null, "message": "m"}',
        b'{"ts": true, "stream": "stdout", "level": null, "message": "m"}',
        b'{"ts": 1, "stream": 5, "level": null, "message": "m"}',
        b'{"ts": 1, "stream": "stdout", "level": 5, "message": "m"}',
        b'{"ts": 1, "stream": "stdout", "level": null}',
        b'{"ts": 1, "stream": "stdout", "level": null, "message": "trunc',
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
    ],
)
def test_decode_skips_a_corrupt_line_and_reports_it(corrupt):
    seen = []
    data = GOOD + b"\n" + corrupt + b"\n" + GOOD + b"\n"
    out = list(decode_lines(data, on_corrupt=lambda n, raw: seen.append((n, raw))))
    assert [x.message for x in out] == ["good", "good"]
    assert [n for n, _ in seen] == [2]
    assert seen[0][1] == corrupt[:1024]


def test_blank_lines_are_not_corrupt():
    seen = []
    out = list(decode_lines(b"\n" + GOOD + b"\n\n  \n" + GOOD, on_corrupt=lambda *a: seen.append(a)))
    assert len(out) == 2 and seen == []


def test_missing_level_reads_as_none():
    (line,) = decode_lines(b'{"ts": 2, "stream": "stderr", "message": "m", "extra": 1}')
    assert line == LogLine(2.0, "stderr", None, "m")


def parts(n_parts: int, per_part: int) -> tuple[list[LogLine], bytes]:
    lines = [
        LogLine(float(i), "stdout", None, f"part {p} line {i}")
        for p in range(n_parts)
        for i in range(p * per_part, (p + 1) * per_part)
    ]
    blob = b"".join(gzip_bytes(encode_lines(lines[p * per_part : (p + 1) * per_part])) for p in range(n_parts))
    return lines, blob


@pytest.mark.parametrize("n_parts", [1, 2, 5])
def test_decode_lines_accepts_multi_member_gzip(n_parts):
    lines, blob = parts(n_parts, 50)
    assert list(decode_lines(blob)) == lines
    assert list(decode_lines(gzip.decompress(blob))) == lines


@pytest.mark.parametrize("read_size", [1, 2, 7, 4096, 1 << 20])
@pytest.mark.parametrize("n_parts", [1, 3, 8])
def test_gunzip_stream_multi_member_in_order(read_size, n_parts):
    lines, blob = parts(n_parts, 40)
    seen = []
    out = list(gunzip_stream(Chunky(blob, read_size), on_corrupt=lambda *a: seen.append(a)))
    assert out == lines and seen == []


def test_gunzip_stream_empty_members_and_zero_padding():
    lines, blob = parts(2, 10)
    empty = gzip_bytes(b"")
    data = empty + blob[:0] + blob + empty + b"\x00" * 100
    seen = []
    assert list(gunzip_stream(io.BytesIO(data), on_corrupt=lambda *a: seen.append(a))) == lines
    assert seen == []


def test_gunzip_stream_large_stream_in_bounded_pieces(monkeypatch):
    lines = lines_of([f"message {i} " + "abc" * 30 for i in range(20_000)])
    blob = gzip_bytes(encode_lines(lines))
    sizes = []
    real = jsonl._lines_from_chunks

    def spy(chunks, parser):
        def counted():
            for chunk in chunks:
                sizes.append(len(chunk))
                yield chunk

        return real(counted(), parser)

    monkeypatch.setattr(jsonl, "_lines_from_chunks", spy)
    assert list(gunzip_stream(io.BytesIO(blob))) == lines
    assert len(sizes) > 10 and max(sizes) <= 64 * 1024


@pytest.mark.parametrize("cut", [5, 30, 200, -9])
def test_truncated_gzip_yields_lines_before_the_damage(cut):
    lines, blob = parts(2, 200)
    first = gzip_bytes(encode_lines(lines[:200]))
    data = first + blob[len(first) :][:cut]
    seen = []
    out = list(gunzip_stream(io.BytesIO(data), on_corrupt=lambda n, raw: seen.append(n)))
    assert out[:200] == lines[:200]
    assert out == lines[: len(out)]
    assert 0 in seen


def test_garbage_after_a_member_is_reported_and_ends_the_stream():
    lines, blob = parts(1, 10)
    seen = []
    out = list(gunzip_stream(io.BytesIO(blob + b"garbage"), on_corrupt=lambda n, r: seen.append(n)))
    assert out == lines and seen == [0]


def test_gunzip_stream_reads_plain_jsonl_too():
    lines = lines_of(MESSAGES)
    assert list(gunzip_stream(io.BytesIO(encode_lines(lines)))) == lines
    assert list(gunzip_stream(io.BytesIO(b""))) == []


def test_over_long_raw_line_is_skipped_without_holding_it(monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_RAW_LINE", 1000)
    big = encode_lines([LogLine(1.0, "stdout", None, "y" * 300_000)])
    good = encode_lines(lines_of(["after"]))
    seen = []
    blob = gzip_bytes(good + big + good)
    out = list(gunzip_stream(Chunky(blob, 512), on_corrupt=lambda n, r: seen.append(n)))
    assert [x.message for x in out] == ["after", "after"]
    assert seen == [2]


def test_gzip_bytes_is_reproducible_and_valid():
    data = encode_lines(lines_of(MESSAGES))
    a, b = gzip_bytes(data), gzip_bytes(data)
    assert a == b
    assert a[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert gzip.decompress(a) == data
    assert gzip.decompress(gzip_bytes(b"")) == b""


SPEC_TS = datetime(2026, 11, 22, tzinfo=UTC).timestamp() + 0.123


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (
            LogLine(SPEC_TS, "stderr", "INFO", "message"),
            "2026-11-22T00:00:00.123Z stderr INFO message",
        ),
        (LogLine(SPEC_TS, "stdout", None, "printed"), "2026-11-22T00:00:00.123Z stdout printed"),
        (LogLine(0.0, "stdout", None, ""), "1970-01-01T00:00:00.000Z stdout "),
        (LogLine(0.9996, "stderr", "ERROR", "x"), "1970-01-01T00:00:01.000Z stderr ERROR x"),
        (LogLine(59.0004, "stdout", None, "a\nb"), "1970-01-01T00:00:59.000Z stdout a\nb"),
    ],
)
def test_format_line(line, text):
    assert format_line(line) == text


@pytest.mark.parametrize("ts", [1e20, -1e20, math.nan, math.inf])
def test_format_line_never_raises_on_odd_timestamps(ts):
    assert format_line(LogLine(ts, "stdout", None, "m")).endswith(" stdout m")


FORMAT_MANY_CASES = [
    [],
    [(SPEC_TS, "stderr", "INFO", "message"), (SPEC_TS + 0.5, "stdout", None, "printed")],
    [(SPEC_TS + i * 0.37, "stderr", "INFO", f"line {i}") for i in range(50)],  # seconds change mid-list
    [(-0.5, "stdout", None, "before 1970"), (-1.5, "stdout", None, "x"), (0.0, "stdout", None, "epoch")],
    [(1e20, "stdout", None, "huge"), (SPEC_TS, "stderr", "INFO", "after"), (math.nan, "stdout", None, "nan")],
    [(SPEC_TS, "stderr", "INFO", "a"), (math.inf, "stderr", "INFO", "b"), (SPEC_TS, "stderr", "INFO", "c")],
    [(0.9996, "stderr", "ERROR", "x"), (59.0004, "stdout", None, "a\nb")],
]


@pytest.mark.parametrize("items", FORMAT_MANY_CASES)
def test_format_many_is_format_fields_of_each(items):
    assert jsonl.format_many(items) == [jsonl.format_fields(*item) for item in items]
