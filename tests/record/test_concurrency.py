"""8 processes recording 200 failing runs each into one database: every run, step, event and trace
there once, nothing surfaced to the recorded code (what waited in a spool is flushed first)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.settings import Settings
from rundossier.storage.db import RunQuery

PROCESSES = 8
RUNS_EACH = 200


class JobError(Exception):
    pass


def _worker(args: tuple[int, str, str, str]) -> int:
    n, db_url, storage_url, home = args
    rec = Recorder(
        Settings.resolve(explicit={"db_url": db_url, "storage_url": storage_url, "home": home, "db_timeout": 30})
    )
    errors = 0
    for i in range(RUNS_EACH):
        try:
            with rec.run("concurrent_flow", run_key=f"w{n}-r{i}") as run:
                with run.step("extract"):
                    print(f"worker {n} run {i} extracted")
                rec.record_event(run, "first_work", f"worker {n} run {i}", step_id="work", try_number=1)
                with run.step("work", upstream=["extract"]):
                    raise JobError(f"worker {n} run {i}")
        except JobError:
            pass
        except Exception:  # noqa: BLE001 - anything else surfaced to the recorded code is a failure
            errors += 1
    rec.close()
    return errors


def _record_concurrently(db_url: str, tmp_path: Path) -> Recorder:
    storage = f"file://{tmp_path}/blobs"
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        errors = pool.map(_worker, [(n, db_url, storage, str(tmp_path / f"home{n}")) for n in range(PROCESSES)])
    assert errors == [0] * PROCESSES
    for n in range(PROCESSES):  # a write that met a busy database waited in its process's spool
        home = Recorder(
            Settings.resolve(explicit={"db_url": db_url, "storage_url": storage, "home": str(tmp_path / f"home{n}")})
        )
        report = home.flush()
        assert (report.failed, report.remaining) == (0, 0), report.errors
    return Recorder(
        Settings.resolve(explicit={"db_url": db_url, "storage_url": storage, "home": str(tmp_path / "reader")})
    )


def _check(rec: Recorder) -> None:
    store = rec.store
    keys: list[str] = []
    cursor = None
    while True:
        page = store.list_runs(RunQuery(flow_id="concurrent_flow"), limit=500, cursor=cursor)
        keys += [r.run_key for r in page.items]
        for r in page.items:
            assert r.status == "failed" and r.trace_uri and not r.spooled and r.root_step_id == "work"
            steps = store.list_steps(r.run_id)
            assert sorted((s.step_id, s.status) for s in steps) == [("extract", "success"), ("work", "failed")]
            events = store.list_events(r.run_id)
            assert sorted(e.kind for e in events) == ["first_work", "run_finished", "step_failed"]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(keys) == len(set(keys)) == PROCESSES * RUNS_EACH
    traces = [b for b in rec.blobs.iter_blobs("python/concurrent_flow") if b.key.endswith("trace.txt.gz")]
    assert len(traces) == PROCESSES * RUNS_EACH


@pytest.mark.slow
def test_sqlite(tmp_path: Path) -> None:
    _check(_record_concurrently(f"sqlite:///{tmp_path}/shared.db", tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres(tmp_path: Path, pg_url: str) -> None:
    _check(_record_concurrently(pg_url, tmp_path))
