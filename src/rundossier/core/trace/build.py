"""Turn a live exception (or a reported error string, or nothing) into a `TraceDoc`, and mask one.

`build_trace` never raises and never invents a traceback:

- an exception object: walked through `traceback.TracebackException(..., compact=True)`, so the
  chain (`__cause__`, `__context__` honouring `__suppress_context__`, exception groups, cycles)
  is exactly what `traceback` prints; `traceback_text` is that printed text, computed once.
  `captured` is True, also for an exception that was never raised (its frames are empty).
  Every member of an exception group is kept as a node (traceback's text shows the first 15);
  groups nested deeper than MAX_GROUP_DEPTH keep only a count (`omitted_exceptions`).
  Consecutive identical frames (recursion) fold into one `Frame` with `repeat` set.
- a string: `captured` False, no chain, no traceback text. If its first line looks like
  "SomeError: message" (a dotted identifier ending in Error, Exception, Exit, Interrupt,
  Warning, Failure or Group, then ": "), `error_type` is that prefix and `error_message` the
  rest, as for a live exception (a bare type name alone gives an empty message); otherwise
  `error_type` is None and `error_message` the string.
- None: no error at all; `reason` says so.

Every string is made UTF-8-safe (`sanitize`) and cut in the middle to `max_string_bytes` with a
"... N bytes omitted ..." marker before any other work on it (in `traceback_text`, each printed
piece is capped on its own, so a huge message is cut and the frames are not). Source lines come
from `linecache`, as `traceback` itself does.
"""

from __future__ import annotations

import functools
import os
import re
import sysconfig
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from rundossier.core.trace.frames import memoize_frames, remember
from rundossier.core.trace.model import (
    CAUSE,
    CONTEXT,
    ExceptionNode,
    Frame,
    TraceDoc,
    TraceHeader,
    cut_middle,
    sanitize,
)

REASON_MESSAGE_ONLY = "the error was reported as a message only; no traceback was captured"
REASON_NO_ERROR = "no error was reported"
#: Exception groups nested deeper than this keep their members out (as traceback's default).
MAX_GROUP_DEPTH = 10

_TYPE_NAME = (
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
    r"(?:Error|Exception|Exit|Interrupt|Warning|Failure|Group)"
    # a process that died has no exception type: "Crashed (SIGKILL): ...", "Crashed (no heartbeat): ..."
    r"|Crashed(?: \([A-Za-z0-9][A-Za-z0-9 _-]{0,39}\))?"
)
_TYPE_PREFIX = re.compile(rf"({_TYPE_NAME}): ")
_TYPE_ONLY = re.compile(_TYPE_NAME)
_TYPE_PREFIX_SCAN = 300  # characters of a string error looked at for a type prefix


@functools.cache
def _library_roots() -> tuple[str, ...]:
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        if paths.get(key):
            roots.add(os.path.normcase(os.path.normpath(paths[key])))
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots.add(os.path.normcase(os.path.normpath(package_dir)))
    return tuple(sorted(roots))


def default_in_app(filename: str) -> bool:
    """False for the stdlib, site-/dist-packages, frozen modules and rundossier itself."""
    if filename.startswith("<frozen"):
        return False
    slashed = filename.replace("\\", "/")
    if "/site-packages/" in slashed or "/dist-packages/" in slashed:
        return False
    if filename.startswith("<"):
        return True
    path = os.path.normcase(os.path.normpath(filename))
    for root in _library_roots():
        if path == root or path.startswith(root + os.sep):
            return False
    return True


def build_trace(
    error: BaseException | str | None,
    header: TraceHeader,
    log_tail: Sequence[str] = (),
    *,
    reason: str | None = None,
    in_app: Callable[[str], bool] = default_in_app,
    max_string_bytes: int = 1 << 20,
) -> TraceDoc:
    """The trace document for `error`; never raises for any exception object.

    `max_string_bytes` (at least 64) caps every string; `in_app` classifies frame filenames
    (a classifier that raises falls back to `default_in_app`).
    """
    cap = max(64, int(max_string_bytes))
    header = _clean_header(header, cap)
    lines = _clean_lines(log_tail, cap)
    reason = _clean(reason, cap) if reason is not None else None
    if error is None:
        return TraceDoc(header, None, None, (), "", False, reason or REASON_NO_ERROR, lines)
    if not isinstance(error, BaseException):
        text = error if isinstance(error, str) else _safe_str(error)
        error_type, message = _split_type_prefix(_clean(text, cap))
        return TraceDoc(
            header, error_type, message, (), "", False, reason or REASON_MESSAGE_ONLY, lines
        )
    return _from_exception(error, header, lines, reason, in_app, cap)


