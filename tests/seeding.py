"""Test helper: put example runs into a store, through the real recorder or as history rows.

History rows get run ids minted at a past time, so time-range filters see them where they belong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rundossier import Recorder
from rundossier.core.ids import run_id_at
from rundossier.storage.db import RunStore


class LoadError(RuntimeError):
    pass


def history_run(
    store: RunStore,
    *,
    flow_id: str,
    status: str = "success",
    ago: timedelta = timedelta(0),
    orchestrator: str = "python",
    run_key: str | None = None,
    error: tuple[str | None, str] | None = None,
    duration_s: float = 42.0,
    host: str = "worker-1",
) -> str:
    """One finished run row (no steps, no blobs) created `ago` before now; returns its run id."""
    when = datetime.now(UTC) - ago
    run_id = run_id_at(when)
    values: dict[str, object] = {
        "run_id": run_id,
        "orchestrator": orchestrator,
        "flow_id": flow_id,
        "run_key": run_key or run_id,
        "status": status,
        "queued_at": when,
        "started_at": when,
        "finished_at": when + timedelta(seconds=duration_s),
        "duration_ms": int(duration_s * 1000),
        "host": host,
    }
    if error is not None:
        values["error_type"], values["error_message"] = error
    return store.upsert_run(values)


def _connect() -> None:
    raise ConnectionError("timeout after 30s connecting to warehouse.internal:5432")


def _load() -> None:
    try:
        _connect()
    except ConnectionError as exc:
        raise LoadError("load failed: warehouse unavailable") from exc


def failed_run(rec: Recorder, flow_id: str = "nightly_etl") -> str:
    """A recorded run whose `load` step fails with a chained exception (a real trace)."""
    try:
        with rec.run(flow_id) as run:
            with run.step("extract") as h:
                h.log.write("stdout", "fetched 250 rows")
            with run.step("load", upstream=["extract"]) as h:
                h.log.write("stderr", "connecting to the warehouse", "INFO")
                _load()
    except LoadError:
        pass
    return run.run_id


def log_run(rec: Recorder, lines: int = 2000, flow_id: str = "big_report") -> str:
    """A successful run whose `render` step wrote `lines` lines (every 100th on stderr)."""
    with rec.run(flow_id) as run:
        h = run.start_step("render")
        for i in range(1, lines + 1):
            if i % 100 == 0:
                h.log.write("stderr", f"checkpoint {i // 100}: {i} rows rendered", "WARNING")
            else:
                h.log.write("stdout", f"row {i:05d} rendered ok")
        h.finish("success")
    return run.run_id


__all__ = ["history_run", "failed_run", "log_run", "LoadError"]
