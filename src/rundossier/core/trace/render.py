"""Render a `TraceDoc` as the downloadable text, and to/from the JSON form the UI reads.

Text layout: a header block ("rundossier trace", then one `label: value` line per known field,
values on one line with newlines escaped, the error as a one-line summary, and a "reason:" line
when a captured trace carries one), a blank line, the traceback section, then the log tail:

- captured, with `traceback_text`: that text byte for byte (what `traceback` printed);
- captured, without it (`bound()` cut the chain): rendered from the nodes in traceback's layout,
  with "... N frames omitted ..." where frames were dropped; exception groups use a simplified
  box ("+---- 1 ----" separators, member lines prefixed with "| ");
- not captured: "no traceback captured: <reason>", then the reported error, if any.

The log tail follows as "--- last N log lines before the failure ---" and the lines, with
"... N log lines omitted ..." where `bound()` dropped some.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rundossier.core.trace.model import (
    CAUSE,
    CONTEXT,
    MARKER_EXCEPTIONS,
    MARKER_FRAMES,
    MARKER_LOG_LINES,
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
    cut_middle,
    head_count,
    sanitize,
    utf8_len,
)

JSON_VERSION = 1
SUMMARY_CHARS = 200  # of the message's first line, in the header's "error:" line

_CAUSE_MESSAGE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_MESSAGE = "\nDuring handling of the above exception, another exception occurred:\n\n"


def render_text(doc: TraceDoc) -> str:
    """The downloadable text of `doc` (always encodes to UTF-8)."""
    return sanitize("".join(_pieces(doc)))


def _pieces(doc: TraceDoc) -> Iterator[str]:
    yield from _header_pieces(doc)
    yield from _section_pieces(doc)
    yield from _log_pieces(doc)


def _text_size(pieces: Iterable[str], stop: int | None = None) -> int:
    """UTF-8 size of the joined `pieces`; stops counting once above `stop`."""
    total = 0
    for piece in pieces:
        total += utf8_len(piece)
        if stop is not None and total > stop:
            return total
    return total


# -- header -------------------------------------------------------------------------------------


def _header_pieces(doc: TraceDoc) -> Iterator[str]:
    h = doc.header
    yield "rundossier trace\n"
    yield _field("run", h.run_id)
    yield _field("flow", h.flow_id)
    if h.step_id is not None:
        step = h.step_id if h.try_number is None else f"{h.step_id} (try {h.try_number})"
        yield _field("step", step)
    elif h.try_number is not None:
        yield _field("try", str(h.try_number))
    yield _field("orchestrator", h.orchestrator)
    for label, value in (("host", h.host), ("started", h.started_at), ("failed", h.failed_at)):
        if value is not None:
            yield _field(label, value)
    for key, value in h.extra:
        yield _field(key, value)
    summary = _error_summary(doc.error_type, doc.error_message)
    if summary is not None:
        yield _field("error", summary)
    if doc.captured and doc.reason:
        yield _field("reason", doc.reason)
    yield "\n"


def _field(label: str, value: Any) -> str:
    return f"{label + ':':<13} {_one_line(value)}\n"


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text


def _error_summary(error_type: str | None, message: str | None) -> str | None:
    """The header's one-line error: type and first message line, cut to SUMMARY_CHARS."""
    if error_type is None and message is None:
        return None
    first, more = "", False
    if message:
        head = message[: SUMMARY_CHARS + 1]
        newline = head.find("\n")
        first = head if newline < 0 else head[:newline]
        more = newline >= 0
        if len(first) > SUMMARY_CHARS:
            first, more = first[:SUMMARY_CHARS], True
    if error_type:
        error_type = error_type[:SUMMARY_CHARS]
    text = f"{error_type}: {first}" if error_type and message else (error_type or first)
    return text + " [...]" if more else text


# -- traceback section --------------------------------------------------------------------------


def _section_pieces(doc: TraceDoc) -> Iterator[str]:
    if not doc.captured:
        yield f"no traceback captured: {_one_line(doc.reason or 'no reason was given')}\n"
        if doc.error_type is not None or doc.error_message is not None:
            yield "\n"
            yield from _final_line(doc.error_type, doc.error_message, "")
    elif doc.traceback_text:
        yield doc.traceback_text
    else:
        yield from _chain_pieces(doc.chain, "")


