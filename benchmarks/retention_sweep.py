"""Benchmark: retention sweep throughput and peak memory, against the bare deletes in the same run.

    .venv/bin/python benchmarks/retention_sweep.py [--runs 100000] [--only sqlite|tmpfs|postgres]
        [--batch N (default: the sweep's own)] [--order time|shuffled] [--writers N] [--json] [--quick]

Fixtures: `--runs` expired runs (ended 40-100 days ago, policy 30 days) plus 1% fresh ones, over 10
flows, inserted straight into the tables; each run has a step and an event, a log blob, and every
fifth run a failed step with a trace (text and JSON blobs): 1.4 blobs per run. Rows and blobs are
written oldest first, as a live store gets them (`--order time`); `--order shuffled` writes them in
an order unrelated to their time, the worst case for the database's page locality (a batch of one
flow's runs then touches a page per run: at 100,000 runs the row work alone is ~5x slower).

Cases:
  sqlite+local      SQLite (WAL) and a file:// blob store, in the system's temp directory (disk;
                    TMPDIR=/some/mount measures another filesystem)
  sqlite+tmpfs      the same in /dev/shm: what the sweep does when the disk is not the limit
  postgres+s3       PostgreSQL on 127.0.0.1:5432 and S3 (moto's server on loopback)

Measured in a fresh child process each (so its peak RSS is the sweep's own):
  sweep   rundossier.retention.sweep: keyset pages, planner, per batch: mark, delete blobs, delete rows
  floor   the same deletes with nothing else: per batch of run ids, delete the blobs (local: the run's
          folder; S3: the keys, 1000 per DeleteObjects), then DELETE the rows in one transaction
  small   the sweep again on a tenth of the runs: peak memory must not grow with the number of runs
  rm -rf  (local cases) GNU rm -rf of the same blob tree, no database: how fast this disk deletes
Targets (issue #6): >= 5,000 runs/s on sqlite+local; peak RSS < 200 MB whatever the number of runs.
Issue #20 asks the same of postgres+s3 with `--writers 8`: while the sweep and the floor run, 8
processes record fresh failures (writers.py's) into the same database and store, as in a live
deployment; afterwards every one of their runs must still be there (the sweep removes what the
policy says and nothing that was running or fresh). `--quick` runs the sqlite case on 500 runs.

Time: the S3 fixtures dominate (moto takes a put at a time, ~100-150/s on a busy 2-core machine:
100,000 runs is ~20 minutes per fixture, three fixtures per case); `--only` picks one case.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable, writers

from benchtable import Target, add_flags, emit, row  # noqa: E402

from rundossier.retention.sweep import DEFAULT_BATCH  # noqa: E402

NOW = datetime(2026, 11, 23, tzinfo=UTC)
FLOWS = 10
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run_id(ms: int, n: int) -> str:
    def enc(v: int, k: int) -> str:
        return "".join(ALPHABET[(v >> (5 * i)) & 31] for i in reversed(range(k)))

    return "run_" + enc(ms, 10) + enc(n, 16)


# -- fixtures ----------------------------------------------------------------------------------------


def make_fixture(db_url: str, storage_url: str, options: dict[str, Any], runs: int, order: str = "time") -> int:
    """Insert `runs` expired runs (+1% fresh) and write their blobs; returns the number of blobs."""
    from sqlalchemy import insert

    from rundossier.storage.blobs import LOG, TRACE_JSON, TRACE_TEXT, BlobStore, blob_key
    from rundossier.storage.db import RunStore
    from rundossier.storage.db.models import Event, Run, Step

    store = RunStore(db_url)
    blobs = BlobStore(storage_url, options)
    store.set_policy("*", keep_days=30, keep_last=0, blob_days=0)
    log_gz = gzip.compress(b'{"ts":1,"stream":"stdout","message":"hello"}\n' * 20)
    trace_gz = gzip.compress(b"Traceback (most recent call last):\n  ...\nValueError: boom\n" * 20)
    fresh = max(1, runs // 100)
    total = runs + fresh
    chunk = 5000
    n_blobs = 0

    def ended_at(i: int) -> datetime:
        age = 40 + (i % 60) if i < runs else 1
        return NOW - timedelta(days=age, seconds=i % 86400)

    # as a live store gets them: oldest first (a run's id, its rows and its blobs follow its time)
    sequence = sorted(range(total), key=ended_at) if order == "time" else list(range(total))
    for start in range(0, total, chunk):
        run_rows, step_rows, event_rows, files = [], [], [], []
        for i in sequence[start : start + chunk]:
            ended = ended_at(i)
            run_id = _run_id(int(ended.timestamp() * 1000), i)
            flow = f"flow_{i % FLOWS}"
            log_key = blob_key("python", flow, run_id, "work", 1, LOG)
            files.append((log_key, log_gz))
            run = {
                "run_id": run_id,
                "orchestrator": "python",
                "flow_id": flow,
                "run_key": run_id,
                "status": "failed" if i % 5 == 0 else "success",
                "attempt": 1,
                "started_at": ended - timedelta(minutes=3),
                "finished_at": ended,
                "created_at": ended,
                "updated_at": ended,
                "spooled": False,
                "blobs_expired": False,
                "trace_uri": None,
                "trace_bytes": None,
                "error_type": None,
            }
            step = {
                "run_id": run_id,
                "step_id": "work",
                "try_number": 1,
                "status": run["status"],
                "log_uri": blobs.uri_for(log_key),
                "log_bytes": 900,
                "log_lines_stdout": 20,
                "log_lines_stderr": 0,
                "spooled": False,
                "updated_at": ended,
                "trace_uri": None,
                "trace_bytes": None,
                "error_type": None,
            }
            if i % 5 == 0:
                text = blob_key("python", flow, run_id, "work", 1, TRACE_TEXT)
                files += [(text, trace_gz), (blob_key("python", flow, run_id, "work", 1, TRACE_JSON), trace_gz)]
                run.update(trace_uri=blobs.uri_for(text), trace_bytes=1100, error_type="ValueError")
                step.update(trace_uri=run["trace_uri"], trace_bytes=1100, error_type="ValueError")
            run_rows.append(run)
            step_rows.append(step)
            event_rows.append({"run_id": run_id, "kind": "run_finished", "ts": ended, "summary": run["status"]})
        with store.transaction("insert fixtures") as conn:
            conn.execute(insert(Run.__table__), run_rows)
            conn.execute(insert(Step.__table__), step_rows)
            conn.execute(insert(Event.__table__), event_rows)
        _write_blobs(blobs, files)
        n_blobs += len(files)
    store.close()
    return n_blobs


def _write_blobs(blobs: Any, files: list[tuple[str, bytes]]) -> None:
    if blobs.url.startswith("file://"):
        root = blobs.url[len("file://") :]
        made: set[str] = set()
        for key, data in files:
            path = f"{root}/{key}"
            d = path.rsplit("/", 1)[0]
            if d not in made:
                os.makedirs(d, exist_ok=True)
                made.add(d)
            with open(path, "wb") as f:
                f.write(data)
        return
    root = blobs.fs._strip_protocol(blobs.url).rstrip("/")
    blobs.fs.pipe({f"{root}/{k}": v for k, v in files}, batch_size=64)


# -- measured work (in a child process) --------------------------------------------------------------


def _measure(mode: str, db_url: str, storage_url: str, options: dict[str, Any], batch: int, q: Any) -> None:
    from rundossier.retention import sweep
    from rundossier.storage.blobs import BlobStore
    from rundossier.storage.db import RunStore

    store = RunStore(db_url)
    blobs = BlobStore(storage_url, options)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if mode == "sweep":
        report = sweep(store, blobs, now=NOW, batch_size=batch)
        assert report.complete, report.error
        tot = report.totals()
        runs, nblobs = tot["runs_removed"], tot["blobs_removed"]
    else:
        runs, nblobs = _floor(store, blobs, batch)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put({"seconds": seconds, "runs": runs, "blobs": nblobs, "rss_start": rss0, "rss_peak": peak})


def _floor(store: Any, blobs: Any, batch: int) -> tuple[int, int]:
    """The bare deletes: no planner, no marks, no accounting, no status checks."""
    from sqlalchemy import delete, select

    from rundossier.retention.sweep import LOCAL_DELETE_THREADS
    from rundossier.storage.blobs import run_prefix
    from rundossier.storage.db.models import Event, Run, Step

    r, s, e = Run.__table__, Step.__table__, Event.__table__
    cutoff = NOW - timedelta(days=30)
    local = blobs.url.startswith("file://")
    runs = nblobs = 0
    cursor = ""
    pool = ThreadPoolExecutor(LOCAL_DELETE_THREADS)
    while True:
        with store.session() as sess:
            rows = sess.execute(
                select(r.c.run_id, r.c.orchestrator, r.c.flow_id, r.c.trace_uri)
                .where(r.c.run_id > cursor, r.c.finished_at < cutoff)
                .order_by(r.c.run_id)
                .limit(batch)
            ).all()
            if not rows:
                return runs, nblobs
            ids = [row[0] for row in rows]
            logs = sess.execute(select(s.c.log_uri).where(s.c.run_id.in_(ids))).all()
        uris = [u for (u,) in logs if u] + [t for *_, t in rows if t]
        uris += [t.replace("trace.txt.gz", "trace.json.gz") for *_, t in rows if t]
        if local:  # the same concurrency as the sweep (deletes are latency-bound)
            prefixes = [run_prefix(orch, flow, run_id) for run_id, orch, flow, _ in rows]
            list(pool.map(blobs.delete_prefix, prefixes))
        else:
            blobs.delete(uris)
        with store.transaction("floor delete") as conn:
            conn.execute(delete(s).where(s.c.run_id.in_(ids)))
            conn.execute(delete(e).where(e.c.run_id.in_(ids)))
            conn.execute(delete(r).where(r.c.run_id.in_(ids)))
        runs += len(ids)
        nblobs += len(uris)
        cursor = ids[-1]


def measure(mode: str, db_url: str, storage_url: str, options: dict[str, Any], batch: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(mode, db_url, storage_url, options, batch, q))
    p.start()
    result = q.get(timeout=3600)
    p.join(60)
    return result


# -- cases ---------------------------------------------------------------------------------------------


def case(
    name: str, runs: int, batch: int, order: str, setup: Any, writers: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    results = []
    modes = [("sweep", runs), ("floor", runs), ("sweep", max(min(1000, runs // 2), runs // 10))]
    if name.startswith("sqlite"):
        modes.append(("rm -rf", runs))
    for mode, n in modes:
        with setup() as (db_url, storage_url, options):
            t0 = time.perf_counter()
            made = make_fixture(db_url, storage_url, options, n, order)
            os.sync()  # the fixture's dirty pages must not be flushed on the measured run's time
            print(
                f"  [{name}] fixture: {n:,} expired runs, {made:,} blobs in {time.perf_counter() - t0:.1f}s", flush=True
            )
            if mode == "rm -rf":
                r = rm_rf(storage_url, made, n)
            elif writers and n == runs:
                r = measure_with_writers(mode, db_url, storage_url, options, batch, writers)
            else:
                r = measure(mode, db_url, storage_url, options, batch)
            label = mode if n == runs else f"{mode} ({n:,} runs)"
            results.append((label, r))
            _print_row(name, label, r)
    return results


def measure_with_writers(
    mode: str, db_url: str, storage_url: str, options: dict[str, Any], batch: int, procs: int
) -> dict[str, Any]:
    """`measure` while `procs` processes record fresh failures into the same database and store;
    afterwards, how many of their runs are missing (the sweep must leave every one of them)."""
    import uuid

    from sqlalchemy import create_engine, text
    from writers import Background

    cfg = {"db_url": db_url, "storage_url": storage_url, "options": options}
    flow = f"bench_live_{uuid.uuid4().hex[:6]}"
    with Background(cfg, flow, procs) as bg:
        r = measure(mode, db_url, storage_url, options, batch)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT count(DISTINCT run_key) FROM rd_run WHERE flow_id = :f"), {"f": flow}).scalar()
    engine.dispose()
    r.update(writers=procs, written=bg.written, writers_lost=bg.written - int(kept or 0))
    print(f"  [{mode}] {procs} writers recorded {bg.written} failures meanwhile; {r['writers_lost']} missing after")
    return r


def rm_rf(storage_url: str, blobs: int, runs: int) -> dict[str, Any]:
    """The disk's own pace: GNU `rm -rf` of the fixture's blob tree (no database at all)."""
    t0 = time.perf_counter()
    subprocess.run(["rm", "-rf", storage_url[len("file://") :]], check=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "runs": runs, "blobs": blobs, "rss_start": 0.0, "rss_peak": 0.0}


def _print_row(name: str, label: str, r: dict[str, Any]) -> None:
    row = (
        f"{name:<14} {label:<22} {r['runs']:>8,} runs {r['seconds']:>7.2f}s "
        f"{r['runs'] / r['seconds']:>9,.0f} runs/s {r['blobs'] / r['seconds']:>9,.0f} blobs/s"
    )
    if r["rss_peak"]:  # rm -rf has no process of ours to measure
        row += f" RSS {r['rss_start']:>5.0f} MB at start, peak {r['rss_peak']:>5.0f} MB"
    print(row, flush=True)


def sqlite_local(where: str | None = None) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def setup() -> Any:
        with tempfile.TemporaryDirectory(prefix="rd-bench-", dir=where) as d:
            yield f"sqlite:///{d}/runs.db", f"file://{d}/blobs", {}

    return setup


def postgres_s3(endpoint: str) -> Any:
    from contextlib import contextmanager

    from tests.pgdb import temporary_database
    from tests.s3server import create_bucket, storage_options

    @contextmanager
    def setup() -> Any:
        with temporary_database() as url:
            yield url, f"s3://{create_bucket(endpoint)}/rd", storage_options(endpoint)

    return setup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--order", choices=["time", "shuffled"], default="time")
    ap.add_argument("--only", choices=["sqlite", "tmpfs", "postgres"])
    ap.add_argument("--writers", type=int, default=0, help="processes recording failures during the sweep and floor")
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:
        args.runs = 500
        args.only = args.only or "sqlite"
    print(f"{args.runs:,} expired runs, batches of {args.batch:,}, rows and blobs written in {args.order} order")
    summary: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    if args.only in (None, "sqlite"):
        summary["sqlite+local"] = case("sqlite+local", args.runs, args.batch, args.order, sqlite_local(), args.writers)
    if args.only in (None, "tmpfs") and os.path.isdir("/dev/shm"):
        summary["sqlite+tmpfs"] = case(
            "sqlite+tmpfs", args.runs, args.batch, args.order, sqlite_local("/dev/shm"), args.writers
        )
    if args.only in (None, "postgres"):
        from tests.pgdb import pg_unavailable_reason
        from tests.s3server import moto_s3_server

        reason = pg_unavailable_reason()
        if reason:
            print(f"postgres+s3 skipped: {reason}")
        else:
            with moto_s3_server() as endpoint:
                summary["postgres+s3"] = case(
                    "postgres+s3", args.runs, args.batch, args.order, postgres_s3(endpoint), args.writers
                )
    print("\nsummary")
    out = []
    for name, rows in summary.items():
        res = dict(rows)
        sweep_r, floor_r = res["sweep"], res["floor"]
        small = next(v for k, v in rows if k.startswith("sweep ("))
        rate = sweep_r["runs"] / sweep_r["seconds"]
        ratio = (sweep_r["runs"] / sweep_r["seconds"]) / (floor_r["runs"] / floor_r["seconds"])
        rm_r = res.get("rm -rf")
        rm = f"; rm -rf of the blobs alone {rm_r['runs'] / rm_r['seconds']:,.0f} runs/s" if rm_r else ""
        print(
            f"  {name}: sweep {rate:,.0f} runs/s, {sweep_r['blobs'] / sweep_r['seconds']:,.0f} blobs/s; "
            f"{ratio:.2f}x the bare deletes{rm}; peak RSS {sweep_r['rss_peak']:.0f} MB "
            f"({small['rss_peak']:.0f} MB with a tenth of the runs)"
        )
        load = f", {sweep_r['writers']} writers" if sweep_r.get("writers") else ""
        out.append(
            row(
                f"{name} sweep{load}",
                rate,
                "runs/s",
                floor=floor_r["runs"] / floor_r["seconds"],
                target=Target(">=", 5000, "value"),
                note=f"{args.runs:,} runs",
            )
        )
        out.append(
            row(
                f"{name} sweep peak RSS",
                sweep_r["rss_peak"],
                "MB",
                target=Target("<", 200, "value"),
                note=f"{small['rss_peak']:.0f} MB with a tenth",
            )
        )
        if sweep_r.get("writers"):
            out.append(
                row(
                    f"{name} writers' runs removed",
                    float(sweep_r["writers_lost"]),
                    "runs",
                    target=Target("<=", 0, "value"),
                    note=f"{sweep_r['written']} recorded during the sweep",
                )
            )
    for name in ("sqlite+local", "sqlite+tmpfs"):
        if name in summary:
            s = dict(summary[name])["sweep"]
            ok = s["runs"] / s["seconds"] >= 5000 and s["rss_peak"] < 200
            print(f"  target on {name} (>= 5,000 runs/s, peak < 200 MB): {'met' if ok else 'NOT met'}")
    emit(args, "retention_sweep", out)


if __name__ == "__main__":
    main()
