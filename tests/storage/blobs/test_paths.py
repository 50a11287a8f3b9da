"""Tests for blob key encoding: safe, injective segments and the key layout (one folder per run)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rundossier.core.ids import RUN_STEP
from rundossier.storage.blobs.paths import (
    BLOB_NAMES,
    EMPTY_SEGMENT,
    LOG,
    LOG_INDEX,
    LOG_LIVE,
    MAX_SEGMENT_BYTES,
    TRACE_JSON,
    TRACE_TEXT,
    blob_key,
    decode_segment,
    encode_segment,
    is_blob_name,
    log_index,
    log_part_name,
    log_parts_prefix,
    row_step,
    run_prefix,
    step_prefix,
    structured_trace,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

REALISTIC = [
    "manual__2026-11-22T00:00:00+00:00",
    "scheduled__2026-11-21T06:30:00.123456+00:00",
    "backfill__2026-01-01T00:00:00+00:00",
    "dataset_triggered__2026-11-22T00:00:00+05:30",
    "run_01JD3Z4M8Q2N6K7T9V0W1X2Y3Z",
    "group.task",
    "outer_group.inner_group.task_id",
    "task[3]",
    "extract.part",
    "my flow/etl",
    "my flow\\etl",
    "Flow With Spaces",
    "größe-über-ß",
    "数据管道",
    "emoji 🚀 flow",
    "..",
    ".",
    ".hidden",
    "...",
    "a..b",
    "trailing.",
    "",
    "%",
    "%25",
    "%empty",
    "100%",
    "~tilde",
    "_run",
    "-",
    "_",
    "nul\x00byte",
    "line\nbreak",
    "cr\rlf\r\n",
    "tab\there",
    "\x7f",
    "a/b/c",
    "../../etc/passwd",
    "C:\\Windows",
    "question?star*[bracket]",
    "colon:plus+equals=amp&hash#",
    "x" * 180,
    "x" * 181,
    "é" * 30,
    "é" * 31,
]


@pytest.mark.parametrize("value", REALISTIC)
def test_encoded_segment_is_safe(value: str) -> None:
    seg = encode_segment(value)
    assert seg not in ("", ".", "..")
    assert not seg.startswith(".")
    assert "/" not in seg and "\\" not in seg
    assert not _CONTROL.search(seg)
    assert seg.isascii()
    assert not set(seg) & set("*?[]:+ ")
    assert len(seg.encode()) <= MAX_SEGMENT_BYTES


@pytest.mark.parametrize("value", [v for v in REALISTIC if "~" not in encode_segment(v)])
def test_round_trip(value: str) -> None:
    assert decode_segment(encode_segment(value)) == value


def test_realistic_values_are_distinct() -> None:
    encoded = [encode_segment(v) for v in REALISTIC]
    assert len(set(encoded)) == len(REALISTIC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("manual__2026-11-22T00:00:00+00:00", "manual__2026-11-22T00%3A00%3A00%2B00%3A00"),
        ("group.task", "group.task"),
        ("my:dag", "my%3Adag"),
        ("my flow/etl", "my%20flow%2Fetl"),
        ("task[3]", "task%5B3%5D"),
        ("..", "%2E."),
        (".", "%2E"),
        (".hidden", "%2Ehidden"),
        ("", EMPTY_SEGMENT),
        ("%", "%25"),
        ("é", "%C3%A9"),
        ("a\x00b", "a%00b"),
        ("a\nb", "a%0Ab"),
        ("~", "%7E"),
    ],
)
def test_known_encodings(value: str, expected: str) -> None:
    assert encode_segment(value) == expected


def test_empty_is_distinct_from_lookalikes() -> None:
    assert encode_segment("") == "%empty"
    assert encode_segment("%empty") == "%25empty"
    assert encode_segment("\x00empty") == "%00empty"
    assert len({encode_segment(v) for v in ("", "%empty", "\x00empty", "empty")}) == 4


def test_long_values_are_hashed_and_stay_distinct() -> None:
    a = "dag_" + "x" * 496
    b = "dag_" + "x" * 495 + "y"
    ea, eb = encode_segment(a), encode_segment(b)
    assert len(a) == len(b) == 500
    assert ea != eb
    assert ea[:150] == eb[:150] == a[:150]
    assert re.fullmatch(r"[^~]{1,150}~[0-9a-f]{16}", ea)
    assert encode_segment(a) == ea  # deterministic


def test_hash_prefix_never_splits_an_escape() -> None:
    for pad in range(4):
        value = "a" * pad + ":" * 200
        seg = encode_segment(value)
        prefix = seg.split("~")[0]
        assert re.fullmatch(r"a*(?:%3A)*", prefix), seg
        assert len(prefix) <= 150


def test_segment_at_the_limit_is_not_hashed() -> None:
    assert encode_segment("x" * 180) == "x" * 180
    assert "~" in encode_segment("x" * 181)
    assert "~" not in encode_segment("é" * 30)  # 180 encoded bytes
    assert "~" in encode_segment("é" * 31)


def test_hashed_segment_cannot_be_decoded() -> None:
    with pytest.raises(ValueError, match="hashed"):
        decode_segment(encode_segment("z" * 300))


@pytest.mark.parametrize("bad", ["", ".", "..", ".x", "a/b", "%", "%4", "%zz", "%3a", "a b", "%FF", "ä"])
def test_decode_rejects_what_the_encoder_never_writes(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_segment(bad)


def test_encode_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        encode_segment(3)  # type: ignore[arg-type]


def test_lone_surrogate_round_trips() -> None:
    assert decode_segment(encode_segment("a\ud800b")) == "a\ud800b"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100), st.text(max_size=100))
def test_encode_is_injective(a: str, b: str) -> None:
    if a != b:
        assert encode_segment(a) != encode_segment(b)
    else:
        assert encode_segment(a) == encode_segment(b)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_encode_is_safe_and_round_trips(value: str) -> None:
    seg = encode_segment(value)
    assert "/" not in seg and "\\" not in seg
    assert seg not in ("", ".", "..") and not seg.startswith(".")
    assert not _CONTROL.search(seg)
    if "~" not in seg:
        assert decode_segment(seg) == value


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=60, max_size=400))
def test_long_values_keep_distinct(value: str) -> None:
    assert encode_segment(value) != encode_segment(value + "x")


# -- keys --------------------------------------------------------------------------------------


def test_blob_key_layout() -> None:
    key = blob_key("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00", "extract.part", 1, TRACE_TEXT)
    assert key == ("airflow/my%3Adag/manual__2026-11-22T00%3A00%3A00%2B00%3A00/extract.part.1.trace.txt.gz")
    assert key.startswith(run_prefix("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00") + "/")
    assert (
        key
        == step_prefix("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00", "extract.part", 1) + ".trace.txt.gz"
    )


def test_run_level_and_no_try() -> None:
    key = blob_key("python", "etl", "run_01ABC", None, None, LOG)
    assert key == "python/etl/run_01ABC/_run.0.log.jsonl.gz"


def test_step_named_run_is_not_run_level() -> None:
    run_level = blob_key("python", "etl", "r", None, 1, TRACE_TEXT)
    step = blob_key("python", "etl", "r", "_run", 1, TRACE_TEXT)
    assert run_level != step
    assert step.split("/")[3] == "%5Frun.1.trace.txt.gz"
    assert parse_name(step.split("/")[3])[0] == "%5Frun"
    assert decode_segment("%5Frun") == "_run"


def test_row_step() -> None:
    assert row_step(RUN_STEP) is None
    assert row_step("extract") == "extract"
    assert blob_key("p", "f", "r", row_step(RUN_STEP), 1, LOG) == "p/f/r/_run.1.log.jsonl.gz"


def test_prefect_flow_with_slash_stays_one_segment() -> None:
    key = blob_key("prefect", "my flow/etl", "run_1", "load data", 2, TRACE_JSON)
    assert key.split("/") == ["prefect", "my%20flow%2Fetl", "run_1", "load%20data.2.trace.json.gz"]


def test_a_run_is_one_folder() -> None:
    """Every blob of a run but log parts sits directly in the run's folder."""
    prefix = run_prefix("airflow", "dag", "run_1")
    for step in (None, "extract", "group.task", "a/b", "x" * 500):
        for name in BLOB_NAMES:
            key = blob_key("airflow", "dag", "run_1", step, 7, name)
            assert key.rsplit("/", 1)[0] == prefix
        part = blob_key("airflow", "dag", "run_1", step, 7, log_part_name(3))
        folder = log_parts_prefix("airflow", "dag", "run_1", step, 7)
        assert part == folder + "/000003.jsonl.gz"
        assert folder.rsplit("/", 1)[0] == prefix


