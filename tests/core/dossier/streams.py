"""Fixture event streams: rows and events of runs with known shapes, built in a few lines.

Times are seconds after T0 (2026-01-01 00:00:00 UTC) so that expected windows read as numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rundossier.storage.db import Event, Run, Step

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN_ID = "run_01JGTEST0000000000000000AA"
OK_RUN_ID = "run_01JGTEST0000000000000000A0"


def t(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def run(**kw: Any) -> Run:
    values: dict[str, Any] = {
        "run_id": RUN_ID,
        "orchestrator": "python",
        "flow_id": "nightly_etl",
        "run_key": "key-1",
        "status": "failed",
        "attempt": 1,
        "queued_at": None,
        "started_at": t(0),
        "finished_at": t(100),
        "host": "worker-1",
    }
    for k in ("queued_at", "started_at", "finished_at", "blobs_expired_at"):
        if k in kw and not isinstance(kw[k], datetime) and kw[k] is not None:
            kw[k] = t(kw[k])
    values.update(kw)
    return Run(**values)


def step(step_id: str, **kw: Any) -> Step:
    values: dict[str, Any] = {
        "run_id": kw.pop("run_id", RUN_ID),
        "step_id": step_id,
        "try_number": 1,
        "status": "success",
        "started_at": None,
        "finished_at": None,
    }
    for k in ("queued_at", "started_at", "finished_at", "first_output_at", "last_output_at"):
        if k in kw and kw[k] is not None and not isinstance(kw[k], datetime):
            kw[k] = t(kw[k])
    values.update(kw)
    return Step(**values)


_ids = iter(range(1, 10**9))


def event(kind: str, at: float, step_id: str | None = None, try_number: int | None = None, **kw: Any) -> Event:
    return Event(
        id=next(_ids),
        run_id=kw.pop("run_id", RUN_ID),
        kind=kind,
        ts=t(at),
        step_id=step_id,
        try_number=try_number,
        summary=kw.pop("summary", ""),
        raw_ref=kw.pop("raw_ref", None),
        data=kw.pop("data", None),
    )


def failed_event(step_id: str, at: float, chain: list[tuple[str, str]], try_number: int = 1) -> Event:
    """The `step_failed` event the recorder writes (chain root cause first)."""
    outer = chain[-1]
    return event(
        "step_failed",
        at,
        step_id,
        try_number,
        summary=f"{outer[0]}: {outer[1]}",
        data={"chain": [{"type": ty, "message": m} for ty, m in chain]},
    )
