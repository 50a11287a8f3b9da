"""Run rundossier's work for a hook in a worker thread, waiting at most a set time; never raise.

A hook must not hang a flow run (a database that does not answer, an object store that stalls),
so its work runs in a thread started in a copy of the caller's context (Prefect's settings and
run contexts are context variables) and the hook waits `timeout_s` at most. Work that runs over
goes on in the background; `wait_background` (and process exit) waits for it, also bounded.

`enqueue` is for small writes nobody waits for (a task try starting or completing): one worker
thread runs them in order, so a try's start is written before its end.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("rundossier")

#: how much longer than its own timeout process exit waits for a hook's work that ran over
OVERRUN_AT_EXIT_S = 30.0

_background: dict[threading.Thread, float] = {}  # thread -> monotonic deadline
_lock = threading.Lock()


def run_bounded(fn: Callable[[], object], timeout_s: float, what: str) -> bool:
    """Run `fn` and wait up to `timeout_s`; True if it finished in time. Never raises."""
    try:
        thread = _start(fn, what, deadline=time.monotonic() + max(timeout_s, 0.0) + OVERRUN_AT_EXIT_S)
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("rundossier: %s takes longer than %.1f s; it goes on in the background", what, timeout_s)
            return False
        return True
    except Exception as exc:  # noqa: BLE001 - a hook never raises into Prefect
        log.warning("rundossier could not %s: %s: %s", what, type(exc).__name__, exc)
        return False


def run_background(fn: Callable[[], object], what: str, budget_s: float) -> None:
    """Run `fn` without waiting; process exit waits for it at most until `budget_s` from now."""
    try:
        _start(fn, what, deadline=time.monotonic() + budget_s)
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not start %s: %s: %s", what, type(exc).__name__, exc)


class _Queue:
    """One daemon worker running queued work in order, each piece in its caller's context."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[tuple[contextvars.Context, Callable[[], object], str]] = queue.SimpleQueue()
        self._pending = 0
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def put(self, fn: Callable[[], object], what: str) -> None:
        with self._cond:
            self._pending += 1
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="rundossier queue", daemon=True)
                self._worker.start()
        self._items.put((contextvars.copy_context(), fn, what))

    def _run(self) -> None:
        while True:
            ctx, fn, what = self._items.get()
            try:
                ctx.run(fn)
            except BaseException as exc:  # noqa: BLE001
                log.warning("rundossier could not %s: %s: %s", what, type(exc).__name__, exc)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def drain(self, timeout_s: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout_s)


_queue = _Queue()
#: the longest process exit waits for queued writes
QUEUE_DRAIN_AT_EXIT_S = 30.0


def enqueue(fn: Callable[[], object], what: str) -> None:
    """Run `fn` soon, in order with other queued work, without waiting. Never raises."""
    try:
        _queue.put(fn, what)
    except Exception as exc:  # noqa: BLE001
        log.warning("rundossier could not queue %s: %s: %s", what, type(exc).__name__, exc)


def drain(timeout_s: float | None) -> bool:
    """Wait until queued work is done (at most `timeout_s`)."""
    return _queue.drain(timeout_s)


def wait_background(timeout_s: float | None = None) -> bool:
    """Wait for background and queued work (each piece at most until its own deadline); True if all done."""
    end = None if timeout_s is None else time.monotonic() + timeout_s
    queued = _queue.drain(None if end is None else max(0.0, end - time.monotonic()))
    if not queued:
        return False
    while True:
        with _lock:
            pending = list(_background.items())
        if not pending:
            return True
        thread, deadline = pending[0]
        limit = deadline if end is None else min(deadline, end)
        thread.join(max(0.0, limit - time.monotonic()))
        if thread.is_alive():
            if end is not None and time.monotonic() >= end:
                return False
            with _lock:  # past its own deadline: stop waiting for this one
                _background.pop(thread, None)


def _start(fn: Callable[[], object], what: str, deadline: float) -> threading.Thread:
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            ctx.run(fn)
        except BaseException as exc:  # noqa: BLE001 - report, never propagate
            log.warning("rundossier could not %s: %s: %s", what, type(exc).__name__, exc)
        finally:
            with _lock:
                _background.pop(threading.current_thread(), None)

    thread = threading.Thread(target=target, name=f"rundossier {what}", daemon=True)
    with _lock:
        _background[thread] = deadline
    thread.start()
    return thread


def _at_exit() -> None:
    from rundossier.integrations.prefect.session import HURRY

    HURRY.set()  # background work stops waiting for Prefect's API and records what it knows
    _queue.drain(QUEUE_DRAIN_AT_EXIT_S)
    wait_background()


atexit.register(_at_exit)

__all__ = ["drain", "enqueue", "run_bounded", "run_background", "wait_background"]
