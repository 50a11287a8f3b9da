"""Secrets that span lines of a log: a PEM private key printed line by line (pure, no I/O).

A step's log is masked one line at a time (a line is stored as soon as it is written), so the
built-in PEM family never sees a key's BEGIN, body and END together when `print(key)` writes
them as separate lines. `KeyBlocks` remembers, per stream, that a `-----BEGIN ... PRIVATE
KEY-----` header was seen without its END: the lines that follow are key material and become
`***` (blank lines kept: an encrypted key has one), up to and including the body before the END
line. A line that is not key material ends the block (a truncated key), as in one text.

The state is one flag per stream, so memory stays flat, and it lives with the step's log, so a
key split across two log parts (a long log spilled to storage) is masked all the same.
"""

from __future__ import annotations

import re
import threading

from rundossier.core.masking.builtin import MASK

_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
# a line of key material: base64, the `Proc-Type: 4,ENCRYPTED` / `DEK-Info: ...` headers, and
# the `|` margin of an exception group's members in a printed traceback
_MATERIAL = re.compile(r"(?:[A-Za-z0-9+/=:,.\\|\ \t\r]|-(?!----))*+")


class KeyBlocks:
    """Per-stream memory of an open PEM private key, for masking a log line by line."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def line(self, stream: str, raw: str, masked: str) -> str:
        """The text to store for `raw`, given `masked` (`raw` through the masker)."""
        with self._lock:
            if stream in self._open:
                end = _END.search(raw)
                if end is not None:
                    self._open.discard(stream)
                    if not raw[: end.start()].strip():
                        return masked
                    indent = raw[: len(raw) - len(raw.lstrip())]
                    tail = _END.search(masked)
                    return indent + MASK + (masked[tail.start() :] if tail is not None else end.group())
                if not raw.strip():
                    return masked
                if _MATERIAL.fullmatch(raw):
                    return raw[: len(raw) - len(raw.lstrip())] + MASK
                self._open.discard(stream)
            begins = list(_BEGIN.finditer(raw))
            if begins and _END.search(raw, begins[-1].end()) is None:
                self._open.add(stream)
            return masked

    def open(self, stream: str) -> bool:
        """True while `stream` is inside a private key (its END not seen yet)."""
        return stream in self._open


__all__ = ["KeyBlocks"]
