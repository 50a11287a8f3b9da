"""The log index: where each ~1,000 lines of a multi-member gzip log start (pure)."""

from __future__ import annotations

import gzip
import io
import json
from itertools import islice

import pytest

from rundossier.core.logs import gunzip_stream
from rundossier.core.logs.index import IndexBuilder, LogIndex
from rundossier.core.logs.jsonl import LogLine, encode_lines, gzip_bytes


def members(line_counts: list[int]) -> tuple[bytes, LogIndex, list[str]]:
    """A log of members with these line counts (messages `line N`, from 0), and its index."""
    builder = IndexBuilder(span=10)
    out, messages, n = [], [], 0
    for count in line_counts:
        lines = [LogLine(float(i), "stdout", None, f"line {i}") for i in range(n, n + count)]
        messages += [x.message for x in lines]
        member = gzip_bytes(encode_lines(lines))
        out.append(member)
        builder.add(count, len(member))
        n += count
    return b"".join(out), builder.build(), messages


@pytest.mark.parametrize("counts", [[4] * 30, [25, 1, 1, 40, 3], [100], [0, 7, 0, 9, 11, 0, 30], [1] * 55])
@pytest.mark.parametrize("first,count", [(0, 5), (9, 3), (10, 10), (37, 20), (0, 1000), (99, 1)])
def test_a_page_read_from_its_point_is_the_page(counts: list[int], first: int, count: int) -> None:
    data, index, messages = members(counts)
    assert gzip.decompress(data).count(b"\n") == len(messages) == index.lines  # one valid .gz
    assert index.size == len(data)
    if first >= index.lines:
        return
    count = min(count, index.lines - first)
    skip, start, end = index.span(first, count)
    got = [x.message for x in islice(gunzip_stream(io.BytesIO(data[start:end])), skip, skip + count)]
    assert got == messages[first : first + count]  # the bytes up to `end` hold the whole page


def test_points_sit_on_member_boundaries_at_least_span_lines_apart() -> None:
    _, index, _ = members([4] * 30)
    assert [p[0] for p in index.points] == [0, 12, 24, 36, 48, 60, 72, 84, 96, 108]
    _, index, _ = members([100])
    assert index.points == ((0, 0),)


def test_json_round_trip() -> None:
    _, index, _ = members([7] * 20)
    assert LogIndex.from_json(index.to_json()) == index


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        json.dumps({"format": 2, "lines": 1, "size": 1, "points": [[0, 0]]}).encode(),
        json.dumps({"format": 1, "lines": -1, "size": 1, "points": [[0, 0]]}).encode(),
        json.dumps({"format": 1, "lines": 5, "size": 9, "points": []}).encode(),
        json.dumps({"format": 1, "lines": 5, "size": 9, "points": [[1, 0]]}).encode(),
        json.dumps({"format": 1, "lines": 5, "size": 9, "points": [[0, 0], [3, 4], [2, 6]]}).encode(),
        json.dumps({"format": 1, "lines": 5, "size": 9, "points": [[0, 0], [3, 40]]}).encode(),
        json.dumps({"format": 1, "lines": 5, "size": 9, "points": [[0, 0], ["3", 4]]}).encode(),
        json.dumps({"format": 1, "lines": True, "size": 9, "points": [[0, 0]]}).encode(),
    ],
)
def test_a_damaged_index_is_refused(doc: bytes) -> None:
    with pytest.raises(ValueError):
        LogIndex.from_json(doc)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="span"):
        IndexBuilder(span=0)
    with pytest.raises(ValueError, match="0 or more"):
        LogIndex(1, 1, ((0, 0),)).span(-1, 1)
