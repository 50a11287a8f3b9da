"""build_trace: chains, groups, pathological exceptions, string and None errors, in-app, masking."""

from __future__ import annotations

import json
import re
import sys
import traceback

import pytest

from rundossier.core.trace import (
    REASON_MESSAGE_ONLY,
    REASON_NO_ERROR,
    TraceHeader,
    build_trace,
    default_in_app,
    mask_doc,
    render_text,
    to_json,
)
from rundossier.core.trace.build import MAX_GROUP_DEPTH
from tests.core.trace.helpers import caught

HEADER = TraceHeader(run_id="run_01TEST", flow_id="nightly_etl", step_id="load", try_number=2)


def formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def assert_utf8(doc) -> None:
    render_text(doc).encode("utf-8")
    json.dumps(to_json(doc), ensure_ascii=False).encode("utf-8")


# -- chains -------------------------------------------------------------------------------------


def _cause():
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("db down") from exc


def _context():
    try:
        {}["missing"]
    except KeyError:
        raise RuntimeError("db down")  # noqa: B904 - implicit context on purpose


def _suppressed():
    try:
        {}["missing"]
    except KeyError:
        raise RuntimeError("db down") from None


@pytest.mark.parametrize(
    "fn, types, relations, separator",
    [
        (_cause, ["KeyError", "RuntimeError"], ["cause", None], "direct cause"),
        (_context, ["KeyError", "RuntimeError"], ["context", None], "During handling"),
        (_suppressed, ["RuntimeError"], [None], None),
    ],
)
def test_chain_order_relations_and_text(fn, types, relations, separator):
    exc = caught(fn)
    doc = build_trace(exc, HEADER)
    assert [n.type for n in doc.chain] == types
    assert [n.relation for n in doc.chain] == relations
    assert doc.chain[-1].message == "db down"
    assert (doc.error_type, doc.error_message) == ("RuntimeError", "db down")
    assert doc.captured and doc.reason is None and not doc.truncated
    assert doc.traceback_text == formatted(exc)
    if separator:
        assert separator in doc.traceback_text
    else:
        assert "KeyError" not in doc.traceback_text


def test_frames_point_at_the_raise_lines():
    doc = build_trace(caught(_cause), HEADER)
    root, outer = doc.chain
    assert root.frames[-1].name == "_cause" and root.frames[-1].line == '{}["missing"]'
    assert outer.frames[-1].line == 'raise RuntimeError("db down") from exc'
    assert all(isinstance(f.lineno, int) for f in outer.frames)
    assert outer.frames[-1].filename == __file__


def _nested_group():
    def inner():
        raise TypeError("inner type")

    excs = []
    for fn in (inner, lambda: int("x")):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            excs.append(exc)
    inner_group = ExceptionGroup("inner", excs)
    inner_group.add_note("inner note")
    try:
        raise ExceptionGroup("outer", [inner_group, KeyError("k")])
    except ExceptionGroup as outer:
        outer.add_note("outer note 1")
        outer.add_note("outer note\nspanning two lines")
        raise


def test_nested_exception_groups_with_notes():
    exc = caught(_nested_group)
    doc = build_trace(exc, HEADER)
    assert doc.traceback_text == formatted(exc)
    (outer,) = doc.chain
    assert outer.type == "ExceptionGroup"
    assert outer.message == "outer (2 sub-exceptions)"
    assert outer.notes == ("outer note 1", "outer note\nspanning two lines")
    assert len(outer.group) == 2
    (inner,) = outer.group[0]
    assert inner.type == "ExceptionGroup" and inner.notes == ("inner note",)
    assert [m[-1].type for m in inner.group] == ["TypeError", "ValueError"]
    assert inner.group[0][-1].frames[-1].line == 'raise TypeError("inner type")'
    (key_error,) = outer.group[1]
    assert key_error.type == "KeyError" and key_error.frames == ()


def test_group_member_with_its_own_chain():
    def member():
        try:
            raise OSError("disk")
        except OSError as exc:
            raise ValueError("bad") from exc

    def fn():
        raise ExceptionGroup("eg", [caught(member)])

    doc = build_trace(caught(fn), HEADER)
    (member_chain,) = doc.chain[-1].group
    assert [n.type for n in member_chain] == ["OSError", "ValueError"]
    assert member_chain[0].relation == "cause"