def parse_name(filename: str) -> tuple[str, int, str]:
    """Read (step segment, try, blob name) back from a file name, from the right (the documented parse)."""
    names = r"trace\.txt\.gz|trace\.json\.gz|log\.jsonl\.gz|log\.index\.json|log\.live\.jsonl\.gz"
    m = re.fullmatch(r"(.+)\.([0-9]+)\.(" + names + ")", filename)
    assert m, filename
    return m.group(1), int(m.group(2)), m.group(3)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=60).filter(lambda s: s != RUN_STEP),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(BLOB_NAMES),
)
def test_file_names_parse_back_uniquely(step: str, try_number: int, name: str) -> None:
    filename = blob_key("python", "f", "r", step, try_number, name).rsplit("/", 1)[1]
    assert parse_name(filename) == (encode_segment(step), try_number, name)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.text(max_size=20), st.integers(0, 20), st.sampled_from(BLOB_NAMES)),
    st.tuples(st.text(max_size=20), st.integers(0, 20), st.sampled_from(BLOB_NAMES)),
)
def test_keys_are_injective(a: tuple[str, int, str], b: tuple[str, int, str]) -> None:
    ka, kb = (blob_key("python", "f", "r", *x) for x in (a, b))
    assert (ka == kb) == (a == b)


def test_file_names_fit_every_filesystem() -> None:
    """The longest file name: a hashed step segment, a big try number, the longest blob name."""
    filename = blob_key("p", "f", "r", "z" * 1000, 10**9, LOG_LIVE).rsplit("/", 1)[1]
    assert len(filename.encode()) <= 255
    parts = log_parts_prefix("p", "f", "r", "z" * 1000, 10**9).rsplit("/", 1)[1]
    assert len(parts.encode()) <= 255


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p/f/r/t.1.trace.txt.gz", "p/f/r/t.1.trace.json.gz"),
        ("s3://b/p/f/r/_run.0.trace.txt.gz", "s3://b/p/f/r/_run.0.trace.json.gz"),
        ("p/f/r/t/1/trace.txt.gz", "p/f/r/t/1/trace.json.gz"),  # the legacy layout
        ("trace.txt.gz", None),
        ("p/f/r/xtrace.txt.gz", None),
        ("p/f/r/t.1.log.jsonl.gz", None),
        ("", None),
    ],
)
def test_structured_trace(text: str, expected: str | None) -> None:
    assert structured_trace(text) == expected


