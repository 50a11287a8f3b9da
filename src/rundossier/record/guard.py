"""Never break the host: a fault in rundossier's own work is one warning, never the task's failure.

Every place where rundossier runs inside someone else's program (the Recorder's calls from a task,
the Airflow listener, the Prefect hooks and Block) runs its work under `guard` or `guarded`, as
Sentry's SDK runs its hooks under `capture_internal_exceptions()`. The task's own exception is not
rundossier's: it is never caught here (callers re-raise it themselves). `BaseException`s that are
not `Exception`s (KeyboardInterrupt, SystemExit, a cancellation) pass through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("rundossier")

#: where a guard's warning goes (default: the `rundossier` logger)
Warn = Callable[[str], None]


def _warn_fault(what: str, exc: Exception, warn: Warn | None) -> None:
    message = f"rundossier could not {what}: {type(exc).__name__}: {exc}"
    try:
        (warn or log.warning)(message)
    except Exception:  # noqa: BLE001 - a broken warning sink: the logger still says it
        log.warning(message)


@contextmanager
def guard(what: str, warn: Warn | None = None) -> Iterator[None]:
    """Run the block; a rundossier fault in it is logged once as a warning ("could not `what`")."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the boundary: rundossier must not break the host
        _warn_fault(what, exc, warn)


def guarded(what: str, fn: Callable[[], T], default: T, warn: Warn | None = None) -> T:
    """`fn()`, or `default` when it fails (a warning says what could not be done)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the boundary: rundossier must not break the host
        _warn_fault(what, exc, warn)
        return default


__all__ = ["guard", "guarded", "Warn"]