def _from_exception(
    exc: BaseException,
    header: TraceHeader,
    lines: tuple[str, ...],
    reason: str | None,
    in_app: Callable[[str], bool],
    cap: int,
) -> TraceDoc:
    try:
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    except Exception as err:  # noqa: BLE001 - a broken exception must still give a document
        chain = (_fallback_node(exc, in_app, cap),)
        why = f"the traceback module could not walk this exception ({_describe(err)})"
        return TraceDoc(
            header, chain[-1].type, chain[-1].message, chain, "", True, reason or why, lines
        )
    try:
        memoize_frames(te)
    except Exception:  # noqa: BLE001 - then traceback formats every frame itself
        pass
    try:
        text = "".join(_capped_pieces(_format(te), cap))
    except Exception as err:  # noqa: BLE001
        text = ""
        reason = (
            reason or f"the traceback module could not format this exception ({_describe(err)})"
        )
    try:
        chain = _Walker(in_app, cap).chain(te, 0)
    except Exception as err:  # noqa: BLE001
        chain = (_fallback_node(exc, in_app, cap),)
        reason = reason or f"the exception chain could not be walked ({_describe(err)})"
    last = chain[-1]
    return TraceDoc(header, last.type, last.message, chain, text, True, reason, lines)


#: what `traceback` prints between the exceptions of a chain
_CAUSE_LINE = getattr(
    traceback, "_cause_message", "\nThe above exception was the direct cause of the following exception:\n\n"
)
_CONTEXT_LINE = getattr(
    traceback, "_context_message", "\nDuring handling of the above exception, another exception occurred:\n\n"
)


def _format(te: Any) -> Any:
    """The pieces `te.format()` yields. A chain without exception groups is printed with no
    indentation, so its pieces are put together here directly: `format()` would pass each one
    through `textwrap.indent` with an empty margin, half of its cost once frames are memoised.
    Groups (indented, with margins) go through `format()` itself."""
    chain: list[tuple[str | None, Any]] = []
    exc = te
    while exc is not None:
        if getattr(exc, "exceptions", None) is not None:
            return te.format()
        if exc.__cause__ is not None:
            chain.append((_CAUSE_LINE, exc))
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            chain.append((_CONTEXT_LINE, exc))
            exc = exc.__context__
        else:
            chain.append((None, exc))
            exc = None
    pieces: list[str] = []
    for line, exc in reversed(chain):  # root cause first, each after the line that leads to it
        if line is not None:
            pieces.append(line)
        if exc.stack:
            pieces.append("Traceback (most recent call last):\n")
            pieces.extend(exc.stack.format())
        pieces.extend(exc.format_exception_only())
    return pieces


def _capped_pieces(pieces: Any, cap: int) -> Any:
    for piece in pieces:
        if piece.isascii() and len(piece) <= cap:
            yield piece
        else:
            yield cut_middle(piece, cap)


class _Walker:
    """Builds ExceptionNodes from a TracebackException tree, the way `format()` walks it."""

    def __init__(self, in_app: Callable[[str], bool], cap: int) -> None:
        self._in_app = in_app
        self._cap = cap
        self._in_app_cache: dict[str, bool] = {}

    def chain(self, te: Any, depth: int) -> tuple[ExceptionNode, ...]:
        outermost_first: list[tuple[Any, str | None]] = []
        seen: set[int] = set()
        exc = te
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if getattr(exc, "__cause__", None) is not None:
                relation, nxt = CAUSE, exc.__cause__
            elif getattr(exc, "__context__", None) is not None and not getattr(
                exc, "__suppress_context__", False
            ):
                relation, nxt = CONTEXT, exc.__context__
            else:
                relation, nxt = None, None
            outermost_first.append((exc, relation))
            exc = nxt
        nodes = []
        count = len(outermost_first)
        for i in range(count - 1, -1, -1):
            te_i = outermost_first[i][0]
            relation = outermost_first[i - 1][1] if i > 0 else None
            nodes.append(self.node(te_i, relation, depth))
        return tuple(nodes)

    def node(self, te: Any, relation: str | None, depth: int) -> ExceptionNode:
        cap = self._cap
        members = getattr(te, "exceptions", None)
        group: tuple[tuple[ExceptionNode, ...], ...] = ()
        omitted_exceptions = 0
        if members:
            if depth >= MAX_GROUP_DEPTH:
                omitted_exceptions = len(members)
            else:
                group = tuple(self.chain(member, depth + 1) for member in members)
        return ExceptionNode(
            type=_te_type(te, cap),
            message=_clean(getattr(te, "_str", ""), cap),
            frames=self.frames(getattr(te, "stack", ()) or ()),
            notes=_notes(getattr(te, "__notes__", None), cap),
            relation=relation,
            group=group,
            omitted_exceptions=omitted_exceptions,
        )

    def frames(self, stack: Any) -> tuple[Frame, ...]:
        out: list[Frame] = []
        last_key: tuple[Any, Any, Any] | None = None
        repeat = 0
        for fs in stack:
            key = (fs.filename, fs.lineno, fs.name)
            if key == last_key:
                repeat += 1
                continue
            if repeat:
                out[-1] = _with_repeat(out[-1], repeat)
            repeat = 0
            last_key = key
            out.append(self.frame(fs))
        if repeat:
            out[-1] = _with_repeat(out[-1], repeat)
        return tuple(out)

    def frame(self, fs: Any) -> Frame:
        if self._in_app is default_in_app:  # then the Frame depends on the location alone
            try:
                key = ("frame", fs.filename, fs.lineno, fs.name, fs.line, self._cap)
                hash(key)
            except Exception:  # noqa: BLE001 - an odd frame: build it afresh
                return self._frame(fs)
            return remember(key, lambda: self._frame(fs))
        return self._frame(fs)

    def _frame(self, fs: Any) -> Frame:
        cap = self._cap
        filename = _clean(fs.filename if isinstance(fs.filename, str) else "<unknown>", cap)
        try:
            line = fs.line or ""
        except Exception:  # noqa: BLE001
            line = ""
        lineno = fs.lineno if isinstance(fs.lineno, int) else None
        name = fs.name if isinstance(fs.name, str) else "<unknown>"
        return Frame(filename, lineno, _clean(name, cap), _clean(line, cap), self.in_app(filename))

    def in_app(self, filename: str) -> bool:
        hit = self._in_app_cache.get(filename)
        if hit is None:
            try:
                hit = bool(self._in_app(filename))
            except Exception:  # noqa: BLE001 - a broken classifier falls back to the default
                hit = default_in_app(filename)
            self._in_app_cache[filename] = hit
        return hit


