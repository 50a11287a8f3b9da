"""The integrations' background worker: recorder work runs in order on a daemon thread, bounded.

Airflow's listener and Prefect's hooks hand it the work that must not hold up a task for long
(recording a try, a run's start and end). One thread per worker runs the items in the order they
came, each in a copy of its caller's context (Prefect's settings and run contexts are context
variables). The bounds, the same for both integrations:

- queue: at most `max_queued` items wait; one more is dropped with a warning (the task goes on);
- time: `call` waits at most its `timeout` for its item; the worker itself gives an item at most
  `limit` seconds (it runs on a thread of its own), then warns and goes on with the next one,
  leaving the late one to finish if it ever does;
- faults: an item that raises is logged as a warning; the worker goes on;
- shutdown: `drain(timeout)` waits until the queue is empty, at most `timeout`; process exit
  drains every worker for at most `EXIT_DRAIN_S` in all.

After a fork (Airflow's task runner forks) the child starts with an empty queue and a new thread.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

#: items waiting at most; more are dropped with a warning
MAX_QUEUED = 10_000
#: seconds the worker gives one item before it goes on with the next
ITEM_LIMIT_S = 60.0
#: seconds process exit waits, in all, for the items still queued
EXIT_DRAIN_S = 30.0

_log = logging.getLogger("rundossier")


class Item:
    """One piece of work: its outcome (`result` or `error`) once `done` is set."""

    __slots__ = ("fn", "what", "limit", "ctx", "done", "result", "error", "log")

    def __init__(self, fn: Callable[[], Any], what: str, limit: float, log: logging.Logger) -> None:
        self.fn = fn
        self.what = what
        self.limit = limit
        self.ctx = contextvars.copy_context()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.log = log

    def run(self) -> None:
        try:
            self.result = self.ctx.run(self.fn)
        except BaseException as exc:  # noqa: BLE001 - a rundossier fault never reaches the host: logged here
            self.error = exc
            self.log.warning("rundossier could not %s: %s: %s", self.what, type(exc).__name__, exc)
        finally:
            self.done.set()


class Worker:
    """Runs items in order on one daemon thread, within the bounds above. Never raises."""

    def __init__(
        self,
        name: str,
        *,
        max_queued: int = MAX_QUEUED,
        limit_s: float = ITEM_LIMIT_S,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.max_queued = max_queued
        self.limit_s = limit_s
        self.log = log or _log
        self._reset()
        _workers.add(self)

    def _reset(self) -> None:
        """A fresh queue and no thread (at start, and in the child after a fork)."""
        self._cond = threading.Condition()
        self._items: queue.Queue[Item] = queue.Queue(self.max_queued)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], Any], what: str, *, limit: float | None = None) -> Item | None:
        """Queue `fn` without waiting; None (and a warning) when the queue is full."""
        item = Item(fn, what, self.limit_s if limit is None else limit, self.log)
        with self._cond:
            try:
                self._items.put_nowait(item)
            except queue.Full:
                self.log.warning("rundossier: %d records are waiting to be written; dropped: %s", self.max_queued, what)
                return None
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
        return item

    def call(self, fn: Callable[[], Any], *, timeout: float, what: str, limit: float | None = None) -> Any:
        """Run `fn` on the worker, waiting at most `timeout`: its result, or None when it failed,
        was dropped or takes longer (it then goes on in the background)."""
        item = self.submit(fn, what, limit=max(timeout, self.limit_s if limit is None else limit))
        if item is None:
            return None
        if not item.done.wait(timeout):
            self.log.warning(
                "rundossier: %s is taking longer than %g s; the task goes on and the recording "
                "finishes in the background",
                what,
                timeout,
            )
            return None
        return item.result

    def drain(self, timeout: float | None) -> bool:
        """Wait until every queued item is done (or past its limit), at most `timeout`; True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def _serve(self) -> None:
        items = self._items
        while True:
            item = items.get()
            try:
                runner = threading.Thread(target=item.run, name=f"{self.name}: {item.what}", daemon=True)
                runner.start()
                runner.join(item.limit)
                if runner.is_alive():
                    self.log.warning(
                        "rundossier: %s has run for %g s; the next records are written without waiting for it",
                        item.what,
                        item.limit,
                    )
            except Exception as exc:  # noqa: BLE001 - no thread to run it (the process is ending): say so
                self.log.warning("rundossier could not %s: %s: %s", item.what, type(exc).__name__, exc)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()


_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


def drain_all(workers: Iterable[Worker] | None = None, timeout: float | None = EXIT_DRAIN_S) -> bool:
    """Drain `workers` (every worker by default) within one deadline; True if all are empty."""
    end = None if timeout is None else time.monotonic() + timeout
    done = True
    for worker in list(_workers if workers is None else workers):
        left = None if end is None else max(0.0, end - time.monotonic())
        done = worker.drain(left) and done
    return done


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        worker._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(drain_all)

__all__ = ["Worker", "Item", "drain_all", "MAX_QUEUED", "ITEM_LIMIT_S", "EXIT_DRAIN_S"]
