"""The Prefect integration's two workers (see `rundossier.integrations.worker` for their bounds).

`WRITES` records what this process sees, in order: a flow run's start, each task try's start and
end, the flow run's end (so a try is written before the end that closes its run). `AFTER_END`
reads a finished flow run's task runs back from Prefect's API, which may take up to the Block's
`api_timeout_seconds`: on its own worker so it never holds up the next run's writes.
"""

from __future__ import annotations

import atexit
import threading

from rundossier.integrations.worker import EXIT_DRAIN_S, Worker, drain_all

WRITES = Worker("rundossier-prefect")
AFTER_END = Worker("rundossier-prefect-after-end")
#: set at process exit: reading back stops waiting for Prefect's API and records what is known
HURRY = threading.Event()


def wait(timeout: float | None = None) -> bool:
    """Wait for both workers (reading back may queue writes: the writes are drained last too)."""
    return drain_all((WRITES, AFTER_END, WRITES), timeout)


def _at_exit() -> None:
    HURRY.set()
    wait(EXIT_DRAIN_S)


atexit.register(_at_exit)  # runs before the worker module's own drain (atexit runs last-in first)

__all__ = ["WRITES", "AFTER_END", "wait"]
