"""How step logs are stored and read back: gzipped JSON lines and live snapshots (pure).

`jsonl` encodes, decodes and formats the stored lines; `live` the snapshots of a running step's
log that follow mode reads; `levels` how severe a line is (the `level=` filter).
"""

from __future__ import annotations

from rundossier.core.logs.jsonl import LogLine, decode_lines, encode_lines, format_line, gunzip_stream, gzip_bytes
from rundossier.core.logs.levels import MinLevel, at_least, severity
from rundossier.core.logs.live import LiveSnapshot, decode_live, encode_live

__all__ = [
    "LogLine",
    "LiveSnapshot",
    "MinLevel",
    "at_least",
    "severity",
    "decode_lines",
    "decode_live",
    "encode_live",
    "encode_lines",
    "format_line",
    "gunzip_stream",
    "gzip_bytes",
]
