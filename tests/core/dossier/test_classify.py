"""Classification: each class from its evidence, the order between them, and the evidence kept."""

from __future__ import annotations

import pytest

from rundossier.core.dossier.classify import (
    CLASSES,
    ORDER,
    ErrorNode,
    FailureFacts,
    chain_from_data,
    classify,
    error_class,
)
from tests.core.dossier.streams import event, t


def facts(chain=(), status="failed", events=None, **kw) -> FailureFacts:
    return FailureFacts(
        status=status,
        chain=tuple(ErrorNode(ty, m) for ty, m in chain),
        events=events or {},
        step_id=kw.pop("step_id", "load"),
        try_number=kw.pop("try_number", 1),
        **kw,
    )


def ev(kind: str, at: float = 50, **kw):
    return {kind: [event(kind, at, "load", 1, **kw)]}


CASES = [
    # killed
    (facts(events=ev("step_killed", data={"signal": 9})), "killed", "high"),
    (facts(events=ev("heartbeat_lost")), "killed", "high"),
    (facts([("airflow.exceptions.AirflowTaskTerminated", "Task received SIGTERM signal")]), "killed", "high"),
    (facts([("MemoryError", "")]), "killed", "high"),
    (facts([("", "Task exited with return code Negsignal.SIGKILL")]), "killed", "medium"),
    (
        facts([("RuntimeError", "Executor reports task finished (failed); was the task killed externally?")]),
        "killed",
        "medium",
    ),
    (facts(status="crashed"), "killed", "medium"),
    # timeout
    (facts(events=ev("step_timeout")), "timeout", "high"),
    (facts([("airflow.exceptions.AirflowTaskTimeout", "Timeout, PID: 42")]), "timeout", "high"),
    (facts([("TimeoutError", "")]), "timeout", "high"),
    (facts([("httpx.ReadTimeout", "The read operation timed out")]), "timeout", "high"),
    (facts([("RuntimeError", "job 17 timed out after 300s")]), "timeout", "medium"),
    # upstream
    (facts(status="upstream_failed"), "upstream", "high"),
    (facts(events=ev("upstream_failed", data={"upstream": ["extract"]})), "upstream", "high"),
    (
        facts([("prefect.exceptions.UpstreamTaskError", "Upstream task run 'x' did not reach a COMPLETED state")]),
        "upstream",
        "high",
    ),
    # pre-work
    (facts([("ModuleNotFoundError", "No module named 'pandas'")]), "pre_work", "high"),
    (facts([("ImportError", "cannot import name 'x' from 'y'")]), "pre_work", "high"),
    (facts([("prefect.exceptions.ParameterBindError", "Error binding parameters")]), "pre_work", "high"),
    (facts([("botocore.exceptions.NoCredentialsError", "Unable to locate credentials")]), "pre_work", "high"),
    (facts([("RuntimeError", "dbt is not installed on this worker")]), "pre_work", "medium"),
    (
        facts([("KeyError", "'x'")], status="failed", started_at=t(0), failed_at=t(3), work_reported=True),
        "pre_work",
        "low",
    ),
    (facts([("KeyError", "'x'")], claimed=False, failed_at=t(3)), "pre_work", "low"),
    # write-back
    (facts(events=ev("write_back_failed")), "write_back", "high"),
    (facts([("OSError", "[Errno 28] No space left on device")]), "write_back", "medium"),
    (facts([("boto3.exceptions.S3UploadFailedError", "Failed to upload out.parquet")]), "write_back", "high"),
    (facts([("KeyError", "'x'")], events=ev("last_work", 40), failed_at=t(45)), "write_back", "medium"),
    # rate limited
    (facts([("openai.RateLimitError", "Rate limit reached")]), "rate_limited", "high"),
    (
        facts([("botocore.exceptions.ClientError", "An error occurred (ThrottlingException) when calling ...")]),
        "rate_limited",
        "medium",
    ),
    (
        facts([("requests.exceptions.HTTPError", "429 Client Error: Too Many Requests for url")]),
        "rate_limited",
        "medium",
    ),
    # unavailable
    (facts([("ConnectionRefusedError", "[Errno 111] Connection refused")]), "unavailable", "high"),
    (facts([("socket.gaierror", "[Errno -2] Name or service not known")]), "unavailable", "high"),
    (facts([("psycopg.OperationalError", "connection failed: could not connect to server")]), "unavailable", "medium"),
    (facts([("requests.exceptions.HTTPError", "503 Server Error: Service Unavailable")]), "unavailable", "medium"),
    (facts([("ConnectionError", "timeout"), ("WarehouseError", "db down")]), "unavailable", "high"),
    # data
    (facts([("pydantic_core._pydantic_core.ValidationError", "1 validation error for Row")]), "data", "high"),
    (facts([("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1")]), "data", "high"),
    (facts([("ValueError", "could not convert string to float: 'abc'")]), "data", "medium"),
    (facts([("sqlalchemy.exc.IntegrityError", 'duplicate key value violates unique constraint "pk"')]), "data", "high"),
    # unknown
    (facts([("KeyError", "'customer_id'")]), "unknown", "low"),
    (facts(), "unknown", "low"),
]


