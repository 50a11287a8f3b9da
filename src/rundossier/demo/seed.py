"""Seed the demo: a week of history rows, then real recorded runs from the example pipelines.

The example pipelines are copied to `$RUNDOSSIER_HOME/demo/` and imported from there, so their
frames are "your code" in the traces (rundossier's own package counts as a library).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import random
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from rundossier.core.ids import run_id_at
from rundossier.record.recorder import Recorder
from rundossier.storage.db import RunStore, WriteBatch

HISTORY_FLOWS = [
    # flow, orchestrator, steps, failure rate, typical duration (s)
    ("nightly_etl", "python", ["extract", "transform_orders", "load", "publish"], 0.12, 340),
    ("customer_sync", "airflow", ["fetch_customers", "transform", "load"], 0.2, 95),
    ("ml_train", "prefect", ["load-data-0", "train-0", "evaluate-0"], 0.1, 1800),
    ("hourly_metrics", "airflow", ["query", "aggregate", "push"], 0.05, 40),
]
HISTORY_ERRORS = [
    ("TimeoutError", "query exceeded statement_timeout (300s)"),
    (None, "Task exited with return code Negsignal.SIGKILL"),
    ("botocore.exceptions.ClientError", "An error occurred (SlowDown) when calling the PutObject operation"),
]


@dataclass
class Seeded:
    history: int = 0
    recorded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    big_log_run: str | None = None


def load_pipelines(home: Path) -> ModuleType:
    """Copy the example pipelines next to the demo data and import them from there."""
    target_dir = home / "demo"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "example_pipelines.py"
    shutil.copyfile(Path(__file__).with_name("pipelines.py"), target)
    spec = importlib.util.spec_from_file_location("example_pipelines", target)
    if spec is None or spec.loader is None:  # pragma: no cover - a plain .py file always loads
        raise RuntimeError(f"cannot import {target}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def seed_history(store: RunStore, *, days: int = 7, rng: random.Random | None = None) -> int:
    """Finished runs spread over the last `days` days (rows only: steps, no traces or logs)."""
    rng = rng or random.Random(7)
    now = datetime.now(UTC)
    count = 0
    for flow, orchestrator, steps, fail_rate, duration in HISTORY_FLOWS:
        every = timedelta(hours=24 if flow in ("nightly_etl", "ml_train") else 6 if flow == "customer_sync" else 2)
        when = now - timedelta(days=days) + timedelta(minutes=rng.randint(0, 90))
        while when < now - timedelta(minutes=30):
            count += 1
            _history_run(store, rng, flow, orchestrator, steps, fail_rate, duration, when)
            when += every + timedelta(minutes=rng.randint(-10, 10))
    return count


def _history_run(
    store: RunStore,
    rng: random.Random,
    flow: str,
    orchestrator: str,
    steps: list[str],
    fail_rate: float,
    duration: int,
    when: datetime,
) -> None:
    run_id = run_id_at(when)
    failed = rng.random() < fail_rate
    total = duration * rng.uniform(0.7, 1.4)
    key = {
        "airflow": f"scheduled__{when.strftime('%Y-%m-%dT%H:%M:%S')}+00:00",
        "prefect": f"{rng.getrandbits(128):032x}",
    }.get(orchestrator, run_id)
    error = rng.choice(HISTORY_ERRORS) if failed else None
    batch = WriteBatch()
    run: dict[str, Any] = {
        "run_id": run_id,
        "orchestrator": orchestrator,
        "flow_id": flow,
        "run_key": key,
        "status": "failed" if failed else "success",
        "queued_at": when - timedelta(seconds=rng.randint(1, 20)),
        "started_at": when,
        "finished_at": when + timedelta(seconds=total),
        "duration_ms": int(total * 1000),
        "host": f"worker-{rng.randint(1, 4)}",
    }
    fail_at = rng.randrange(len(steps)) if failed else len(steps)
    if error is not None:
        run.update(error_type=error[0], error_message=error[1], root_step_id=steps[fail_at])
    batch.run(run)
    start = when
    for i, step in enumerate(steps):
        part = total / len(steps)
        status = "success" if i < fail_at else "failed" if i == fail_at else "upstream_failed"
        values: dict[str, Any] = {
            "run_id": run_id,
            "step_id": step,
            "try_number": 1,
            "status": status,
            "upstream": [steps[i - 1]] if i else None,
            "host": run["host"],
        }
        if status != "upstream_failed":
            values.update(started_at=start, finished_at=start + timedelta(seconds=part), duration_ms=int(part * 1000))
        if status == "failed" and error is not None:
            values.update(error_type=error[0], error_message=error[1])
        batch.step(values)
        start += timedelta(seconds=part)
    store.write(batch)


def seed_recorded(rec: Recorder, home: Path) -> Seeded:
    """Real runs through the recorder: traces, logs, retries, a crash, a 2,000-line log."""
    pipelines = load_pipelines(home)
    out = Seeded()
    quiet = io.StringIO()
    # the examples print a lot (2,000 log lines): they are captured, not shown on the terminal
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        out.recorded.append(pipelines.nightly_etl(rec, fail=False))
        out.big_log_run = pipelines.big_report(rec)
        out.recorded.append(out.big_log_run)
        out.recorded.append(pipelines.customer_sync(rec))
        out.failed.append(out.recorded[-1])
        out.recorded.append(pipelines.ml_train(rec))
        out.failed.append(out.recorded[-1])
        try:
            pipelines.nightly_etl(rec, fail=True)
        except pipelines.WarehouseError:
            pass
        newest = rec.store.list_runs(limit=1).items[0].run_id
        out.recorded.append(newest)
        out.failed.append(newest)
    return out


__all__ = ["seed_history", "seed_recorded", "load_pipelines", "Seeded"]
