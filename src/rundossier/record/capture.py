"""Capture a step's logging records and stdout/stderr writes into its `StepLog`, transparently.

    with capture(steplog):
        print("hello")           # {"stream": "stdout", "level": null, "message": "hello"}
        log.info("loaded %d", 3) # {"stream": "stderr", "level": "INFO", "message": "x: loaded 3"}

How it works: a `ContextVar` holds the current route (which `StepLog`, which loggers, level).
While any capture is active, `logging.Logger.callHandlers` is wrapped ONCE (the way sentry-sdk
hooks logging) and `sys.stdout` / `sys.stderr` each hold ONE tee, reference-counted across nested
and concurrent captures (the first capture installs, the last one out restores). The wrapper and
the tees look up the route of the caller's context, so concurrent steps in different threads or
asyncio tasks each get their own lines, and code outside any capture pays one
`ContextVar.get()` per write or record.

Why not a handler on each named logger: a handler on the root logger changes the host's
logging. `logging.basicConfig()` called inside the step silently does nothing (root already has
a handler), `Logger.hasHandlers()` turns true so libraries skip adding their own handler, and
`logging.lastResort` stops printing warnings of unconfigured programs. Wrapping `callHandlers`
sees the same records (after the logger's level and filters, following `propagate`) and leaves
every handler list untouched.

Behaviour:
- The tee writes to the original stream FIRST and returns its result; that write's exceptions
  are the user's and pass through unchanged. Everything else the tee delegates (encoding,
  fileno, isatty, buffer, flush, ...), so it behaves like the stream it wraps.
- Partial writes are buffered per stream per capture and emitted as complete lines; what is
  left is flushed when the capture exits. `\\r\\n` ends a line like `\\n`; a bare `\\r` rewrites
  the line as a terminal would, so a progress bar is stored as its final state.
- A record is captured by the innermost capture that names a logger the record reaches by
  propagation (each record at most once), if its level is at least that capture's `level`.
  While the logger's own handlers then run, the tees do not capture, so a `StreamHandler`
  echoing that record to stderr does not store it twice. stdout/stderr go to the innermost
  capture with `std_streams=True`. Records are formatted with
  `logging.Formatter("%(name)s: %(message)s")` (traceback appended when the record has
  `exc_info`); their stream is "stderr", as with logging's default `StreamHandler`.
- Logger levels are never changed: capture sees what the logging configuration lets through.
- Never breaks the host: a fault in the capture path is swallowed and counted (`capture_errors()`,
  and one warning on the "rundossier.capture" logger when the capture exits). Records of the
  "rundossier" loggers and anything written while capturing (a mask or spill that logs or
  prints) are not captured again: a thread-local guard prevents recursion.

Not captured, by design (documented limits):
- threads started inside a step: they start with an empty context (run them through
  `contextvars.copy_context().run` to capture them);
- records handled in another thread (a `QueueHandler` and its listener);
- writes to a stream that someone installed over ours, or after `contextlib.redirect_stdout`.
- `sys.stdout` / `sys.stderr` that are None (pythonw, some daemons) are left alone.

On exit, `sys.stdout` is restored only if it is still our tee. If someone replaced it meanwhile,
theirs is left alone: we cannot safely rewire another library's wrapper, so ours may stay inside
it. A leftover tee (inside another wrapper, or kept in a variable) costs one `ContextVar.get()`
per write and captures only for an active capture of the writer's context; layered tees never
store a write twice (the guard above), and a later capture reuses a leftover tee found on top.
`Logger.callHandlers` is treated the same way: unwrapped only if ours is still the outermost,
else ours stays inside the other wrapper, a pass-through while no capture is active.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from rundossier.record.steplog import StepLog

_log = logging.getLogger("rundossier.capture")

DEFAULT_FORMAT = "%(name)s: %(message)s"
MAX_NAME_PREFIX = 256  # a longer logger name is masked with the message, like any text
_DEFAULT_FORMATTER = logging.Formatter(DEFAULT_FORMAT)
_STREAMS = ("stdout", "stderr")


class _Guard(threading.local):
    busy = False  # True while this thread is inside our capture path
    last: Callable[[], logging.LogRecord | None] | None = None  # last record routed here


_guard = _Guard()
_install_lock = threading.Lock()
_logging_refs = [0]  # active captures with logger names; > 0 while Logger.callHandlers is ours
_tees: dict[str, list[Any]] = {}  # "stdout"/"stderr" -> [tee, refcount]
_errors = [0]


def capture_errors() -> int:
    """How many faults the capture path has swallowed in this process."""
    return _errors[0]


def _own_record(name: str) -> bool:
    return name == "rundossier" or name.startswith("rundossier.")


def _norm_name(name: str) -> str:
    return "" if name in ("", "root") else name


def _clean(line: str) -> str:
    """A terminal's view of one line: a CRLF ending dropped, bare CRs rewrite the line."""
    if "\r" not in line:
        return line
    line = line.rstrip("\r")
    return line[line.rfind("\r") + 1 :]