@pytest.mark.parametrize(("f", "code", "confidence"), CASES)
def test_each_class_from_its_evidence(f: FailureFacts, code: str, confidence: str) -> None:
    c = classify(f)
    assert (c.code, c.confidence) == (code, confidence)
    assert c.evidence, "every call comes with the evidence that made it"
    assert c.label and c.summary


def test_evidence_names_the_exception_and_its_place_in_the_chain() -> None:
    c = classify(facts([("ConnectionRefusedError", "[Errno 111] Connection refused"), ("LoadError", "load failed")]))
    e = c.evidence[0]
    assert "ConnectionRefusedError" in e.text and "the root cause" in e.text
    assert e.fields == {"type": "ConnectionRefusedError", "message": "[Errno 111] Connection refused"}
    assert e.source == "exception chain"


def test_evidence_of_a_message_only_failure_reads_as_the_message() -> None:
    e = classify(facts([("", "quota exceeded for project 42")])).evidence[0]
    assert e.text == "quota exceeded for project 42 (the error; 'quota exceeded' in the message)"


def test_event_evidence_keeps_the_raw_fields() -> None:
    c = classify(facts(events=ev("step_killed", summary="OOMKilled", data={"reason": "oom", "exit_code": 137})))
    e = c.evidence[0]
    assert e.fields["data"] == {"reason": "oom", "exit_code": 137}
    assert e.source.startswith("event step_killed #")
    assert "OOMKilled" in e.text


@pytest.mark.parametrize(
    ("f", "code", "also"),
    [
        # a kill beats whatever exception the dying process reported
        (facts([("ConnectionResetError", "reset")], events=ev("step_killed")), "killed", "unavailable"),
        # a timeout type beats the connection error it wraps
        (facts([("ConnectionError", "x"), ("TimeoutError", "")]), "timeout", "unavailable"),
        # failing after the last work event is write-back, even when the cause is a connection error
        (facts([("ConnectionError", "x")], events=ev("last_work", 40), failed_at=t(45)), "write_back", "unavailable"),
        # a connection error beats a data error raised while handling it
        (facts([("ConnectionError", "x"), ("ValueError", "bad")]), "unavailable", "data"),
        # a type beats a word in another message
        (facts([("ValueError", "bad row"), ("RuntimeError", "timed out")]), "timeout", "data"),
    ],
)
def test_order_between_classes(f: FailureFacts, code: str, also: str) -> None:
    c = classify(f)
    assert c.code == code
    assert also in c.also


def test_before_first_work_only_counts_when_the_run_reports_work_events() -> None:
    base = dict(started_at=t(0), failed_at=t(3))
    assert classify(facts([("KeyError", "'x'")], work_reported=False, **base)).code == "unknown"
    assert classify(facts([("KeyError", "'x'")], work_reported=True, **base)).code == "pre_work"
    after_work = facts([("KeyError", "'x'")], work_reported=True, first_work=t(1), **base)
    assert classify(after_work).code == "unknown"


def test_order_mentions_every_class_but_unknown() -> None:
    assert {code for code, _ in ORDER} == set(CLASSES) - {"unknown"}


def test_error_type_and_message_are_used_without_a_chain() -> None:
    f = FailureFacts(status="failed", error_type="ConnectionRefusedError", error_message="refused")
    assert classify(f).code == "unavailable"


def test_classification_is_deterministic() -> None:
    f = facts([("ConnectionError", "x"), ("ValueError", "bad")], events=ev("rate_limited"))
    assert classify(f) == classify(f)


