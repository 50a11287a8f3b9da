"""Turn a live exception (or a reported error string, or nothing) into a `TraceDoc`, and mask one.

`build_trace` never raises and never invents a traceback:

- an exception object: its chain is walked as `traceback` prints it (`chain.printed_chain`:
  `__cause__`, `__context__` honouring `__suppress_context__`, exception groups, cycles), and
  `traceback_text` is `traceback.TracebackException(..., compact=True).format()`, computed once
  (frames printed through the memo of `frametext`).
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
import linecache
import os
import re
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

from rundossier.core.trace.chain import group_members, printed_chain
from rundossier.core.trace.frametext import remember_frames
from rundossier.core.trace.model import (
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


@functools.cache  # a constant of the interpreter, computed on first use
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
        return TraceDoc(header, error_type, message, (), "", False, reason or REASON_MESSAGE_ONLY, lines)
    return _from_exception(error, header, lines, reason, in_app, cap)


def _from_exception(
    exc: BaseException,
    header: TraceHeader,
    lines: tuple[str, ...],
    reason: str | None,
    in_app: Callable[[str], bool],
    cap: int,
) -> TraceDoc:
    # Broad catches below: a user's exception can break anything (a `__str__` that raises, a
    # `__notes__` property, a classifier); it must still give a document, never an error.
    chain: tuple[ExceptionNode, ...]
    try:
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
    except Exception as err:  # noqa: BLE001
        chain = (_fallback_node(exc, in_app, cap),)
        why = f"the traceback module could not walk this exception ({_describe(err)})"
        return TraceDoc(header, chain[-1].type, chain[-1].message, chain, "", True, reason or why, lines)
    try:
        remember_frames(te)
        text = "".join(_capped_pieces(te.format(), cap))
    except Exception as err:  # noqa: BLE001
        text = ""
        reason = reason or f"the traceback module could not format this exception ({_describe(err)})"
    try:
        chain = _Walker(in_app, cap).chain(exc, 0, set())
    except Exception as err:  # noqa: BLE001
        chain = (_fallback_node(exc, in_app, cap),)
        reason = reason or f"the exception chain could not be walked ({_describe(err)})"
    last = chain[-1]
    return TraceDoc(header, last.type, last.message, chain, text, True, reason, lines)


def _capped_pieces(pieces: Iterable[str], cap: int) -> Iterator[str]:
    for piece in pieces:
        if piece.isascii() and len(piece) <= cap:
            yield piece
        else:
            yield cut_middle(piece, cap)


class _Walker:
    """Builds the ExceptionNodes of a live exception, in the order `traceback` prints them.

    Source lines come from `linecache`, which `traceback` has just refreshed for these files."""

    def __init__(self, in_app: Callable[[str], bool], cap: int) -> None:
        self._in_app = in_app
        self._cap = cap
        self._in_app_cache: dict[str, bool] = {}

    def chain(self, exc: BaseException, depth: int, seen: set[int]) -> tuple[ExceptionNode, ...]:
        """The printed chain of `exc`, root cause first; `seen` is shared by the whole tree."""
        links = printed_chain(exc, seen)
        return tuple(self.node(e, relation, depth, seen) for e, relation in reversed(links))

    def node(self, exc: BaseException, relation: str | None, depth: int, seen: set[int]) -> ExceptionNode:
        cap = self._cap
        members = group_members(exc)
        group: tuple[tuple[ExceptionNode, ...], ...] = ()
        omitted_exceptions = 0
        if members:
            if depth >= MAX_GROUP_DEPTH:
                omitted_exceptions = len(members)
            else:
                group = tuple(self.chain(member, depth + 1, seen) for member in members)
        return ExceptionNode(
            type=_type_name(type(exc), cap),
            message=_clean(_safe_str(exc, "exception"), cap),
            frames=self.frames(exc.__traceback__),
            notes=_notes(exc, cap),
            relation=relation,
            group=group,
            omitted_exceptions=omitted_exceptions,
        )

    def frames(self, tb: TracebackType | None) -> tuple[Frame, ...]:
        """The frames of `tb`, outermost first; identical consecutive ones (recursion) folded."""
        out: list[Frame] = []
        last_key: tuple[str, int | None, str] | None = None
        repeat = 0
        for frame, lineno in traceback.walk_tb(tb):
            code = frame.f_code
            key = (code.co_filename, lineno, code.co_name)
            if key == last_key:
                repeat += 1
                continue
            if repeat:
                out[-1] = _with_repeat(out[-1], repeat)
            repeat = 0
            last_key = key
            out.append(self.frame(code.co_filename, lineno, code.co_name, frame.f_globals))
        if repeat:
            out[-1] = _with_repeat(out[-1], repeat)
        return tuple(out)

    def frame(self, filename: str, lineno: int | None, name: str, module_globals: dict[str, Any]) -> Frame:
        cap = self._cap
        line = linecache.getline(filename, lineno, module_globals).strip() if lineno is not None else ""
        filename = _clean(filename, cap)
        return Frame(filename, lineno, _clean(name, cap), _clean(line, cap), self.in_app(filename))

    def in_app(self, filename: str) -> bool:
        hit = self._in_app_cache.get(filename)
        if hit is None:
            try:
                hit = bool(self._in_app(filename))
            except Exception:  # noqa: BLE001 - a user's classifier may raise anything: the default decides
                hit = default_in_app(filename)
            self._in_app_cache[filename] = hit
        return hit


def _with_repeat(frame: Frame, repeat: int) -> Frame:
    return Frame(frame.filename, frame.lineno, frame.name, frame.line, frame.in_app, repeat)


def _type_name(exc_type: type[BaseException], cap: int) -> str:
    try:
        name = exc_type.__qualname__
        module = exc_type.__module__
        if module not in ("__main__", "builtins"):
            if not isinstance(module, str):
                module = "<unknown>"
            name = module + "." + name
        return _clean(name, cap) if isinstance(name, str) else "<unknown>"
    except Exception:  # noqa: BLE001 - a user's metaclass may raise anything from these attributes
        return "<unknown>"


def _notes(exc: BaseException, cap: int) -> tuple[str, ...]:
    """`__notes__` as traceback 3.12+ prints them (a non-sequence is shown by its repr)."""
    try:
        notes = getattr(exc, "__notes__", None)
        if notes is None:
            return ()
        if isinstance(notes, Sequence) and not isinstance(notes, (str, bytes)):
            return tuple(_clean(n if isinstance(n, str) else _safe_str(n, "note"), cap) for n in notes)
        return (_clean(_safe_str(notes, "__notes__", repr), cap),)
    except Exception:  # noqa: BLE001 - a user's `__notes__` may raise anything
        return ("<__notes__ could not be read>",)


def _fallback_node(exc: BaseException, in_app: Callable[[str], bool], cap: int) -> ExceptionNode:
    """A single node built without `traceback` (when it could not walk `exc`)."""
    frames: tuple[Frame, ...] = ()
    try:
        frames = _Walker(in_app, cap).frames(exc.__traceback__)
    except Exception:  # noqa: BLE001 - the node then has no frames
        pass
    return ExceptionNode(_type_name(type(exc), cap), _clean(_safe_str(exc, "exception"), cap), frames)


def _safe_str(value: Any, what: str = "error", func: Callable[[Any], str] = str) -> str:
    try:
        text = func(value)
        return text if isinstance(text, str) else f"<{what} {func.__name__}() failed>"
    except Exception:  # noqa: BLE001 - a user's __str__/__repr__ may raise anything (as traceback says it)
        return f"<{what} {func.__name__}() failed>"


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {_safe_str(err)}"[:500]


def _clean(value: object, cap: int) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    else:
        text = _safe_str(value)
    if text.isascii() and len(text) <= cap:
        return text
    return cut_middle(text, cap)


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