class _Route:
    """Where one capture sends lines: its StepLog, what it covers, its partial lines."""

    __slots__ = (
        "steplog",
        "names",
        "level",
        "std_streams",
        "parent",
        "formatter",
        "lock",
        "pending",
        "pending_len",
        "omitted",
        "errors",
        "installed_logging",
        "installed_streams",
    )

    def __init__(
        self,
        steplog: StepLog,
        names: tuple[str, ...],
        level: int,
        std_streams: bool,
        parent: _Route | None,
        formatter: logging.Formatter,
    ) -> None:
        self.steplog = steplog
        self.names = frozenset(names)
        self.level = level
        self.std_streams = std_streams
        self.parent = parent
        self.formatter = formatter
        self.lock = threading.Lock()
        self.pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.pending_len = {"stdout": 0, "stderr": 0}
        #: UTF-8 bytes of the current partial line dropped past `max_line_bytes` (stored as a marker)
        self.omitted = {"stdout": 0, "stderr": 0}
        self.errors = 0
        self.installed_logging = False
        self.installed_streams: tuple[str, ...] = ()

    def feed(self, stream: str, text: str) -> None:
        """Add written text; write every line it completes to the StepLog."""
        with self.lock:
            pending = self.pending[stream]
            if "\n" not in text:
                pending.append(text)
                self.pending_len[stream] += len(text)
                if self.pending_len[stream] > self.steplog.max_line_bytes:
                    self._compact(stream)
                return
            parts = text.split("\n")
            # bytes dropped from a line a later CR overwrote were not omitted: the terminal shows the rest
            first_omitted = self.omitted[stream] if "\r" not in parts[0].rstrip("\r") else 0
            if pending:
                pending.append(parts[0])
                parts[0] = "".join(pending)
            last = parts.pop()
            self.pending[stream] = [last] if last else []
            self.pending_len[stream] = len(last)
            self.omitted[stream] = 0
            if len(last) > self.steplog.max_line_bytes:
                self._compact(stream)
        write = self.steplog.write
        for i, line in enumerate(parts):
            write(stream, _clean(line), omitted=first_omitted if i == 0 else 0)

    def _compact(self, stream: str) -> None:
        """Bound a line that does not end (yet): keep what follows its last CR (a progress bar's
        latest state) and at most `max_line_bytes` of it; what is dropped is counted, and stored as
        a visible marker when the line ends. A 50 MB print is one line of 64 KiB, not 50 MB."""
        cap = self.steplog.max_line_bytes
        text = "".join(self.pending[stream])
        cr = text.rstrip("\r").rfind("\r")
        if cr >= 0:  # the terminal line starts over: what came before is overwritten, not omitted
            text = text[cr + 1 :]
            self.omitted[stream] = 0
        if len(text) > cap:
            self.omitted[stream] += len(text[cap:].encode("utf-8", "surrogatepass"))
            text = text[:cap]
        self.pending[stream] = [text] if text else []
        self.pending_len[stream] = len(text)

    def flush(self) -> None:
        """Write the partial lines left in each stream."""
        for stream in _STREAMS:
            with self.lock:
                text = "".join(self.pending[stream])
                omitted = self.omitted[stream]
                self.pending[stream] = []
                self.pending_len[stream] = 0
                self.omitted[stream] = 0
            line = _clean(text)
            if line or omitted:
                self.steplog.write(stream, line, omitted=omitted)

    def format(self, record: logging.LogRecord) -> str:
        try:
            return self.formatter.format(record)
        except Exception:  # a bad format string or args in user code: keep what we can
            try:
                return f"{record.name}: {record.msg!s} {record.args!r}"
            except Exception:
                return f"{record.name}: <unformattable log record>"


