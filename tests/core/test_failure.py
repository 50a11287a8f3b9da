"""From a failure to stored bytes: the JSON writer and the artifacts build_failure returns."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from rundossier.core.failure import build_failure, chain_summary, json_bytes
from rundossier.core.trace import TraceHeader, to_stored_json
from tests.core.trace.helpers import caught

HEADER = TraceHeader(run_id="run_01TEST", flow_id="nightly_etl", step_id="load", try_number=2)


def stdlib(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@pytest.mark.parametrize(
    "obj",
    [
        {},
        [],
        {"a": None, "b": True, "c": False, "d": 0, "e": -7, "f": 2**63 - 1},
        {"quote": 'say "hi"', "backslash": "C:\\path\\x", "slash": "a/b"},
        {"controls": "tab\tnl\ncr\r\x00\x01\x1f\x7f"},
        {"unicode": "caf\u00e9 \u4e2d\u6587 \U0001f600 \u2028\u2029", "escaped": "\\udcff"},
        {"nested": [{"frames": [{"line": "x = 1", "in_app": True, "repeat": 0}]}, [[["deep"]]]]},
        {"ordered": {"z": 1, "a": 2, "m": 3}},
        ["x" * 100_000],
    ],
)
def test_json_bytes_are_what_the_stdlib_writes(obj: Any) -> None:
    assert json_bytes(obj) == stdlib(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"huge": 2**70},  # beyond 64 bits
        {"surrogate": "lone \udcff"},  # what a user mask could put back
    ],
)
def test_json_bytes_fall_back_to_escaped_ascii(obj: Any) -> None:
    data = json_bytes(obj)
    data.decode("ascii")  # every non-ASCII character escaped
    assert json.loads(data) == obj


def _fail() -> None:
    try:
        raise ConnectionError("timeout to postgresql://etl:hunter2@db:5432/dw")
    except ConnectionError as exc:
        raise RuntimeError("load failed: caf\u00e9") from exc


def test_build_failure_stores_the_masked_document_in_both_forms() -> None:
    art = build_failure(
        caught(_fail),
        HEADER,
        ["2026-11-22T00:00:00.000Z stdout loading"],
        mask=lambda s: s.replace("hunter2", "***"),
        max_bytes=10 << 20,
    )
    doc = json.loads(gzip.decompress(art.json_gz))
    assert doc == json.loads(json.dumps(to_stored_json(art.doc)))
    assert doc["traceback_text"] == ""  # the text blob holds it; the chain holds the same frames
    text = gzip.decompress(art.text_gz).decode("utf-8")
    assert art.text_bytes == len(text.encode("utf-8"))
    for form in (text, json.dumps(doc, ensure_ascii=False)):
        assert "hunter2" not in form and "***" in form and "load failed: caf\u00e9" in form
    assert art.error_type == "RuntimeError" and art.error_message == "load failed: caf\u00e9"
    assert [n["type"] for n in chain_summary(art.doc)] == ["ConnectionError", "RuntimeError"]
    assert art.fingerprint


def _raise_message(message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize(
    "message",
    ["x" * 10_000_000, '"' * 9_000_000, "\u00e9" * 5_000_000, "\\n" * 4_000_000],
    ids=["ascii", "quotes-escape-to-twice", "two-byte-chars", "backslashes"],
)
def test_both_stored_forms_fit_the_cap_however_the_message_escapes(message: str) -> None:
    cap = 10 << 20
    art = build_failure(caught(lambda: _raise_message(message)), HEADER, ["a log line"] * 50, mask=str, max_bytes=cap)
    text = gzip.decompress(art.text_gz)
    raw = gzip.decompress(art.json_gz)
    assert len(text) <= cap and len(raw) <= cap
    doc = json.loads(raw)
    assert len(doc["error_message"].encode()) <= 4000 and "bytes omitted" in doc["error_message"]
    assert doc["chain"][-1]["type"] == "ValueError" and doc["chain"][-1]["message"]


def test_a_message_only_failure_keeps_its_message_in_the_json() -> None:
    art = build_failure("SomeError: " + "y" * 5000, HEADER, (), mask=str, max_bytes=10 << 20)
    doc = json.loads(gzip.decompress(art.json_gz))
    assert doc["chain"] == [] and doc["error_message"] == "y" * 5000
