"""Failure traces: exception -> trace document -> bounded, masked, rendered text and JSON.

Pure functions, no I/O. The intended pipeline, in the process where the failure happened:
`build_trace` -> `mask_doc` -> `fingerprint` -> `bound` -> `render_text` / `to_json`.
"""

from __future__ import annotations

from rundossier.core.trace.bound import MIN_MAX_BYTES, bound
from rundossier.core.trace.build import REASON_MESSAGE_ONLY, REASON_NO_ERROR, build_trace, default_in_app, mask_doc
from rundossier.core.trace.chain import exceptions_in, group_members, printed_chain
from rundossier.core.trace.fingerprint import fingerprint, message_fingerprint, normalize_message
from rundossier.core.trace.model import (
    MARKER_BYTES,
    MARKER_EXCEPTIONS,
    MARKER_FRAMES,
    MARKER_LOG_LINES,
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
)
from rundossier.core.trace.render import from_json, render_text, to_json, to_stored_json

__all__ = [
    "Frame",
    "ExceptionNode",
    "TraceHeader",
    "TraceDoc",
    "build_trace",
    "exceptions_in",
    "printed_chain",
    "group_members",
    "default_in_app",
    "mask_doc",
    "REASON_MESSAGE_ONLY",
    "REASON_NO_ERROR",
    "render_text",
    "to_json",
    "to_stored_json",
    "from_json",
    "bound",
    "MIN_MAX_BYTES",
    "MARKER_FRAMES",
    "MARKER_LOG_LINES",
    "MARKER_BYTES",
    "MARKER_EXCEPTIONS",
    "fingerprint",
    "message_fingerprint",
    "normalize_message",
]