def _with_repeat(frame: Frame, repeat: int) -> Frame:
    return Frame(frame.filename, frame.lineno, frame.name, frame.line, frame.in_app, repeat)


def _te_type(te: Any, cap: int) -> str:
    """The exception type as traceback prints it: "ValueError", "pkg.mod.MyError"."""
    try:
        printed = getattr(te, "exc_type_str", None)  # Python 3.13+
        if isinstance(printed, str):
            return _clean(printed, cap)
        return _type_name(te.exc_type, cap)
    except Exception:  # noqa: BLE001
        return "<unknown>"


def _type_name(exc_type: Any, cap: int) -> str:
    try:
        name = exc_type.__qualname__
        module = exc_type.__module__
        if module not in ("__main__", "builtins"):
            if not isinstance(module, str):
                module = "<unknown>"
            name = module + "." + name
        return _clean(name, cap) if isinstance(name, str) else "<unknown>"
    except Exception:  # noqa: BLE001
        return "<unknown>"


def _notes(notes: Any, cap: int) -> tuple[str, ...]:
    """`__notes__` as traceback 3.12+ prints them (a non-sequence is shown by its repr)."""
    if notes is None:
        return ()
    try:
        if isinstance(notes, Sequence) and not isinstance(notes, (str, bytes)):
            return tuple(
                _clean(n if isinstance(n, str) else _safe_str(n, "note"), cap) for n in notes
            )
        return (_clean(_safe_str(notes, "__notes__", repr), cap),)
    except Exception:  # noqa: BLE001
        return ("<__notes__ could not be read>",)


def _fallback_node(exc: BaseException, in_app: Callable[[str], bool], cap: int) -> ExceptionNode:
    """A single node built without TracebackException (when it could not walk `exc`)."""
    frames: tuple[Frame, ...] = ()
    try:
        frames = _Walker(in_app, cap).frames(traceback.extract_tb(exc.__traceback__))
    except Exception:  # noqa: BLE001
        pass
    return ExceptionNode(
        _type_name(type(exc), cap), _clean(_safe_str(exc, "exception"), cap), frames
    )


def _safe_str(value: Any, what: str = "error", func: Callable[[Any], str] = str) -> str:
    try:
        text = func(value)
        return text if isinstance(text, str) else f"<{what} {func.__name__}() failed>"
    except Exception:  # noqa: BLE001
        return f"<{what} {func.__name__}() failed>"


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {_safe_str(err)}"[:500]


def _clean(value: Any, cap: int) -> str:
    if not isinstance(value, str):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "backslashreplace")
        else:
            value = _safe_str(value)
    if value.isascii() and len(value) <= cap:
        return value
    return cut_middle(value, cap)


def _clean_lines(lines: Sequence[str], cap: int) -> tuple[str, ...]:
    out = []
    for line in lines:
        if line.__class__ is not str or not line.isascii() or len(line) > cap:
            line = _clean(line, cap)
        if line.endswith(("\n", "\r")):
            line = line.rstrip("\r\n")
        out.append(line)
    return tuple(out)