def _chain_pieces(chain: tuple[ExceptionNode, ...], prefix: str) -> Iterator[str]:
    last = len(chain) - 1
    for i, node in enumerate(chain):
        yield from _node_pieces(node, prefix)
        if i < last:
            if node.relation == CAUSE:
                separator = _CAUSE_MESSAGE
            elif node.relation == CONTEXT:
                separator = _CONTEXT_MESSAGE
            else:
                separator = "\n"
            for line in separator.splitlines(keepends=True):
                yield prefix + line if line.strip() else prefix.rstrip() + "\n"


def _node_pieces(node: ExceptionNode, prefix: str) -> Iterator[str]:
    is_group = bool(node.group) or node.omitted_exceptions > 0
    frames = node.frames
    if frames or node.omitted_frames:
        kind = "Exception Group Traceback" if is_group else "Traceback"
        yield f"{prefix}{kind} (most recent call last):\n"
        rest = frames
        if node.omitted_frames:
            head = head_count(len(frames))
            for frame in frames[:head]:
                yield from _frame_pieces(frame, prefix)
            yield f"{prefix}  {MARKER_FRAMES.format(n=node.omitted_frames)}\n"
            rest = frames[head:]
        for frame in rest:
            yield from _frame_pieces(frame, prefix)
    yield from _final_line(node.type, node.message, prefix)
    for note in node.notes:
        if prefix:
            for line in note.split("\n"):
                yield f"{prefix}{line}\n"
        else:
            yield note
            yield "\n"
    if is_group:
        yield from _group_pieces(node, prefix)


def _group_pieces(node: ExceptionNode, prefix: str) -> Iterator[str]:
    members = node.group
    omitted = node.omitted_exceptions
    head = head_count(len(members)) if omitted else len(members)
    inner = prefix + "| "
    for index, member in enumerate(members):
        if omitted and index == head:
            yield f"{prefix}+---------------- ... ----------------\n"
            yield f"{inner}{MARKER_EXCEPTIONS.format(n=omitted)}\n"
        number = index + 1 if index < head else index + 1 + omitted
        yield f"{prefix}+---------------- {number} ----------------\n"
        yield from _chain_pieces(member, inner)
    if omitted and head == len(members):
        yield f"{prefix}+---------------- ... ----------------\n"
        yield f"{inner}{MARKER_EXCEPTIONS.format(n=omitted)}\n"
    yield f"{prefix}+------------------------------------\n"


def _frame_pieces(frame: Frame, prefix: str) -> Iterator[str]:
    yield f'{prefix}  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
    if frame.line:
        yield f"{prefix}    {frame.line}\n"
    if frame.repeat:
        plural = "s" if frame.repeat > 1 else ""
        yield f"{prefix}  [Previous line repeated {frame.repeat} more time{plural}]\n"


def _final_line(error_type: str | None, message: str | None, prefix: str) -> Iterator[str]:
    """'Type: message' as traceback prints it ('Type' alone for an empty message)."""
    if not message:
        yield f"{prefix}{error_type or ''}\n"
        return
    if prefix and "\n" in message:
        message = message.replace("\n", "\n" + prefix)
    yield f"{prefix}{error_type}: " if error_type else prefix
    yield message
    yield "\n"


# -- log tail -----------------------------------------------------------------------------------


def _log_heading(total: int) -> str:
    plural = "s" if total != 1 else ""
    return f"\n--- last {total} log line{plural} before the failure ---\n"


def _log_pieces(doc: TraceDoc) -> Iterator[str]:
    lines = doc.log_tail
    omitted = doc.omitted_log_lines
    total = len(lines) + omitted
    if total == 0:
        return
    yield _log_heading(total)
    head = head_count(len(lines)) if omitted else len(lines)
    for line in lines[:head]:
        yield line + "\n"
    if omitted:
        yield MARKER_LOG_LINES.format(n=omitted) + "\n"
        for line in lines[head:]:
            yield line + "\n"


# -- JSON ---------------------------------------------------------------------------------------