def _for_streams(route: _Route | None) -> _Route | None:
    while route is not None and not route.std_streams:
        route = route.parent
    return route


def _ref(record: logging.LogRecord) -> Callable[[], logging.LogRecord | None]:
    try:
        return weakref.ref(record)
    except TypeError:  # a custom record class without weakref support
        return lambda: record


def _fault(route: _Route | None) -> None:
    _errors[0] += 1
    if route is not None:
        route.errors += 1


_current: ContextVar[_Route | None] = ContextVar("rundossier_capture_route", default=None)


class _Tee:
    """Wraps sys.stdout/sys.stderr: writes go to the original first, then to the step's log.

    While the original write runs, the guard is set: a stream further inside that captures too
    (an older tee of ours, a logging redirect) does not store the same text a second time.
    """

    __slots__ = ("_rd_inner", "_rd_stream", "__weakref__")  # weakref: structlog keys its locks by stream

    def __init__(self, inner: Any, stream: str) -> None:
        self._rd_inner = inner
        self._rd_stream = stream

    def write(self, s: str) -> int:
        route = _current.get()
        if route is not None and not _guard.busy:
            target = _for_streams(route)
            if target is not None:
                _guard.busy = True
                try:
                    n = self._rd_inner.write(s)
                finally:
                    _guard.busy = False
                self._capture(target, s)
                return n
        return self._rd_inner.write(s)

    def writelines(self, lines: Any) -> None:
        route = _current.get()
        if route is not None and not _guard.busy:
            target = _for_streams(route)
            if target is not None:
                lines = list(lines)
                _guard.busy = True
                try:
                    self._rd_inner.writelines(lines)
                finally:
                    _guard.busy = False
                try:
                    text = "".join(lines)
                except Exception:
                    return
                self._capture(target, text)
                return
        self._rd_inner.writelines(lines)

    def _capture(self, target: _Route, text: str) -> None:
        if not isinstance(text, str) or not text:
            return
        _guard.busy = True
        try:
            target.feed(self._rd_stream, text)
        except Exception:
            _fault(target)
        finally:
            _guard.busy = False

    def flush(self) -> None:
        self._rd_inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rd_inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _Tee.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._rd_inner, name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rd_inner)

    def __repr__(self) -> str:
        return f"<rundossier tee of {self._rd_inner!r}>"


def _covers(names: frozenset[str], logger: logging.Logger) -> bool:
    """True if a record handled by `logger` reaches one of `names` (following propagation)."""
    c: logging.Logger | None = logger
    while c is not None:
        if (c.name if c is not logging.root else "") in names:
            return True
        c = c.parent if c.propagate else None
    return False


def _route_record(route: _Route, logger: logging.Logger, record: logging.LogRecord) -> bool:
    """Capture `record` into the innermost capture covering `logger`. True if one covers it."""
    if _own_record(record.name):
        return True  # covered (so its console echo is not captured either), never stored
    target: _Route | None = route
    while target is not None and not (target.names and _covers(target.names, logger)):
        target = target.parent
    if target is None:
        return False
    try:
        last = _guard.last
        if last is not None and last() is record:  # dispatched again: already captured
            return True
        if record.levelno < target.level:
            return True
        _guard.last = _ref(record)
        saved = record.exc_text  # don't leave our traceback text cached for user formatters
        try:
            message = target.format(record)
        finally:
            record.exc_text = saved
        prefix = _name_prefix(target, record, message)
        target.steplog.write("stderr", message[len(prefix) :], record.levelname, record.created, prefix=prefix)
    except Exception:
        _fault(target)
    return True


def _name_prefix(route: _Route, record: logging.LogRecord, message: str) -> str:
    """`"name: "` when the default format put the logger name first: it is kept out of the mask,
    so a logger such as `airflow.secrets.backend` does not read as a secret-named key."""
    if route.formatter is not _DEFAULT_FORMATTER:
        return ""
    prefix = f"{record.name}: "
    return prefix if len(prefix) <= MAX_NAME_PREFIX and message.startswith(prefix) else ""


