"""A stable 16-hex-character group key for a failure: the same bug gets the same fingerprint.

Recipe (version "rundossier-fp-1"): sha256 over a canonical JSON list of

- the outermost exception's type, then for every node of the chain (root cause first): its type
  and its in-app frames as (file basename, function name, stripped source line), consecutive
  duplicates folded. Line numbers never enter it, so an unrelated edit that shifts lines keeps
  the group, while two raise statements in one function differ by their source text. Exception
  group members contribute their chains' signatures as a sorted set (member order and how many
  times the same failure repeats do not matter).
- When no frame of the whole chain is in-app (the failure is entirely inside libraries), each
  node contributes its library frames as (file basename, function name) plus its
  `normalize_message(message)`.
- A reported error string (no chain): the parsed type prefix (or "") and the normalized message.

File basenames of pseudo-files ("<ipython-input-3-...>") and purely numeric ones (notebook
cells) have their digits replaced. No error at all gives None. Compute it before `bound()`:
dropped frames change it.
"""

from __future__ import annotations

import hashlib
import json
import re

import orjson

from rundossier.core.trace.model import ExceptionNode, TraceDoc

VERSION = "rundossier-fp-1"
#: Characters of a message looked at by `normalize_message` (the rest is ignored).
MAX_MESSAGE_CHARS = 2048

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), placeholder)
    for pattern, placeholder in (
        # ISO-8601 dates and timestamps: 2026-01-02, 2026-01-02T03:04:05.123+00:00
        (
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?",
            "<ts>",
        ),
        (
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
            "<uuid>",
        ),
        # quoted strings' contents (an apostrophe inside a word is not a quote)
        (r"(?<!\w)'[^'\n]*'(?!\w)", "'<str>'"),
        (r'"[^"\n]*"', '"<str>"'),
        (r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+", "<url>"),
        (r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", "<email>"),
        # paths: absolute (/a/b, C:\a\b) or relative with at least two separators
        (r"(?:[A-Za-z]:)?(?:[\\/][\w.~@+-]+){2,}[\\/]?", "<path>"),
        (r"\b[\w.~@+-]+(?:[\\/][\w.~@+-]+){2,}[\\/]?", "<path>"),
        (r"\b0[xX][0-9a-fA-F]+\b", "<hex>"),
        (r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b", "<hex>"),
        # ids: words of 6+ characters mixing letters and digits (run_01HX..., job-4f3a2b9)
        (r"\b(?=[A-Za-z_-]*\d)(?=\d*[A-Za-z_-])[A-Za-z0-9_-]{6,}\b", "<id>"),
        (r"\d+(?:\.\d+)?", "<n>"),
        (r"\s+", " "),
    )
)


def normalize_message(message: str) -> str:
    """`message` with the parts that vary between occurrences of one bug replaced.

    Replaced, in order: ISO timestamps (<ts>), UUIDs (<uuid>), the contents of quoted strings
    ('<str>'), URLs (<url>), e-mail addresses (<email>), paths with two or more separators
    (<path>), hex numbers and long hex strings (<hex>), words mixing letters and digits of six
    or more characters (<id>) and numbers (<n>); whitespace runs become one space. Only the
    first MAX_MESSAGE_CHARS characters are looked at.
    """
    text = message[:MAX_MESSAGE_CHARS]
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()


def fingerprint(doc: TraceDoc) -> str | None:
    """The group key of `doc`'s failure (16 hex characters), None when no error was reported."""
    if doc.chain:
        in_app = _has_in_app(doc.chain)
        payload: list[object] = [
            VERSION,
            doc.chain[-1].type,
            [_node_signature(node, in_app) for node in doc.chain],
        ]
    elif doc.error_type is None and doc.error_message is None:
        return None
    else:
        return message_fingerprint(doc.error_type, doc.error_message)
    return hashlib.sha256(canonical_json(payload)).hexdigest()[:16]


def message_fingerprint(error_type: str | None, message: str | None) -> str:
    """The group key of a failure known by its type and message only (no exception chain): a
    failure reported as a message, or a process that crashed without reporting one."""
    payload = [VERSION, error_type or "", normalize_message(message or "")]
    return hashlib.sha256(canonical_json(payload)).hexdigest()[:16]


def canonical_json(payload: object) -> bytes:
    """`json.dumps(payload, ensure_ascii=True, separators=(",", ":"))` as bytes: what gets hashed.

    orjson writes the same bytes whenever its output is ASCII without DEL (it leaves non-ASCII
    characters and DEL unescaped, where `ensure_ascii` escapes them), several times faster;
    anything else goes through `json`."""
    try:
        data: bytes | None = orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate
        data = None
    if data is not None and data.isascii() and b"\x7f" not in data:
        return data
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _has_in_app(chain: tuple[ExceptionNode, ...]) -> bool:
    for node in chain:
        if any(f.in_app for f in node.frames):
            return True
        if any(_has_in_app(member) for member in node.group):
            return True
    return False


def _node_signature(node: ExceptionNode, in_app: bool) -> list[object]:
    frames: list[list[str]] = []
    for f in node.frames:
        if in_app:
            if not f.in_app:
                continue
            sig = [_basename(f.filename), f.name, f.line.strip()]
        else:
            sig = [_basename(f.filename), f.name]
        if not frames or frames[-1] != sig:
            frames.append(sig)
    signature: list[object] = [node.type, frames]
    if not in_app:
        signature.append(normalize_message(node.message))
    if node.group:
        members = {json.dumps([_node_signature(n, in_app) for n in member], ensure_ascii=True) for member in node.group}
        signature.append(sorted(members))
    return signature


def _basename(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.split(".", 1)[0]
    if base.startswith("<") or (stem and stem.isdigit()):
        base = re.sub(r"\d+", "<n>", base)
    return base


__all__ = ["message_fingerprint", "fingerprint", "canonical_json", "normalize_message", "MAX_MESSAGE_CHARS", "VERSION"]
