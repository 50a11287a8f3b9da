"""fingerprint(): one group per bug, stable across runs, line shifts and varying message data."""

from __future__ import annotations

import hashlib
import importlib
import json
import linecache
import re

import pytest

from rundossier.core.trace import (
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
    bound,
    build_trace,
    fingerprint,
    normalize_message,
)
from rundossier.core.trace.fingerprint import canonical_json
from tests.core.trace.helpers import caught

#: the module (the package exports the function under the same name)
fingerprint_module = importlib.import_module("rundossier.core.trace.fingerprint")
HEADER = TraceHeader(run_id="run_01TEST", flow_id="nightly_etl")


def fp(error, **kwargs) -> str | None:
    return fingerprint(build_trace(error, HEADER, **kwargs))


ETL_SOURCE = """\
def load(rows, mode):
    total = 0
    for row in rows:
        total += row
    if mode == "strict":
        raise ValueError(f"load {total} rows at 2026-01-0{len(rows)}T00:00:00Z failed")
    raise ValueError(f"load {total} rows failed")


def run(rows, mode="strict"):
    return load(rows, mode)
"""


def etl_module(blank_lines: int, source: str = ETL_SOURCE, filename: str = "etl_job.py") -> dict:
    """`source` compiled as `filename`, shifted down by `blank_lines` lines (linecache knows it)."""
    text = "\n" * blank_lines + source
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(text, filename, "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _forget_etl_source():
    yield
    linecache.cache.pop("etl_job.py", None)


def test_shape_and_none():
    value = fp(ValueError("x"))
    assert re.fullmatch(r"[0-9a-f]{16}", value)
    assert fp(None) is None


def test_same_bug_different_data_in_message_same_group():
    mod = etl_module(0)
    first = caught(mod["run"], [1, 2, 3])
    second = caught(mod["run"], [10, 20, 30, 40, 50, 60, 70])
    assert str(first) != str(second)
    assert fp(first) == fp(second)


@pytest.mark.parametrize("shift", [1, 7, 250])
def test_line_shift_keeps_the_group(shift):
    base = caught(etl_module(0)["run"], [1])
    base_doc = build_trace(base, HEADER)
    shifted = caught(etl_module(shift)["run"], [1])
    shifted_doc = build_trace(shifted, HEADER)
    assert base_doc.chain[-1].frames[-1].lineno + shift == shifted_doc.chain[-1].frames[-1].lineno
    assert shifted_doc.chain[-1].frames[-1].line.startswith("raise ValueError")
    assert fingerprint(base_doc) == fingerprint(shifted_doc)


def test_two_raise_lines_in_one_function_differ():
    mod = etl_module(0)
    strict = caught(mod["run"], [1], "strict")
    lenient = caught(mod["run"], [1], "lenient")
    assert fp(strict) != fp(lenient)


def test_different_type_differs():
    source = ETL_SOURCE.replace('raise ValueError(f"load {total} rows failed")', "raise KeyError(total)")
    first = caught(etl_module(0)["run"], [1], "lenient")
    other = caught(etl_module(0, source)["run"], [1], "lenient")
    assert type(first) is not type(other)
    assert fp(first) != fp(other)


def test_different_cause_type_differs():
    def fail(cause):
        try:
            raise cause
        except Exception as exc:
            raise RuntimeError("step failed") from exc

    assert fp(caught(fail, KeyError("a"))) != fp(caught(fail, OSError("a")))


def _recurse(n):
    if n == 0:
        raise RecursionError("bottom")
    _recurse(n - 1)


def test_recursion_depth_does_not_matter():
    assert fp(caught(_recurse, 20)) == fp(caught(_recurse, 200))


def test_library_only_failure_uses_library_frames_and_normalized_message():
    import json

    def parse(text):
        return json.loads(text)

    not_mine = {"in_app": lambda filename: "json" in filename and "site" not in filename}
    # with every frame treated as library code, the message decides
    library = {"in_app": lambda filename: False}
    a = caught(parse, '{"a": 1,,}')
    b = caught(parse, '{"bbbbbb": 22222,,}')
    c = caught(parse, "[1, 2")
    assert fp(a, **library) == fp(b, **library)  # same error, positions differ
    assert fp(a, **library) != fp(c, **library)  # a different parse error
    assert fp(a, **not_mine) != fp(a, **library)


@pytest.mark.parametrize(
    "first, second, same",
    [
        ("ValueError: user 123 not found", "ValueError: user 98765 not found", True),
        (
            "timeout after 30s at 2026-01-02T03:04:05Z",
            "timeout after 5s at 2027-11-12 13:14:15",
            True,
        ),
        ("ValueError: user 1 not found", "KeyError: user 1 not found", False),
        ("disk full", "permission denied", False),
        ("boom", "ValueError: boom", False),
    ],
)
def test_string_errors(first, second, same):
    assert (fp(first) == fp(second)) is same


def test_group_member_order_and_repeats_do_not_matter():
    def member(kind):
        raise kind("x")

    a, b = caught(member, ValueError), caught(member, TypeError)
    c = caught(member, ValueError)
    assert fp(ExceptionGroup("eg", [a, b])) == fp(ExceptionGroup("eg", [b, c, a]))
    assert fp(ExceptionGroup("eg", [a])) != fp(ExceptionGroup("eg", [b]))


#: Changing the recipe regroups every failure ever recorded: bump fingerprint.VERSION on purpose.
PINNED = "598cb893f2883d17"


def test_pinned_value_is_stable_across_runs():
    frame = Frame("/srv/app/etl_job.py", 6, "load", "raise ValueError(msg)", True)
    node = ExceptionNode("ValueError", "load 3 rows failed", (frame,))
    doc = TraceDoc(HEADER, "ValueError", "load 3 rows failed", (node,), "", True)
    moved = Frame("/other/checkout/etl_job.py", 60, "load", "  raise ValueError(msg)  ", True)
    moved_doc = doc.replace(chain=(ExceptionNode("ValueError", "other 4", (moved,)),))
    assert fingerprint(doc) == fingerprint(moved_doc) == PINNED


def test_fingerprint_before_bound_is_the_one_to_keep():
    doc = build_trace(caught(_recurse, 5), HEADER, [f"line {i}" for i in range(100_000)])
    assert fingerprint(bound(doc, 8192)) == fingerprint(doc)  # only log lines were cut


@pytest.mark.parametrize(
    "message, expected",
    [
        ("user 12345 not found", "user <n> not found"),
        ("at 2026-01-02T03:04:05.123+00:00 and 2026-01-02", "at <ts> and <ts>"),
        ("run 123e4567-e89b-12d3-a456-426614174000 failed", "run <uuid> failed"),
        ("KeyError: 'customer_id'", "KeyError: '<str>'"),
        ('column "amount" missing', 'column "<str>" missing'),
        ("can't connect: it's down", "can't connect: it's down"),
        ("object at 0x7f3a2b1c4d50", "object at <hex>"),
        ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8", "commit <hex>"),
        ("no such file /data/2026/01/part-0001.csv", "no such file <path>"),
        ("no such file C:\\data\\in\\x.csv", "no such file <path>"),
        ("see s3://bucket/key/1", "see <url>"),
        ("mail ops@example.com", "mail <email>"),
        ("task run_01HXQ3ZP7K9 lost", "task <id> lost"),
        ("  many   spaces\n\tand lines ", "many spaces and lines"),
        ("plain words stay", "plain words stay"),
    ],
)
def test_normalize_message(message, expected):
    assert normalize_message(message) == expected


def test_normalize_message_is_bounded():
    assert len(normalize_message("word " * 1_000_000)) <= 2048


@pytest.mark.parametrize(
    "payload",
    [
        ["rundossier-fp-1", "ValueError", [["ValueError", [["etl_job.py", "load", "raise ValueError(msg)"]]]]],
        [chr(c) * 2 for c in range(128)],  # every ASCII character, controls and DEL included
        ["caf\u00e9", "\u65e5\u672c", "\U0001f600", 'quote " and \\ backslash'],
        ["lone \ud800 surrogate"],  # orjson refuses it: the stdlib path takes over
        [],
        [[[[]]], "", "x"],
    ],
)
def test_canonical_json_is_the_stdlib_recipe(payload):
    expected = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    assert canonical_json(payload) == expected


def test_non_ascii_frames_keep_their_pinned_group():
    frame = Frame("/srv/app/\u00e9tl_job.py", 6, "charg\u00e9", "raise ValueError('\u00e9\x7f')", True)
    node = ExceptionNode("ValueError", "x", (frame,))
    doc = TraceDoc(HEADER, "ValueError", "x", (node,), "", True)
    payload = ["rundossier-fp-1", "ValueError", [["ValueError", [["\u00e9tl_job.py", "charg\u00e9", frame.line]]]]]
    data = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    assert fingerprint(doc) == hashlib.sha256(data).hexdigest()[:16]


def test_basename_numbers_in_generated_names_are_normalised():
    names = [f"/a/<ipython-input-{i}-x>" for i in range(10)]
    assert [fingerprint_module._basename(n) for n in names] == ["<ipython-input-<n>-x>"] * 10
    assert fingerprint_module._basename("/b/etl_job.py") == "etl_job.py"