def _patch_call_handlers(original: Callable[..., Any]) -> Callable[..., Any]:
    """A `Logger.callHandlers` that captures the record for the caller's step, then dispatches
    it to the logger's own handlers exactly as before (lastResort, basicConfig, hasHandlers and
    the handlers' exceptions unchanged). While the handlers run, the tees do not capture, so a
    handler echoing a captured record to stderr does not store it twice."""

    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> Any:  # noqa: N802
        try:
            route = _current.get() if _logging_refs[0] > 0 and not _guard.busy else None
        except Exception:  # interpreter shutdown
            route = None
        if route is None:
            return original(self, record)
        _guard.busy = True
        try:
            try:
                covered = _route_record(route, self, record)
            except Exception:
                covered = False
                _fault(route)
            if covered:  # the handlers' echo of this record must not be stored again
                return original(self, record)
        finally:
            _guard.busy = False
        return original(self, record)

    callHandlers.__rundossier__ = True  # type: ignore[attr-defined]
    callHandlers.__wrapped__ = original  # type: ignore[attr-defined]
    return callHandlers


def _install(route: _Route) -> None:
    with _install_lock:
        if route.names:
            if _logging_refs[0] == 0:
                current = logging.Logger.callHandlers
                if not getattr(current, "__rundossier__", False):
                    logging.Logger.callHandlers = _patch_call_handlers(current)  # type: ignore
            _logging_refs[0] += 1
            route.installed_logging = True
        if not route.std_streams:
            return
        streams = []
        for stream in _STREAMS:
            entry = _tees.get(stream)
            if entry is None:
                current = getattr(sys, stream)
                if current is None:
                    continue
                if isinstance(current, _Tee):  # ours, kept by someone and put back
                    tee = current
                else:
                    tee = _Tee(current, stream)
                    setattr(sys, stream, tee)
                entry = _tees[stream] = [tee, 0]
            entry[1] += 1
            streams.append(stream)
        route.installed_streams = tuple(streams)


def _uninstall(route: _Route) -> None:
    with _install_lock:
        if route.installed_logging:
            route.installed_logging = False
            _logging_refs[0] -= 1
            current = logging.Logger.callHandlers
            if _logging_refs[0] == 0 and getattr(current, "__rundossier__", False):
                logging.Logger.callHandlers = current.__wrapped__  # type: ignore
            # else: wrapped again by someone else since; ours stays inside, inert at 0 refs
        for stream in route.installed_streams:
            entry = _tees.get(stream)
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                del _tees[stream]
                tee = entry[0]
                if getattr(sys, stream) is tee:
                    setattr(sys, stream, tee._rd_inner)
                # else: replaced by someone else meanwhile; leave theirs (ours may be inside it)
        route.installed_streams = ()


@contextmanager
def capture(
    steplog: StepLog,
    *,
    logger_names: Sequence[str] = ("",),
    level: int = logging.NOTSET,
    std_streams: bool = True,
    formatter: logging.Formatter | None = None,
) -> Iterator[StepLog]:
    """Record the named loggers' records (root by default) and, if `std_streams`, stdout/stderr
    writes of the current thread/task into `steplog` while inside; output still reaches the
    original streams unchanged. Exceptions from the block propagate untouched.

    `level` drops records below it; `formatter` replaces `logging.Formatter(DEFAULT_FORMAT)`.
    Yields `steplog`. Does not finish it: the caller calls `steplog.finish()` afterwards."""
    if isinstance(logger_names, str):  # a single name, not its characters
        logger_names = (logger_names,)
    names = tuple(dict.fromkeys(_norm_name(n) for n in logger_names))
    route = _Route(steplog, names, level, std_streams, _current.get(), formatter or _DEFAULT_FORMATTER)
    try:
        _install(route)
    except Exception:
        _fault(route)
    token = _current.set(route)
    try:
        yield steplog
    finally:
        was_busy, _guard.busy = _guard.busy, True
        try:
            route.flush()
        except Exception:
            _fault(route)
        finally:
            _guard.busy = was_busy
        try:
            _current.reset(token)
        except (ValueError, RuntimeError):  # exited in another context than entered
            _current.set(route.parent)
        try:
            _uninstall(route)
        except Exception:
            _fault(route)
        if route.errors:
            try:
                _log.warning("rundossier ignored %d fault(s) while capturing a step's logs", route.errors)
            except Exception:
                pass


__all__ = ["capture", "capture_errors", "DEFAULT_FORMAT"]