def test_groups_deeper_than_traceback_limit_keep_a_count():
    exc: BaseException = ValueError("leaf")
    for i in range(MAX_GROUP_DEPTH + 3):
        exc = ExceptionGroup(f"level {i}", [exc, TypeError(str(i))])
    doc = build_trace(exc, HEADER)
    node, depth = doc.chain[-1], 0
    while node.group:
        node, depth = node.group[0][-1], depth + 1
    assert depth == MAX_GROUP_DEPTH
    assert node.omitted_exceptions == 2
    assert_utf8(doc)


def test_thousand_member_group_keeps_every_member():
    excs = [caught(lambda i=i: (_ for _ in ()).throw(ValueError(f"m{i}"))) for i in range(1000)]
    doc = build_trace(ExceptionGroup("many", excs), HEADER)
    assert len(doc.chain[-1].group) == 1000
    assert "and 985 more exceptions" in doc.traceback_text


# -- pathological exceptions ------------------------------------------------------------------


def _recurse(n: int) -> None:
    if n == 0:
        raise RecursionError("bottom")
    _recurse(n - 1)


def test_ten_thousand_frame_recursion_collapses():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(12000)
    try:
        exc = caught(lambda: _recurse(10_000))
    finally:
        sys.setrecursionlimit(old)
    doc = build_trace(exc, HEADER)
    frames = doc.chain[-1].frames
    assert len(frames) <= 6
    rec = [f for f in frames if f.name == "_recurse"]
    assert sum(1 + f.repeat for f in rec) == 10_001
    assert max(f.repeat for f in rec) == 9_999
    assert "[Previous line repeated 9997 more times]" in doc.traceback_text
    assert doc.traceback_text == formatted(exc)


