"""A private key printed over several lines of a step's log is masked across lines and parts."""

from __future__ import annotations

import gzip
import io
import json
import sys

import pytest

from rundossier.core.masking import DEFAULT_MASKER, MASK, KeyBlocks
from rundossier.record.capture import capture
from rundossier.record.steplog import StepLog

BODY = [
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9OiQx9VpqPl1uQvYQk8Hc2rVtEwL",
    "Zm9vYmFyYmF6cXV4cXV1eHF1dXpaZ2xvcmtibGFyZ2ZsYXJnd2liYmxld29iYmxl",
    "c2VjcmV0a2V5bWF0ZXJpYWxzaG91bGRuZXZlcmxlYWt0aGlzaXNmYWtlZmFrZWZh==",
]
PEM = ["-----BEGIN RSA PRIVATE KEY-----", *BODY, "-----END RSA PRIVATE KEY-----"]


def _messages(data: bytes) -> list[str]:
    with gzip.open(io.BytesIO(data), "rt") as f:
        return [json.loads(line)["message"] for line in f]


def _log(**kw: object) -> StepLog:
    return StepLog(mask=DEFAULT_MASKER.mask, **kw)  # type: ignore[arg-type]


def _leaked(messages: list[str]) -> list[str]:
    text = "\n".join(messages)
    return [b for b in BODY if b[:16] in text or b[-16:] in text]


def test_a_key_printed_line_by_line_is_masked() -> None:
    log = _log()
    for line in ["loading key:", *PEM, "done"]:
        log.write("stdout", line)
    out = _messages(log.finish())
    assert out == ["loading key:", PEM[0], MASK, MASK, MASK, PEM[-1], "done"]


def test_body_before_the_end_line_and_secrets_after_it() -> None:
    log = _log()
    log.write("stdout", "key = '''-----BEGIN PRIVATE KEY-----" + BODY[0])
    log.write("stdout", "    " + BODY[1])
    log.write("stdout", BODY[2] + "-----END PRIVATE KEY-----''' password=hunter2")
    out = _messages(log.finish())
    assert out == [
        "key = '''-----BEGIN PRIVATE KEY-----***",
        "    ***",
        "***-----END PRIVATE KEY-----''' password=***",
    ]


def test_encrypted_key_headers_and_blank_line_are_inside_the_block() -> None:
    log = _log()
    lines = [
        "-----BEGIN RSA PRIVATE KEY-----",
        "Proc-Type: 4,ENCRYPTED",
        "DEK-Info: AES-128-CBC,3F17F5316E2BAC89",
        "",
        *BODY,
        "-----END RSA PRIVATE KEY-----",
    ]
    for line in lines:
        log.write("stderr", line)
    out = _messages(log.finish())
    assert out == [lines[0], MASK, MASK, "", MASK, MASK, MASK, lines[-1]]


def test_a_truncated_key_ends_at_the_first_line_that_is_not_key_material() -> None:
    log = _log()
    for line in [PEM[0], BODY[0], "Traceback (most recent call last):", BODY[1]]:
        log.write("stdout", line)
    out = _messages(log.finish())
    assert out == [PEM[0], MASK, "Traceback (most recent call last):", BODY[1]]


def test_streams_are_followed_apart() -> None:
    log = _log()
    log.write("stdout", PEM[0])
    log.write("stderr", "WARNING: something (else)")
    log.write("stdout", BODY[0])
    log.write("stderr", BODY[1])  # no key open on stderr: an ordinary line
    log.write("stdout", PEM[-1])
    out = _messages(log.finish())
    assert out == [PEM[0], "WARNING: something (else)", MASK, BODY[1], PEM[-1]]


def test_a_key_split_across_spilled_parts() -> None:
    spilled: list[bytes] = []
    log = StepLog(mask=DEFAULT_MASKER.mask, chunk_bytes=64, spill=lambda n, data: spilled.append(data))
    log.write("stdout", "x" * 80)
    for line in PEM:
        log.write("stdout", line)
    final = log.finish()
    assert len(spilled) >= 2  # the key's lines went out in different parts
    out = _messages(b"".join(spilled) + final)
    assert out == ["x" * 80, PEM[0], MASK, MASK, MASK, PEM[-1]]
    assert not _leaked(out)


def test_print_of_a_key_through_capture(capsys: pytest.CaptureFixture[str]) -> None:
    log = _log()
    key = "\n".join(PEM)
    with capture(log):
        print("service account key:")
        print(key)
        sys.stderr.write(key + "\n")
    out = _messages(log.finish())
    assert not _leaked(out)
    assert out.count(MASK) == 2 * len(BODY)
    assert log.tail() and not _leaked(log.tail())
    capsys.readouterr()  # the terminal still got the user's own output


def test_key_blocks_unit() -> None:
    blocks = KeyBlocks()
    assert blocks.line("s", PEM[0], PEM[0]) == PEM[0] and blocks.open("s")
    assert blocks.line("s", BODY[0], BODY[0]) == MASK
    assert blocks.line("s", PEM[-1], PEM[-1]) == PEM[-1] and not blocks.open("s")
    assert blocks.line("s", BODY[0], BODY[0]) == BODY[0]
    one_line = PEM[0] + "***" + PEM[-1]
    assert blocks.line("s", "\n".join(PEM), one_line) == one_line and not blocks.open("s")
