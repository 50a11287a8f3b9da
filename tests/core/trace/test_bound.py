"""bound(): the rendered text always fits, markers say what was dropped, and it stays fast."""

from __future__ import annotations

import linecache
import re
import sys
import time

import pytest

from rundossier.core.trace import (
    MIN_MAX_BYTES,
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
    bound,
    build_trace,
    from_json,
    render_text,
    to_json,
)
from tests.core.trace.helpers import caught

HEADER = TraceHeader(run_id="run_01TEST", flow_id="nightly_etl", step_id="load", try_number=1)
SIZES = [4096, 16384, 65536, 1 << 20, 10 << 20]
MIB = 1 << 20


def size_of(doc: TraceDoc) -> int:
    return len(render_text(doc).encode("utf-8"))


def counts(pattern: str, text: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, text)]


def frame_total(node: ExceptionNode) -> int:
    return sum(1 + f.repeat for f in node.frames) + node.omitted_frames


def check(doc: TraceDoc, max_bytes: int) -> TraceDoc:
    result = bound(doc, max_bytes)
    assert size_of(result) <= max_bytes
    if size_of(doc) <= max_bytes:
        assert result is doc
    else:
        assert result.truncated
    return result


# -- fixtures: the pathological cases ---------------------------------------------------------


@pytest.fixture(scope="module")
def huge_message():
    """A 50 MiB message kept whole by build_trace, so bound() has to cut it."""
    size = 50 * MIB

    def fail():
        raise ValueError("a" * (size // 2) + "z" * (size // 2))

    return build_trace(caught(fail), HEADER, max_string_bytes=64 * MIB)


@pytest.fixture(scope="module")
def deep_frames():
    """10,000 distinct frames (not collapsible): a chain of generated functions."""
    count = 10_000
    src = "".join(f"def f{i}():\n    f{i + 1}()\n" for i in range(count))
    src += f"def f{count}():\n    raise ValueError('deep')\n"
    linecache.cache["deep_chain.py"] = (len(src), None, src.splitlines(True), "deep_chain.py")
    namespace: dict = {}
    exec(compile(src, "deep_chain.py", "exec"), namespace)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(count + 2000)
    try:
        return build_trace(caught(namespace["f0"]), HEADER)
    finally:
        sys.setrecursionlimit(old)
        linecache.cache.pop("deep_chain.py", None)


@pytest.fixture(scope="module")
def many_log_lines():
    lines = [f"2026-01-02 03:04:05 INFO step progress line {i:07d}" for i in range(1_000_000)]
    return build_trace(caught(lambda: {}["k"]), HEADER, lines)


@pytest.fixture(scope="module")
def big_group():
    def member(i):
        raise ValueError(f"member {i} failed")

    excs = [caught(lambda i=i: member(i)) for i in range(1000)]
    doc = build_trace(ExceptionGroup("many", excs), HEADER)
    return doc.replace(traceback_text="")  # render every member from the nodes


# -- the pathological cases at every size -------------------------------------------------------


@pytest.mark.parametrize("max_bytes", SIZES)
def test_fifty_mib_message(huge_message, max_bytes):
    result = check(huge_message, max_bytes)
    text = render_text(result)
    (omitted,) = counts(r"\.\.\. (\d+) bytes omitted \.\.\.", text)
    message = result.chain[-1].message
    kept = len(message) - len(f" ... {omitted} bytes omitted ... ")
    assert omitted + kept == 50 * MIB
    assert message.startswith("aaa") and message.endswith("zzz")
    assert result.traceback_text == ""  # rendered from the nodes
    assert result.error_message == message  # the document carries the cut message only
    assert 'raise ValueError("a" * (size // 2) + "z" * (size // 2))' in text
    if max_bytes == 10 * MIB:
        assert size_of(result) > 0.99 * max_bytes  # the budget is used, not wasted


@pytest.mark.parametrize("max_bytes", SIZES)
def test_fifty_mib_message_cut_by_build_already(max_bytes):
    doc = build_trace("x" * (50 * MIB), HEADER)
    result = check(doc, max_bytes)
    assert "bytes omitted" in render_text(result)


@pytest.mark.parametrize("max_bytes", SIZES)
def test_ten_thousand_distinct_frames(deep_frames, max_bytes):
    node = deep_frames.chain[-1]
    assert len(node.frames) == 10_002
    result = check(deep_frames, max_bytes)
    kept = result.chain[-1]
    assert frame_total(kept) == 10_002
    if result is deep_frames:
        assert max_bytes >= MIB
        return
    text = render_text(result)
    assert counts(r"\.\.\. (\d+) frames omitted \.\.\.", text) == [kept.omitted_frames]
    assert kept.omitted_frames > 0
    # first 5 and last 10 at least; the raise site survives
    assert kept.frames[-1].line == "raise ValueError('deep')"
    assert kept.frames[:5] == node.frames[:5]
    assert kept.frames[-10:] == node.frames[-10:]


@pytest.mark.parametrize("max_bytes", SIZES)
def test_fabricated_ten_thousand_frames_in_a_long_chain(max_bytes):
    def node(i: int, relation: str | None) -> ExceptionNode:
        frames = tuple(Frame(f"/app/mod{i}_{j}.py", j, f"func_{j}", f"step_{j}(data)", True) for j in range(10_000))
        return ExceptionNode("RuntimeError", f"failure {i}", frames, relation=relation)

    chain = (node(0, "cause"), node(1, "context"), node(2, None))
    doc = TraceDoc(HEADER, "RuntimeError", "failure 2", chain, "", True)
    result = check(doc, max_bytes)
    text = render_text(result)
    assert [frame_total(n) for n in result.chain] == [10_000] * 3
    assert counts(r"\.\.\. (\d+) frames omitted \.\.\.", text) == [
        n.omitted_frames for n in result.chain if n.omitted_frames
    ]
    assert "direct cause" in text and "During handling" in text


@pytest.mark.parametrize("max_bytes", SIZES)
def test_million_log_lines(many_log_lines, max_bytes):
    result = check(many_log_lines, max_bytes)
    text = render_text(result)
    (omitted,) = counts(r"\n\.\.\. (\d+) log lines omitted \.\.\.\n", text)
    assert omitted == result.omitted_log_lines == 1_000_000 - len(result.log_tail)
    assert "--- last 1000000 log lines before the failure ---" in text
    assert result.log_tail[0].endswith("line 0000000")
    assert result.log_tail[-1].endswith("line 0999999")
    # the traceback is small: it is kept verbatim, only log lines go
    assert result.traceback_text == many_log_lines.traceback_text
    assert size_of(result) > max_bytes - 200  # the remaining budget goes to log lines


@pytest.mark.parametrize("max_bytes", SIZES)
def test_thousand_member_group(big_group, max_bytes):
    result = check(big_group, max_bytes)
    top = result.chain[-1]
    text = render_text(result)
    assert len(top.group) + top.omitted_exceptions == 1000
    if result is big_group:
        assert "exceptions omitted" not in text
        return
    assert counts(r"\| \.\.\. (\d+) exceptions omitted \.\.\.", text) == [top.omitted_exceptions]
    assert "member 0 failed" in text and "member 999 failed" in text
    assert "+---------------- 1000 ----------------" in text


@pytest.mark.parametrize("max_bytes", SIZES)
def test_everything_at_once(huge_message, deep_frames, many_log_lines, max_bytes):
    deep, huge = deep_frames.chain[-1], huge_message.chain[-1]
    chain = (ExceptionNode(deep.type, huge.message, deep.frames, relation="context"), huge)
    doc = many_log_lines.replace(chain=chain, traceback_text="")
    result = check(doc, max_bytes)
    text = render_text(result)
    assert "log lines omitted" in text and "bytes omitted" in text


@pytest.mark.parametrize("max_bytes", [4096, 65536])
def test_huge_header(max_bytes):
    header = TraceHeader(
        run_id="r" * MIB,
        flow_id="f",
        host="h" * 10_000,
        extra=tuple((f"key{i}", "v" * 100) for i in range(10_000)),
    )
    result = check(build_trace(caught(lambda: 1 / 0), header, ["x"] * 10), max_bytes)
    assert "ZeroDivisionError: division by zero" in render_text(result)


@pytest.mark.parametrize("max_bytes", SIZES)
def test_uncaptured_fifty_mib_string(max_bytes):
    doc = build_trace("ValueError: " + "q" * (50 * MIB), HEADER, max_string_bytes=64 * MIB)
    result = check(doc, max_bytes)
    text = render_text(result)
    assert "no traceback captured" in text and "Traceback" not in text
    (omitted,) = counts(r"\.\.\. (\d+) bytes omitted \.\.\.", result.error_message)
    assert omitted + len(result.error_message) - len(f" ... {omitted} bytes omitted ... ") == (50 * MIB)


@pytest.mark.parametrize("max_bytes", [4096, 16384])
def test_last_resort_long_chain_of_contexts(max_bytes):
    chain = tuple(ExceptionNode("OSError", f"attempt {i} failed", (), relation="context") for i in range(5000))
    chain = chain[:-1] + (ExceptionNode("OSError", "attempt 4999 failed", ()),)
    doc = TraceDoc(HEADER, "OSError", "attempt 4999 failed", chain, "", True)
    result = check(doc, max_bytes)
    text = render_text(result)
    assert "bytes omitted" in text
    assert "attempt 0 failed" in text and text.rstrip().endswith("attempt 4999 failed")


# -- properties ---------------------------------------------------------------------------------


def test_fitting_doc_is_returned_unchanged():
    doc = build_trace(caught(lambda: 1 / 0), HEADER, ["a", "b"])
    assert bound(doc, MIN_MAX_BYTES) is doc


def test_too_small_budget_is_refused():
    with pytest.raises(ValueError, match="at least"):
        bound(build_trace("boom", HEADER), MIN_MAX_BYTES - 1)


def test_bounding_twice_merges_the_gaps(deep_frames, many_log_lines):
    doc = many_log_lines.replace(chain=deep_frames.chain, traceback_text="")
    once = bound(doc, 65536)
    twice = check(once, 8192)
    assert frame_total(twice.chain[-1]) == 10_002
    assert len(twice.log_tail) + twice.omitted_log_lines == 1_000_000
    text = render_text(twice)
    assert text.count("frames omitted") == 1 and text.count("log lines omitted") == 1


def test_bounded_doc_round_trips_through_json(big_group):
    result = bound(big_group, 16384)
    assert from_json(to_json(result)) == result


def test_non_ascii_is_measured_in_bytes():
    doc = build_trace("\u00e9" * 100_000 + "\udcff", HEADER, ["\u4e2d" * 1000] * 100)
    result = check(doc, 4096)
    render_text(result).encode("utf-8")


def test_bound_is_fast(huge_message, many_log_lines):
    for doc in (huge_message, many_log_lines):
        for max_bytes in (4096, 10 * MIB):
            start = time.perf_counter()
            bound(doc, max_bytes)
            assert time.perf_counter() - start < 5.0
