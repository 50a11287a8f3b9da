"""The heartbeat: the runs and steps this process is recording keep their leases while it lives.

A running run or step row carries `lease_until`: past it, readers (the API, the CLI, the
retention sweep) mark it `crashed` with "no heartbeat since ..." (see `store.leases`). One daemon
thread per process renews the leases of every run and step this process holds, every `interval`
seconds, in one short transaction; the lease lasts `LEASE_BEATS` intervals, so a few missed beats
(a busy database, a GC pause) are forgiven while a killed process is found out within
`LEASE_BEATS * interval` seconds. Nothing runs on the task's thread but a dict insert and remove.

The thread ends when nothing has been held for a while and starts again with the next hold (also
after a fork: threads do not survive one, and a child does not renew what its parent holds).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rundossier.storage.db.leases import LEASE_BEATS

DEFAULT_INTERVAL_S = 30.0


Renew = Callable[[list[str], list[tuple[str, str, int]], datetime, datetime], None]


class Heartbeat:
    """Renews the leases of held runs and step tries with `renew(runs, steps, now, until)`."""

    def __init__(
        self,
        renew: Renew,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        linger: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the heartbeat interval must be positive, got {interval}")
        self._renew = renew
        self.interval = interval
        self._length = timedelta(seconds=interval * LEASE_BEATS)
        self.linger = linger if linger is not None else 2 * interval
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[int, Any] = {}
        self._steps: dict[int, Any] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._holder_pid = -1
        self._holder = ""

    def lease(self) -> tuple[datetime, datetime]:
        """(now, until) for a row that starts running now."""
        now = self._clock()
        return now, now + self._length

    def until(self, now: datetime) -> datetime:
        """When a lease taken at `now` runs out."""
        return now + self._length

    @property
    def holder(self) -> str:
        """This process, as leases name it: host, pid and a token drawn at its start (after a
        fork, the child's own)."""
        pid = os.getpid()
        if self._holder_pid != pid:
            self._holder_pid = pid
            self._holder = f"{socket.gethostname()[:60]}/{pid}/{secrets.token_hex(6)}"
        return self._holder

    def hold_run(self, run: Any) -> None:
        """Keep `run` (anything with `run_id`) alive until `release`."""
        self._hold(self._runs, run)

    def hold_step(self, step: Any) -> None:
        """Keep a step try (with `run.run_id`, `step_id`, `try_number`) alive until `release`."""
        self._hold(self._steps, step)

    def release(self, handle: Any) -> None:
        with self._lock:
            self._runs.pop(id(handle), None)
            self._steps.pop(id(handle), None)

    @property
    def holding(self) -> int:
        with self._lock:
            return len(self._runs) + len(self._steps)

    def _hold(self, table: dict[int, Any], handle: Any) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: what the parent holds is the parent's
                self._runs.clear()
                self._steps.clear()
                self._thread = None
                self._pid = os.getpid()
            table[id(handle)] = handle
            if self._thread is None or not self._thread.is_alive():
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._loop, name="rundossier-heartbeat", daemon=True)
                self._thread.start()

    def beat_once(self) -> int:
        """Renew every held lease now; returns how many rows were renewed."""
        with self._lock:
            runs = [h.run_id for h in self._runs.values()]
            steps = [(h.run.run_id, h.step_id, h.try_number) for h in self._steps.values()]
        if runs or steps:
            now, until = self.lease()
            self._renew(runs, steps, now, until)
        return len(runs) + len(steps)

    def _loop(self) -> None:
        wake, idle = self._wake, 0.0
        while not wake.wait(self.interval):
            try:
                held = self.beat_once()
            except Exception:  # noqa: BLE001 - a missed beat is forgiven; the writer reports outages
                held = 1
            idle = 0.0 if held else idle + self.interval
            if idle >= self.linger:
                with self._lock:
                    if not self._runs and not self._steps:
                        self._thread = None
                        return
                    idle = 0.0


__all__ = ["Heartbeat", "LEASE_BEATS", "DEFAULT_INTERVAL_S"]
