"""Step log capture: Python logging and stdout/stderr of one step into bounded gzipped JSONL.

`StepLog` buffers and spills one step's lines, `capture` feeds it from logging and the standard
streams, and `jsonl` encodes, decodes and formats the stored lines.
"""

from __future__ import annotations

from rundossier.record.capture import capture, capture_errors
from rundossier.core.logs.jsonl import (
    LogLine,
    decode_lines,
    encode_lines,
    format_line,
    gunzip_stream,
    gzip_bytes,
)
from rundossier.core.logs.live import LiveSnapshot, decode_live, encode_live
from rundossier.record.steplog import StepLog

__all__ = [
    "LogLine",
    "LiveSnapshot",
    "StepLog",
    "capture",
    "capture_errors",
    "decode_lines",
    "decode_live",
    "encode_live",
    "encode_lines",
    "format_line",
    "gunzip_stream",
    "gzip_bytes",
]