@pytest.mark.parametrize(
    ("orch", "flow", "run", "step"),
    [
        ("airflow", "..", ".", ".hidden"),
        ("airflow", "", "", ""),
        ("../..", "a/b", "c\\d", "e\x00f"),
        ("prefect", "x" * 500, "y" * 500, "z" * 500),
    ],
)
def test_keys_have_exactly_four_safe_segments(orch: str, flow: str, run: str, step: str) -> None:
    key = blob_key(orch, flow, run, step, 3, TRACE_TEXT)
    parts = key.split("/")
    assert len(parts) == 4
    assert all(p not in ("", ".", "..") and not p.startswith(".") for p in parts)


def test_runs_sharing_a_prefix_do_not_nest() -> None:
    a = run_prefix("airflow", "dag", "run_1")
    b = run_prefix("airflow", "dag", "run_10")
    assert not b.startswith(a + "/")


def test_log_parts() -> None:
    assert log_part_name(0) == "log.parts/000000.jsonl.gz"
    assert log_part_name(42) == "log.parts/000042.jsonl.gz"
    assert log_part_name(999_999) == "log.parts/999999.jsonl.gz"
    names = [log_part_name(n) for n in (0, 1, 9, 10, 100, 12345)]
    assert names == sorted(names)
    key = blob_key("airflow", "d", "r", "t", 1, log_part_name(7))
    assert key == "airflow/d/r/t.1.log.parts/000007.jsonl.gz"


@pytest.mark.parametrize("n", [-1, 1_000_000, 1.5, True, "3"])
def test_log_part_rejects_bad_numbers(n: object) -> None:
    with pytest.raises(ValueError):
        log_part_name(n)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["", "trace.txt", "../trace.txt.gz", "log.parts/1.jsonl.gz", "log.parts/../../x", "other.gz"],
)
def test_unknown_blob_names_are_refused(name: str) -> None:
    assert not is_blob_name(name)
    with pytest.raises(ValueError, match="unknown blob name"):
        blob_key("airflow", "d", "r", "t", 1, name)


@pytest.mark.parametrize("try_number", [-1, True, 1.0, "1"])
def test_bad_try_numbers_are_refused(try_number: object) -> None:
    with pytest.raises(ValueError):
        blob_key("airflow", "d", "r", "t", try_number, LOG)  # type: ignore[arg-type]


def test_known_names() -> None:
    assert set(BLOB_NAMES) == {TRACE_TEXT, TRACE_JSON, LOG, LOG_INDEX, LOG_LIVE}
    assert all(is_blob_name(n) for n in BLOB_NAMES)


@pytest.mark.parametrize(
    ("log", "index"),
    [
        ("p/f/r/step.1.log.jsonl.gz", "p/f/r/step.1.log.index.json"),
        ("s3://b/p/f/r/a.b.2.log.jsonl.gz", "s3://b/p/f/r/a.b.2.log.index.json"),
        ("p/f/r/step.1.log.parts/", None),
        ("p/f/r/step.1.trace.txt.gz", None),
        ("p/f/r/steplog.jsonl.gz", None),
    ],
)
def test_the_log_index_sits_beside_its_log(log: str, index: str | None) -> None:
    assert log_index(log) == index
