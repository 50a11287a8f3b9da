"""From a failure to the bytes that get stored: trace document, masking, size bound, gzip (pure)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rundossier.core.trace import (
    MIN_MAX_BYTES,
    ExceptionNode,
    TraceDoc,
    TraceHeader,
    bound,
    build_trace,
    fingerprint,
    mask_doc,
    render_text,
    to_stored_json,
)

GZIP_LEVEL = 1  # traces are small; speed on the failing task beats the last 20% of size


@dataclass(frozen=True)
class FailureArtifacts:
    """A failure ready to store: the bounded, masked trace in its two forms, gzipped."""

    doc: TraceDoc
    #: the stored trace text (what `text_gz` holds, before gzip)
    text: str
    text_gz: bytes
    json_gz: bytes
    text_bytes: int
    fingerprint: str | None

    @property
    def error_type(self) -> str | None:
        return self.doc.error_type

    @property
    def error_message(self) -> str | None:
        return self.doc.error_message


def build_failure(
    error: BaseException | str | None,
    header: TraceHeader,
    log_tail: Sequence[str] = (),
    *,
    mask: Callable[[str], str],
    mask_many: Callable[[Sequence[str]], Sequence[str]] | None = None,
    max_bytes: int,
    reason: str | None = None,
    log_tail_masked: bool = False,
) -> FailureArtifacts:
    """Exception (or message) -> masked, bounded trace text and JSON, gzipped.

    The cap on single strings keeps a 50 MiB message from being masked in full: nothing longer
    than the whole trace budget can end up in the trace anyway. `log_tail_masked`: the log
    lines were masked when they were captured, so they are not masked twice. Both blobs fit in
    `max_bytes` (before gzip), dropped parts marked.
    """
    doc = build_trace(error, header, log_tail, reason=reason, max_string_bytes=max_bytes)
    masked = mask_doc(doc, mask, many=mask_many, log_tail_masked=log_tail_masked)
    group = fingerprint(masked)  # before bound(): dropping frames must not move a failure to another group
    doc = bound(masked, max_bytes)
    text_str = render_text(doc)
    text = text_str.encode("utf-8")
    doc_json = json_bytes(to_stored_json(doc))
    budget = max_bytes
    while len(doc_json) > max_bytes and budget > MIN_MAX_BYTES:
        # the JSON form can outgrow the text (escapes, structure): bound it too, on a smaller budget
        budget = max(MIN_MAX_BYTES, int(budget * max_bytes / len(doc_json) * 0.9))
        doc_json = json_bytes(to_stored_json(bound(masked, budget)))
    return FailureArtifacts(
        doc=doc,
        text=text_str,
        text_gz=gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0),
        json_gz=gzip.compress(doc_json, compresslevel=GZIP_LEVEL, mtime=0),
        text_bytes=len(text),
        fingerprint=group,
    )


def error_json(error_type: str | None, message: str | None, trace_url: str | None = None) -> dict[str, Any] | None:
    """The one error shape: {"type", "message", "trace_url"?}; None when there is no error."""
    if error_type is None and message is None:
        return None
    out: dict[str, Any] = {"type": error_type, "message": message}
    if trace_url:
        out["trace_url"] = trace_url
    return out


def json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the same bytes as `json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`.

    orjson writes it about 15 times faster (a trace document: 3.5 us instead of 55); anything it
    refuses (an int beyond 64 bits, a lone surrogate a user mask put back) goes through `json`
    with every non-ASCII character escaped, which always encodes."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


#: bounds of the chain summary kept in a `step_failed` event (the full chain is in the trace)
CHAIN_MAX_NODES = 8
CHAIN_MAX_MESSAGE = 300


def chain_summary(doc: TraceDoc) -> list[dict[str, str]]:
    """Every exception of the (masked) chain as {"type", "message"}, root cause first, bounded.

    Members of an exception group come just before the group itself. This is what the dossier classifies when the
    trace itself is not at hand (or has expired).
    """
    nodes: list[dict[str, str]] = []

    def walk(chain: Sequence[ExceptionNode]) -> None:
        for node in chain:
            message = node.message.strip()
            if len(message) > CHAIN_MAX_MESSAGE:
                message = message[: CHAIN_MAX_MESSAGE - 3] + "..."
            for member in node.group:
                walk(member)
            nodes.append({"type": node.type, "message": message})

    walk(doc.chain)
    if not nodes and (doc.error_type or doc.error_message):
        nodes.append({"type": doc.error_type or "", "message": (doc.error_message or "")[:CHAIN_MAX_MESSAGE]})
    if len(nodes) > CHAIN_MAX_NODES:
        half = CHAIN_MAX_NODES // 2
        nodes = nodes[:half] + nodes[-half:]
    return nodes


__all__ = ["FailureArtifacts", "build_failure", "chain_summary", "error_json", "json_bytes", "CHAIN_MAX_NODES"]