def test_fifty_mib_message_is_cut_in_the_middle():
    size = 50 << 20
    exc = caught(lambda: (_ for _ in ()).throw(ValueError("a" * (size // 2) + "b" * (size // 2))))
    doc = build_trace(exc, HEADER)
    message = doc.chain[-1].message
    assert len(message) <= 1 << 20
    assert message.startswith("aaaa") and message.endswith("bbbb")
    (count,) = re.findall(r"\.\.\. (\d+) bytes omitted \.\.\.", message)
    kept = len(message) - len(f" ... {count} bytes omitted ... ")
    assert int(count) + kept == size
    # the message line in the traceback text is cut the same way; the frames are intact
    assert len(doc.traceback_text) < (1 << 20) + 2000
    assert doc.traceback_text.startswith("Traceback (most recent call last):\n")
    assert "bytes omitted" in doc.traceback_text
    assert doc.traceback_text.endswith("bbbb\n")


@pytest.mark.parametrize(
    "message, expected",
    [
        (b"\xff\xfe", "b'\\xff\\xfe'"),
        ("\udcff", "\\udcff"),
        ("caf\u00e9 \udcff end", "caf\u00e9 \\udcff end"),
    ],
)
def test_non_utf8_messages_become_encodable(message, expected):
    exc = caught(lambda: (_ for _ in ()).throw(ValueError(message)))
    doc = build_trace(exc, HEADER)
    assert doc.chain[-1].message == expected
    assert expected in doc.traceback_text
    assert_utf8(doc)


def test_surrogates_everywhere_are_escaped():
    header = TraceHeader(run_id="run_\udcff", flow_id="f\udcfe", host="h\ud800", extra=(("k", "\udc80"),))
    exc = caught(lambda: (_ for _ in ()).throw(ValueError("x")))
    exc.add_note("note \udcff")
    doc = build_trace(exc, header, ["log \udcff", b"raw \xff"], reason="why \udcff")
    assert doc.header.run_id == "run_\\udcff"
    assert doc.log_tail == ("log \\udcff", "raw \\xff")
    assert doc.chain[-1].notes == ("note \\udcff",)
    assert_utf8(doc)


class StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


class ReprRaises(Exception):
    def __repr__(self):
        raise RuntimeError("no repr for you")


class NotesRaise(Exception):
    @property
    def __notes__(self):
        raise RuntimeError("no notes for you")


def test_exception_whose_str_raises():
    exc = caught(lambda: (_ for _ in ()).throw(StrRaises()))
    doc = build_trace(exc, HEADER)
    assert doc.error_message == "<exception str() failed>"
    assert doc.error_type == f"{__name__}.StrRaises"
    assert doc.traceback_text == formatted(exc)


def test_exception_whose_repr_raises():
    exc = caught(lambda: (_ for _ in ()).throw(ReprRaises("fine")))
    doc = build_trace(exc, HEADER)
    assert doc.error_message == "fine"
    assert doc.traceback_text == formatted(exc)


def test_exception_whose_notes_raise_falls_back_to_frames():
    exc = caught(lambda: (_ for _ in ()).throw(NotesRaise("boom")))
    doc = build_trace(exc, HEADER)
    assert doc.captured and doc.error_message == "boom"
    assert doc.chain[-1].frames
    # Python < 3.13: TracebackException raises, the fallback says why; 3.13 reports it as a note
    assert doc.reason or "no notes for you" in doc.traceback_text
    assert_utf8(doc)


@pytest.mark.parametrize(
    "make, type_, message",
    [
        (KeyboardInterrupt, "KeyboardInterrupt", ""),
        (lambda: SystemExit(3), "SystemExit", "3"),
        (SystemExit, "SystemExit", ""),
        (GeneratorExit, "GeneratorExit", ""),
    ],
)
@pytest.mark.parametrize("raised", [True, False])
def test_base_exceptions_build(make, type_, message, raised):
    exc = make()
    if raised:
        exc = caught(lambda: (_ for _ in ()).throw(exc))
    doc = build_trace(exc, HEADER)
    assert (doc.error_type, doc.error_message) == (type_, message)
    assert doc.captured
    assert bool(doc.chain[-1].frames) is raised
    assert doc.traceback_text == formatted(exc)


def test_exception_never_raised_has_no_frames():
    exc = ValueError("not raised")
    doc = build_trace(exc, HEADER)
    assert doc.captured and doc.chain[-1].frames == ()
    assert doc.traceback_text == "ValueError: not raised\n"


def test_context_cycle():
    e, e2 = ValueError("e"), TypeError("e2")
    e.__context__ = e2
    e2.__context__ = e
    doc = build_trace(e, HEADER)
    assert [n.type for n in doc.chain] == ["TypeError", "ValueError"]
    assert doc.traceback_text == formatted(e)


def test_raised_cause_cycle():
    def fn():
        try:
            raise ValueError("first")
        except ValueError as first:
            second = RuntimeError("second")
            first.__cause__ = second
            raise second from first

    exc = caught(fn)
    doc = build_trace(exc, HEADER)
    assert [n.type for n in doc.chain] == ["ValueError", "RuntimeError"]
    assert doc.traceback_text == formatted(exc)


def test_custom_exception_type_name():
    class LocalError(Exception):
        pass

    doc = build_trace(caught(lambda: (_ for _ in ()).throw(LocalError("x"))), HEADER)
    assert doc.error_type == f"{__name__}.{LocalError.__qualname__}"
    assert doc.traceback_text.endswith(f"{doc.error_type}: x\n")


# -- string and None errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, type_, message",
    [
        ("boom", None, "boom"),
        ("ValueError: boom", "ValueError", "boom"),
        ("ValueError: boom\nsecond line", "ValueError", "boom\nsecond line"),
        (
            "airflow.exceptions.AirflowException: task failed",
            "airflow.exceptions.AirflowException",
            "task failed",
        ),
        ("KeyError", "KeyError", ""),
        ("Note: disk almost full", None, "Note: disk almost full"),
        ("ValueError:no space", None, "ValueError:no space"),
        ("", None, ""),
        ("Traceback (most recent call last):", None, "Traceback (most recent call last):"),
        (
            "Crashed (SIGKILL): Process exited with status code: -9.",
            "Crashed (SIGKILL)",
            "Process exited with status code: -9.",
        ),
        ("Crashed (exit code 3): exited", "Crashed (exit code 3)", "exited"),
        ("Crashed: the process died", "Crashed", "the process died"),
        ("Crashed (no heartbeat): since 12:00", "Crashed (no heartbeat)", "since 12:00"),
        ("Crashed (: x", None, "Crashed (: x"),
    ],
)
def test_string_error(error, type_, message):
    doc = build_trace(error, HEADER, ["log line"])
    assert (doc.error_type, doc.error_message) == (type_, message)
    assert doc.captured is False and doc.chain == () and doc.traceback_text == ""
    assert doc.reason == REASON_MESSAGE_ONLY
    assert doc.log_tail == ("log line",)
    text = render_text(doc)
    assert "no traceback captured: " + REASON_MESSAGE_ONLY in text
    if "Traceback" not in error:
        assert "Traceback" not in text


def test_no_error():
    doc = build_trace(None, HEADER)
    assert (doc.error_type, doc.error_message, doc.chain) == (None, None, ())
    assert doc.reason == REASON_NO_ERROR and not doc.captured
    assert "Traceback" not in render_text(doc)


def test_reason_is_kept():
    doc = build_trace("boom", HEADER, reason="the worker was killed (SIGKILL)")
    assert doc.reason == "the worker was killed (SIGKILL)"


def test_string_error_cut_to_cap():
    doc = build_trace("x" * 10_000, HEADER, max_string_bytes=1000)
    assert len(doc.error_message.encode()) <= 1000 and "bytes omitted" in doc.error_message


# -- in-app marking, log lines, header ---------------------------------------------------------


def test_in_app_marks_test_file_but_not_stdlib():
    exc = caught(lambda: json.loads("{not json"))
    frames = build_trace(exc, HEADER).chain[-1].frames
    mine = [f for f in frames if f.filename == __file__]
    stdlib = [f for f in frames if f.filename.endswith(("json/__init__.py", "json/decoder.py"))]
    assert mine and all(f.in_app for f in mine)
    assert stdlib and not any(f.in_app for f in stdlib)


@pytest.mark.parametrize(
    "filename, expected",
    [
        (__file__, True),
        ("etl_job.py", True),
        ("<string>", True),
        ("/opt/airflow/dags/my_dag.py", True),
        (json.__file__, False),
        (traceback.__file__, False),
        ("<frozen importlib._bootstrap>", False),
        ("/venv/lib/python3.11/site-packages/airflow/models/taskinstance.py", False),
        ("/usr/lib/python3/dist-packages/requests/api.py", False),
        ("C:\\Python311\\Lib\\site-packages\\prefect\\flows.py", False),
        (build_trace.__code__.co_filename, False),
    ],
)
def test_default_in_app(filename, expected):
    assert default_in_app(filename) is expected


def test_custom_in_app_and_a_broken_one():
    exc = caught(_cause)
    doc = build_trace(exc, HEADER, in_app=lambda filename: False)
    assert not any(f.in_app for n in doc.chain for f in n.frames)

    def broken(filename):
        raise RuntimeError("classifier bug")

    doc = build_trace(exc, HEADER, in_app=broken)
    assert all(f.in_app for n in doc.chain for f in n.frames)


def test_log_lines_are_cleaned():
    doc = build_trace(None, HEADER, ["a\n", "b\r\n", "c", "x" * 500], max_string_bytes=100)
    assert doc.log_tail[:3] == ("a", "b", "c")
    assert len(doc.log_tail[3]) <= 100 and "bytes omitted" in doc.log_tail[3]


def test_header_is_kept():
    header = TraceHeader(
        run_id="run_1",
        flow_id="f",
        step_id="s",
        try_number=3,
        orchestrator="airflow",
        host="h",
        started_at="2026-01-01T00:00:00Z",
        failed_at="2026-01-01T00:01:00Z",
        extra=(("dag_run", "manual__2026"),),
    )
    assert build_trace(None, header).header == header


# -- masking ------------------------------------------------------------------------------------


def test_mask_doc_masks_every_text():
    def fn():
        secret = "hunter2"  # noqa: F841
        try:
            raise KeyError("hunter2")
        except KeyError as exc:
            exc.add_note("password=hunter2")
            raise RuntimeError("login hunter2 failed") from exc

    header = TraceHeader(run_id="run_hunter2", flow_id="f", host="hunter2.local", extra=(("k", "hunter2"),))
    doc = build_trace(caught(fn), header, ["connecting with hunter2"])
    masked = mask_doc(doc, lambda s: s.replace("hunter2", "***"))
    assert "hunter2" in render_text(doc)
    assert "hunter2" not in render_text(masked)
    assert "hunter2" not in json.dumps(to_json(masked))
    assert masked.chain[0].notes == ("password=***",)
    assert masked.error_message == "login *** failed"
    assert masked.chain[-1].frames[-1].line == 'raise RuntimeError("login *** failed") from exc'


def test_mask_doc_with_many_masks_everything_in_one_call_and_equals_one_by_one():
    from rundossier.core.masking import DEFAULT_MASKER

    def fn():
        try:
            raise KeyError("password=hunter2")
        except KeyError as exc:
            exc.add_note("token=abc123def456")
            raise RuntimeError("postgresql://etl:hunter2@db:5432/dw unreachable") from exc

    header = TraceHeader(run_id="run_x", flow_id="f", host="h", extra=(("dsn", "s3://AKIAIOSFODNN7EXAMPLE"),))
    doc = build_trace(caught(fn), header, ["api_key=sk_live_1234567890abcdef", "plain line"])
    calls: list[int] = []

    def many(texts):
        calls.append(len(texts))
        return DEFAULT_MASKER.mask_many(texts)

    together = mask_doc(doc, DEFAULT_MASKER.mask, many=many)
    assert together == mask_doc(doc, DEFAULT_MASKER.mask)
    assert len(calls) == 1 and calls[0] > 10
    text = render_text(together)
    assert "hunter2" not in text and "abc123def456" not in text and "sk_live_1234567890abcdef" not in text


@pytest.mark.parametrize("many", [None, "many"])
def test_mask_doc_leaves_a_log_tail_alone_that_was_masked_when_captured(many):
    def mask(s):
        return s.replace("hunter2", "***")

    doc = build_trace(ValueError("hunter2"), HEADER, ["already masked: ***", "hunter2 stays"])
    kw = {"many": lambda texts: [mask(t) for t in texts]} if many else {}
    masked = mask_doc(doc, mask, log_tail_masked=True, **kw)
    assert masked.log_tail == ("already masked: ***", "hunter2 stays")
    assert masked.error_message == "***"
    assert mask_doc(doc, mask, **kw).log_tail == ("already masked: ***", "*** stays")


def test_mask_doc_refuses_a_many_that_loses_texts():
    with pytest.raises(ValueError, match="returned 0 texts"):
        mask_doc(build_trace("boom", HEADER), str, many=lambda texts: [])


def test_mask_errors_propagate():
    def mask(s):
        raise RuntimeError("masker broken")

    with pytest.raises(RuntimeError):
        mask_doc(build_trace("boom", HEADER), mask)


def _cause_of_context():
    try:
        _context()
    except RuntimeError as exc:
        raise ValueError("outer") from exc


def _noted():
    exc = ValueError("with notes")
    exc.add_note("first note")
    exc.add_note("second\nnote")
    raise exc


def _deep(n):
    if n:
        _deep(n - 1)
    raise OSError(5, "I/O error", "/data/x.csv")


def _group_in_chain():
    try:
        raise ExceptionGroup("batch", [ValueError("a"), TypeError("b")])
    except ExceptionGroup as eg:
        raise RuntimeError("after the group") from eg


@pytest.mark.parametrize(
    "make",
    [
        lambda: caught(_cause),
        lambda: caught(_context),
        lambda: caught(_suppressed),
        lambda: caught(_cause_of_context),
        lambda: caught(_noted),
        lambda: caught(_deep, 50),  # repeated frames: "[Previous line repeated N more times]"
        lambda: caught(compile, "x = (", "<job>", "exec"),  # SyntaxError: its own caret lines
        lambda: ValueError("never raised, no traceback"),
        lambda: caught(_group_in_chain),  # a group: traceback's own format() prints it
    ],
)
def test_text_is_what_traceback_prints(make):
    exc = make()
    assert build_trace(exc, HEADER).traceback_text == formatted(exc)
