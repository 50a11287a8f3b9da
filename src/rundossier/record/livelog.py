"""Follow mode's writer side: running steps' recent log lines, published to storage now and then.

A `LivePublisher` watches the `StepLog`s of running steps. One daemon thread wakes every
`interval` seconds and, for each log that grew since its last snapshot, writes one small blob
(`log.live.jsonl.gz`: the parts spilled so far and the lines buffered since, see
`core.logs.live`). Nothing runs on the task's own thread and nothing per line: a quiet step costs
nothing, a chatty one at most one put per interval. The thread ends once no step has been watched
for `linger` seconds (so back-to-back steps do not pay for a thread start each) and starts again
with the next one (also after a fork, where threads do not survive).

`unwatch` never waits on storage: it returns the key to delete when a snapshot was written, and
when one is being written at that moment the publisher deletes it itself once the put returns, so
no snapshot outlives its step. A failing put is reported once per step, then retried on later
rounds; it never reaches the task.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rundossier.core.logs import encode_live
from rundossier.record.steplog import StepLog

#: default seconds between two snapshots of one running step's log
LIVE_LOG_EVERY_S = 3.0


@dataclass
class _Watched:
    key_of: str | Callable[[], str]  # the key, or how to make it (most steps never publish)
    log: StepLog
    lock: threading.Lock = field(default_factory=threading.Lock)
    published_bytes: int = 0  # an empty log has nothing to publish
    published: bool = False
    busy: bool = False
    closed: bool = False
    warned: bool = False

    @property
    def key(self) -> str:
        if not isinstance(self.key_of, str):
            self.key_of = self.key_of()
        return self.key_of


class LivePublisher:
    """Writes periodic snapshots of watched step logs with `put(key, data)`."""

    def __init__(
        self,
        put: Callable[[str, bytes], object],
        delete: Callable[[str], object],
        *,
        interval: float = LIVE_LOG_EVERY_S,
        linger: float = 30.0,
        warn: Callable[[str], None] = lambda msg: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self._put = put
        self._delete = delete
        self.interval = interval
        self.linger = linger
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[int, _Watched] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._wake = threading.Event()

    def watch(self, key: str | Callable[[], str], log: StepLog) -> None:
        """Start publishing `log` under `key` (the step's LOG_LIVE blob key, or a function that
        makes it: called once, when the first snapshot is written)."""
        with self._lock:
            self._watched[id(log)] = _Watched(key, log)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._loop, name="rundossier-live-log", daemon=True)
                self._thread.start()

    def unwatch(self, log: StepLog) -> str | None:
        """Stop publishing `log`; returns the key of a snapshot that was written (to delete), or None."""
        with self._lock:
            entry = self._watched.pop(id(log), None)
        if entry is None:
            return None
        with entry.lock:
            entry.closed = True
            if entry.busy:  # a put is in flight: the publisher deletes its blob when it returns
                return None
            return entry.key if entry.published else None

    @property
    def watching(self) -> int:
        with self._lock:
            return len(self._watched)

    def publish_once(self) -> int:
        """Write a snapshot of every watched log that grew; returns how many were written."""
        with self._lock:
            entries = list(self._watched.values())
        return sum(1 for entry in entries if self._publish(entry))

    def _publish(self, entry: _Watched) -> bool:
        with entry.lock:
            size = entry.log.total_bytes
            if entry.closed or entry.busy or size == entry.published_bytes:
                return False
            entry.busy = True
        ok = False
        try:
            parts, payload = entry.log.live_view()
            self._put(entry.key, encode_live(parts, payload, self._clock()))
            ok = True
        except Exception as exc:  # noqa: BLE001 - follow mode must never reach the task
            if not entry.warned:
                entry.warned = True
                where = entry.key_of if isinstance(entry.key_of, str) else "of a running step"
                self._warn(f"rundossier could not publish the live log {where}: {type(exc).__name__}: {exc}")
        with entry.lock:
            entry.busy = False
            if ok:
                entry.published_bytes = size
                entry.published = True
            orphan = entry.closed and entry.published
        if orphan:  # the step ended while this snapshot was being written
            try:
                self._delete(entry.key)
            except Exception as exc:  # noqa: BLE001
                self._warn(f"rundossier could not delete the live log {entry.key}: {type(exc).__name__}: {exc}")
        return ok

    def _loop(self) -> None:
        wake = self._wake
        idle_since: float | None = None
        while True:
            wake.wait(min(self.interval, self.linger) if idle_since is not None else self.interval)
            with self._lock:
                now = time.monotonic()
                if self._watched:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                if (idle_since is not None and now - idle_since >= self.linger) or self._pid != os.getpid():
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
                wake.clear()
            self.publish_once()


__all__ = ["LivePublisher", "LIVE_LOG_EVERY_S"]