def to_json(doc: TraceDoc) -> dict[str, Any]:
    """The structured form of `doc` for the UI: JSON-serializable, stable keys, "version": 1."""
    h = doc.header
    return {
        "version": JSON_VERSION,
        "header": {
            "run_id": h.run_id,
            "flow_id": h.flow_id,
            "step_id": h.step_id,
            "try_number": h.try_number,
            "orchestrator": h.orchestrator,
            "host": h.host,
            "started_at": h.started_at,
            "failed_at": h.failed_at,
            "extra": [[k, v] for k, v in h.extra],
        },
        "error_type": doc.error_type,
        "error_message": doc.error_message,
        "chain": [_node_json(n) for n in doc.chain],
        "traceback_text": doc.traceback_text,
        "captured": doc.captured,
        "reason": doc.reason,
        "log_tail": list(doc.log_tail),
        "omitted_log_lines": doc.omitted_log_lines,
        "truncated": doc.truncated,
    }


#: the top-level `error_message` of a stored document whose chain holds the message in full
STORED_SUMMARY_BYTES = 4000


def to_stored_json(doc: TraceDoc) -> dict[str, Any]:
    """`to_json(doc)` without what the stored text trace already holds: with a chain, the printed
    `traceback_text` (the `.txt` blob is that text) is left out and the top-level `error_message`
    (the last node's message, again) is cut to STORED_SUMMARY_BYTES with a marker. A 10 MB
    message is then stored once in the JSON, not three times."""
    data = to_json(doc)
    if doc.chain:
        data["traceback_text"] = ""
        if doc.error_message:
            data["error_message"] = cut_middle(doc.error_message, STORED_SUMMARY_BYTES)
    return data


def _node_json(node: ExceptionNode) -> dict[str, Any]:
    return {
        "type": node.type,
        "message": node.message,
        "frames": [
            {
                "filename": f.filename,
                "lineno": f.lineno,
                "name": f.name,
                "line": f.line,
                "in_app": f.in_app,
                "repeat": f.repeat,
            }
            for f in node.frames
        ],
        "omitted_frames": node.omitted_frames,
        "notes": list(node.notes),
        "relation": node.relation,
        "group": [[_node_json(n) for n in member] for member in node.group],
        "omitted_exceptions": node.omitted_exceptions,
    }


def from_json(data: dict[str, Any]) -> TraceDoc:
    """The `TraceDoc` that `to_json` produced `data` from; ValueError for an unknown version."""
    version = data.get("version")
    if version != JSON_VERSION:
        raise ValueError(
            f"unsupported trace document version {version!r}; this rundossier reads version "
            f"{JSON_VERSION} (upgrade rundossier to read newer documents)"
        )
    h = data["header"]
    header = TraceHeader(
        run_id=h["run_id"],
        flow_id=h["flow_id"],
        step_id=h.get("step_id"),
        try_number=h.get("try_number"),
        orchestrator=h.get("orchestrator", "python"),
        host=h.get("host"),
        started_at=h.get("started_at"),
        failed_at=h.get("failed_at"),
        extra=tuple((k, v) for k, v in h.get("extra", ())),
    )
    return TraceDoc(
        header=header,
        error_type=data.get("error_type"),
        error_message=data.get("error_message"),
        chain=tuple(_node_from_json(n) for n in data.get("chain", ())),
        traceback_text=data.get("traceback_text", ""),
        captured=bool(data.get("captured", False)),
        reason=data.get("reason"),
        log_tail=tuple(data.get("log_tail", ())),
        omitted_log_lines=int(data.get("omitted_log_lines", 0)),
        truncated=bool(data.get("truncated", False)),
    )


def _node_from_json(data: dict[str, Any]) -> ExceptionNode:
    return ExceptionNode(
        type=data["type"],
        message=data.get("message", ""),
        frames=tuple(
            Frame(
                filename=f["filename"],
                lineno=f.get("lineno"),
                name=f["name"],
                line=f.get("line", ""),
                in_app=bool(f.get("in_app", True)),
                repeat=int(f.get("repeat", 0)),
            )
            for f in data.get("frames", ())
        ),
        omitted_frames=int(data.get("omitted_frames", 0)),
        notes=tuple(data.get("notes", ())),
        relation=data.get("relation"),
        group=tuple(tuple(_node_from_json(n) for n in member) for member in data.get("group", ())),
        omitted_exceptions=int(data.get("omitted_exceptions", 0)),
    )


__all__ = ["render_text", "to_json", "from_json", "JSON_VERSION"]