def _clean_header(header: TraceHeader, cap: int) -> TraceHeader:
    def opt(value: Any) -> str | None:
        return None if value is None else _clean(value, cap)

    try_number = header.try_number
    if try_number is not None and not isinstance(try_number, int):
        try:
            try_number = int(try_number)
        except (TypeError, ValueError):
            try_number = None
    return TraceHeader(
        run_id=_clean(header.run_id, cap),
        flow_id=_clean(header.flow_id, cap),
        step_id=opt(header.step_id),
        try_number=try_number,
        orchestrator=_clean(header.orchestrator, cap),
        host=opt(header.host),
        started_at=opt(header.started_at),
        failed_at=opt(header.failed_at),
        extra=tuple((_clean(k, cap), _clean(v, cap)) for k, v in header.extra),
    )


def _split_type_prefix(text: str) -> tuple[str | None, str]:
    """("ValueError", "boom") for "ValueError: boom"; (None, text) when there is no such prefix."""
    if len(text) <= _TYPE_PREFIX_SCAN and _TYPE_ONLY.fullmatch(text):
        return text, ""
    match = _TYPE_PREFIX.match(text[:_TYPE_PREFIX_SCAN])
    if match is None:
        return None, text
    return match.group(1), text[match.end() :]


def mask_doc(
    doc: TraceDoc,
    mask: Callable[[str], str],
    *,
    many: Callable[[Sequence[str]], Sequence[str]] | None = None,
    log_tail_masked: bool = False,
) -> TraceDoc:
    """`doc` with `mask` applied to every message, note, frame line, log line, header value,
    reason and the traceback text. An exception from `mask` propagates (never leak unmasked).

    With `many` (e.g. `Masker.mask_many`, same results as `mask` on each text), all the texts
    are masked in one call: one scan instead of one per text. `log_tail_masked` says the log
    lines were masked as they were captured (a masked `StepLog`): they are not masked again.
    """
    if many is None:
        return _map_texts(doc, lambda value: sanitize(mask(value)), log_tail_masked)
    texts: list[str] = []

    def collect(value: str) -> str:
        texts.append(value)
        return value

    _map_texts(doc, collect, log_tail_masked)
    masked = many(texts)
    if len(masked) != len(texts):
        raise ValueError(f"the mask returned {len(masked)} texts for {len(texts)}")
    out = iter(masked)
    return _map_texts(doc, lambda _value: sanitize(next(out)), log_tail_masked)


def _map_texts(doc: TraceDoc, m: Callable[[str], str], skip_log_tail: bool = False) -> TraceDoc:
    """`doc` with `m` applied to each text `mask_doc` masks, always in the same order.

    Parts in which `m` changed nothing (returned the very same strings) are reused as they are.
    """

    def om(value: str | None) -> str | None:
        return None if value is None else m(value)

    def frame(f: Frame) -> Frame:
        if not f.line:
            return f
        line = m(f.line)
        return f if line is f.line else Frame(f.filename, f.lineno, f.name, line, f.in_app, f.repeat)

    def node(n: ExceptionNode) -> ExceptionNode:
        frames = tuple(frame(f) for f in n.frames)
        message = m(n.message)
        notes = tuple(m(x) for x in n.notes)
        group = tuple(tuple(node(x) for x in member) for member in n.group)
        if (
            message is n.message
            and _same(frames, n.frames)
            and _same(notes, n.notes)
            and all(_same(a, b) for a, b in zip(group, n.group, strict=True))
        ):
            return n
        return ExceptionNode(
            type=n.type,
            message=message,
            frames=frames,
            omitted_frames=n.omitted_frames,
            notes=notes,
            relation=n.relation,
            group=group,
            omitted_exceptions=n.omitted_exceptions,
        )

    h = doc.header
    header = TraceHeader(
        run_id=m(h.run_id),
        flow_id=m(h.flow_id),
        step_id=om(h.step_id),
        try_number=h.try_number,
        orchestrator=m(h.orchestrator),
        host=om(h.host),
        started_at=om(h.started_at),
        failed_at=om(h.failed_at),
        extra=tuple((k, m(v)) for k, v in h.extra),
    )
    return doc.replace(
        header=header,
        error_message=om(doc.error_message),
        chain=tuple(node(n) for n in doc.chain),
        traceback_text=m(doc.traceback_text) if doc.traceback_text else "",
        reason=om(doc.reason),
        log_tail=doc.log_tail if skip_log_tail else tuple(m(line) for line in doc.log_tail),
    )


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """The same items, by identity."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


__all__ = [
    "build_trace",
    "default_in_app",
    "mask_doc",
    "REASON_MESSAGE_ONLY",
    "REASON_NO_ERROR",
    "MAX_GROUP_DEPTH",
]
