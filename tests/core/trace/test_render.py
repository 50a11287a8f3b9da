"""render_text layout and the to_json/from_json round trip."""

from __future__ import annotations

import json
import traceback

import pytest

from rundossier.core.trace import (
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

HEADER = TraceHeader(
    run_id="run_01HXYZ",
    flow_id="nightly_etl",
    step_id="load",
    try_number=2,
    orchestrator="python",
    host="myhost",
    started_at="2026-01-02T03:04:05Z",
    failed_at="2026-01-02T03:05:00Z",
)


def caught(fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("fn did not raise")


def _helper():
    raise KeyError("missing")


def _cause():
    try:
        _helper()
    except KeyError as exc:
        raise RuntimeError("db down") from exc


def _context():
    try:
        _helper()
    except KeyError:
        raise RuntimeError("db down\nsecond line")  # noqa: B904


def _group():
    raise ExceptionGroup("eg", [caught(_helper), ValueError("v")])


def _docs() -> list[TraceDoc]:
    cause = build_trace(caught(_cause), HEADER, ["one", "two", "three"])
    return [
        cause,
        build_trace(caught(_context), HEADER),
        build_trace(caught(_group), HEADER, ["x"]),
        build_trace("ValueError: boom", HEADER, ["l1"], reason="why"),
        build_trace(None, TraceHeader(run_id="r", flow_id="f")),
        build_trace(ValueError("\udcff"), HEADER),
        bound(cause.replace(log_tail=tuple(f"line {i}" for i in range(5000))), 4096),
    ]


def test_header_block_layout():
    doc = build_trace(caught(_cause), HEADER, ["a", "b", "c"])
    text = render_text(doc)
    header, rest = text.split("\n\n", 1)
    assert header.splitlines() == [
        "rundossier trace",
        "run:          run_01HXYZ",
        "flow:         nightly_etl",
        "step:         load (try 2)",
        "orchestrator: python",
        "host:         myhost",
        "started:      2026-01-02T03:04:05Z",
        "failed:       2026-01-02T03:05:00Z",
        "error:        RuntimeError: db down",
    ]
    assert rest == doc.traceback_text + "\n--- last 3 log lines before the failure ---\na\nb\nc\n"


def test_untruncated_text_is_header_plus_traceback_text_byte_for_byte():
    exc = caught(_cause)
    doc = build_trace(exc, HEADER)
    text = render_text(doc)
    header, rest = text.split("\n\n", 1)
    assert rest == doc.traceback_text == "".join(traceback.format_exception(exc))
    assert text == header + "\n\n" + "".join(traceback.format_exception(exc))


@pytest.mark.parametrize(
    "header, lines",
    [
        (TraceHeader(run_id="r", flow_id="f"), ["run:          r", "flow:         f"]),
        (TraceHeader(run_id="r", flow_id="f", try_number=3), ["try:          3"]),
        (TraceHeader(run_id="r", flow_id="f", step_id="s"), ["step:         s"]),
        (TraceHeader(run_id="r", flow_id="a\nb"), ["flow:         a\\nb"]),
        (TraceHeader(run_id="r", flow_id="f", extra=(("map_index", "3"),)), ["map_index:    3"]),
    ],
)
def test_header_fields(header, lines):
    text = render_text(build_trace("boom", header))
    for line in lines:
        assert line + "\n" in text
    assert "host:" not in text and "started:" not in text


@pytest.mark.parametrize(
    "error, summary",
    [
        ("boom", "error:        boom\n"),
        ("ValueError: boom", "error:        ValueError: boom\n"),
        ("KeyError", "error:        KeyError\n"),
        ("ValueError: first\nsecond", "error:        ValueError: first [...]\n"),
        ("x" * 500, "error:        " + "x" * 200 + " [...]\n"),
    ],
)
def test_error_summary_line(error, summary):
    assert summary in render_text(build_trace(error, HEADER))


def test_uncaptured_sections():
    text = render_text(build_trace("ValueError: boom\nmore", HEADER))
    assert "\n\nno traceback captured: the error was reported as a message only" in text
    assert text.endswith("\n\nValueError: boom\nmore\n")
    text = render_text(build_trace(None, HEADER))
    assert text.endswith("\n\nno traceback captured: no error was reported\n")
    assert "error:" not in text


@pytest.mark.parametrize("fn", [_cause, _context])
def test_nodes_render_like_traceback(fn):
    """Rendered from nodes, a chain reads exactly like traceback's output (minus caret lines)."""
    exc = caught(fn)
    doc = build_trace(exc, HEADER)
    from_nodes = render_text(doc.replace(traceback_text="", truncated=True))
    expected = "".join(
        line for line in doc.traceback_text.splitlines(keepends=True) if line.strip(" ~^\n") or not line.strip()
    )
    assert from_nodes.split("\n\n", 1)[1] == expected


def test_group_renders_from_nodes():
    doc = build_trace(caught(_group), HEADER)
    text = render_text(doc.replace(traceback_text=""))
    section = text.split("\n\n", 1)[1]
    assert section.startswith("Exception Group Traceback (most recent call last):\n")
    assert "ExceptionGroup: eg (2 sub-exceptions)\n" in section
    assert "+---------------- 1 ----------------\n| Traceback (most recent call last):\n" in section
    assert "| KeyError: 'missing'\n+---------------- 2 ----------------\n| ValueError: v\n" in section
    assert section.endswith("+------------------------------------\n")


def test_markers_render_where_things_were_dropped():
    frames = tuple(Frame(f"m{i}.py", i, f"f{i}", f"call_{i}()", True) for i in range(6))
    member = (ExceptionNode("ValueError", "m", ()),)
    node = ExceptionNode(
        "ExceptionGroup",
        "eg (9 sub-exceptions)",
        frames,
        omitted_frames=40,
        group=(member,) * 3,
        omitted_exceptions=6,
    )
    doc = TraceDoc(HEADER, "ExceptionGroup", "eg", (node,), "", True, log_tail=("a", "b", "c"))
    doc = doc.replace(omitted_log_lines=7, truncated=True)
    text = render_text(doc)
    assert '  File "m1.py", line 1, in f1\n    call_1()\n  ... 40 frames omitted ...\n' in text
    assert "+---------------- 1 ----------------\n| ValueError: m\n" in text
    assert "+---------------- ... ----------------\n| ... 6 exceptions omitted ...\n" in text
    assert "+---------------- 8 ----------------\n" in text and "---- 9 ----" in text
    assert "--- last 10 log lines before the failure ---\na\n... 7 log lines omitted ...\nb\nc\n" in text


def test_repeated_frames_render_with_a_count():
    frame = Frame("rec.py", 3, "rec", "rec(n - 1)", True, repeat=41)
    doc = TraceDoc(
        HEADER,
        "RecursionError",
        "deep",
        (ExceptionNode("RecursionError", "deep", (frame,)),),
        "",
        True,
    )
    assert "    rec(n - 1)\n  [Previous line repeated 41 more times]\n" in render_text(doc)


def test_single_log_line_heading():
    text = render_text(build_trace("boom", HEADER, ["only"]))
    assert text.endswith("\n--- last 1 log line before the failure ---\nonly\n")


@pytest.mark.parametrize("index", range(7))
def test_json_round_trip(index):
    doc = _docs()[index]
    data = to_json(doc)
    assert data["version"] == 1
    encoded = json.dumps(data, ensure_ascii=False)
    encoded.encode("utf-8")
    assert from_json(json.loads(encoded)) == doc
    assert from_json(data) == doc
    render_text(doc).encode("utf-8")


def test_json_keys_are_stable():
    data = to_json(build_trace(caught(_group), HEADER, ["x"]))
    assert set(data) == {
        "version", "header", "error_type", "error_message", "chain", "traceback_text",
        "captured", "reason", "log_tail", "omitted_log_lines", "truncated",
    }  # fmt: skip
    assert set(data["header"]) == {
        "run_id", "flow_id", "step_id", "try_number", "orchestrator", "host", "started_at",
        "failed_at", "extra",
    }  # fmt: skip
    node = data["chain"][0]
    assert set(node) == {
        "type", "message", "frames", "omitted_frames", "notes", "relation", "group",
        "omitted_exceptions",
    }  # fmt: skip
    assert set(node["frames"][0]) == {"filename", "lineno", "name", "line", "in_app", "repeat"}


def test_from_json_rejects_unknown_version():
    data = to_json(build_trace("boom", HEADER))
    data["version"] = 2
    with pytest.raises(ValueError, match="version 2"):
        from_json(data)