def test_long_messages_are_clipped_in_evidence() -> None:
    c = classify(facts([("ConnectionRefusedError", "x" * 5000)]))
    assert len(c.evidence[0].text) < 400


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"chain": [{"type": "A", "message": "a"}, {"type": "B", "message": "b"}]}, (("A", "a"), ("B", "b"))),
        ({"chain": [["A", "a"]]}, (("A", "a"),)),
        ({"chain": [{"type": "A"}]}, (("A", ""),)),
        ({"chain": "nope"}, ()),
        ({"chain": [1, None, {"message": "no type"}]}, ()),
        (None, ()),
        ("text", ()),
    ],
)
def test_chain_from_event_data_is_tolerant(data, expected) -> None:
    assert tuple((n.type, n.message) for n in chain_from_data(data)) == expected


# -- case-blind matching without re.IGNORECASE ---------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "lowered"),
    [
        (r"\bSIG(?:KILL|TERM)\b", r"\bsig(?:kill|term)\b"),
        (r"environment variable \S+ not set", r"environment variable \S+ not set"),
        (r"\bOOM\b|PutObject", r"\boom\b|putobject"),
        (r"violates (?:\w+ )*constraint", r"violates (?:\w+ )*constraint"),
        (r"\\Path", r"\\path"),
    ],
)
def test_pattern_literals_are_lowered_and_escapes_kept(pattern: str, lowered: str) -> None:
    from rundossier.core.dossier.classify import _lower_literals

    assert _lower_literals(pattern) == lowered


@pytest.mark.parametrize(
    ("message", "code", "shown"),
    [
        ("Task received SIGKILL", "killed", "SIGKILL"),
        ("worker was OOM-Killed", "killed", "OOM"),
        ("Read TIMED OUT after 30s", "timeout", "TIMED OUT"),
        ("HTTP 429 Too Many Requests", "rate_limited", "429"),
        ("Environment variable WAREHOUSE_DSN is not set", "pre_work", "Environment variable WAREHOUSE_DSN is not set"),
        ("İstanbul: Connection Refused by host", "unavailable", "connection refused"),  # lower() changes the length
    ],
)
def test_messages_match_in_any_case_and_evidence_quotes_the_text(message: str, code: str, shown: str) -> None:
    from rundossier.core.dossier.classify import _MESSAGES, _search

    text = f"RuntimeError: {message}"
    assert _search(_MESSAGES[code], text, text.lower()) == shown


@pytest.mark.parametrize("text", ["killed", "was killed", "_killed", "xkilled", "9killed", "(killed)", "k killed"])
@pytest.mark.parametrize("pattern", [r"\bkilled\b", r"\bkill", r"\b50[234]\b"])
def test_a_leading_word_boundary_moved_behind_the_first_literal_matches_the_same(pattern: str, text: str) -> None:
    import re

    from rundossier.core.dossier.classify import _literal_first

    moved = _literal_first(pattern)
    assert not moved.startswith("\\b")
    assert [m.span() for m in re.finditer(moved, text)] == [m.span() for m in re.finditer(pattern, text)]
    assert [m.span() for m in re.finditer(moved, "503 x503 503x")] == [
        m.span() for m in re.finditer(pattern, "503 x503 503x")
    ]


NO_EVENTS = [(f, code) for f, code, _ in CASES if not f.events and f.claimed and not f.work_reported]


@pytest.mark.parametrize(("f", "code"), NO_EVENTS)
def test_error_class_is_classify_for_status_and_error_alone(f: FailureFacts, code: str) -> None:
    assert error_class(f.status, f.chain, f.error_type, f.error_message) == code == classify(f).code


@pytest.mark.parametrize(
    ("error_type", "message", "code"),
    [
        ("ConnectionError", "refused", "unavailable"),
        (None, "ValueError: invalid input row 3", "data"),
        (None, None, "unknown"),
        (None, "x" * 10_000 + " connection refused", "unavailable"),  # a long message is classified in full
    ],
)
def test_error_class_without_a_chain(error_type, message, code) -> None:
    f = FailureFacts(status="failed", error_type=error_type, error_message=message)
    assert error_class("failed", (), error_type, message) == classify(f).code == code


def test_error_class_with_a_chain_ignores_the_error_fields() -> None:
    chain = (ErrorNode("TimeoutError", "read timed out after 30s"),)
    assert {error_class("failed", chain) for _ in range(5)} == {"timeout"}
    assert error_class("failed", chain, "ValueError", "other text") == "timeout"
    assert error_class("failed", (), "ValueError", "y" * 10_000) == "data"
