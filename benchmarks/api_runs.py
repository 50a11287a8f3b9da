"""Benchmark: `GET /api/runs` over HTTP with 1,000,000 runs, in SQLite and in PostgreSQL.

    .venv/bin/python benchmarks/api_runs.py [--runs 1000000] [--db sqlite,postgres] [--repeat 40] [--json] [--quick]

Bulk-inserts the runs (SQLite: executemany in one transaction; PostgreSQL: COPY), then serves the
real app with uvicorn on 127.0.0.1 and times, with an httpx client, the median of:
  first page      GET /api/runs?limit=50
  by flow         GET /api/runs?flow_id=flow_042&limit=50           (one flow of 200)
  status + range  GET /api/runs?status=failed&since=<24h ago>&limit=50
  page 500        GET /api/runs?limit=50&cursor=<next_cursor of page 499>
  q flow          GET /api/runs?q=flow_042&limit=50                   (text in the flow id)
  q error         GET /api/runs?q=WAREHOUSE&limit=50                  (text in 10% of runs' errors)
  q rare          GET /api/runs?q=peer reset&limit=50                 (one failed run in 10,000: a long scan)
  q none          GET /api/runs?q=no such text&limit=50               (no match: the whole table)
Baseline measured in the same run: GET /healthz (the HTTP round trip with no query), and each
query run directly on the store (no HTTP, no JSON).
Targets (issue #5): each median under 50 ms; page 500 within 2x of the first page. The q searches
(issue #18: flow id, run key, error type and message, case-insensitive) are reported with no target:
a search for text no run has reads every run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.liveserver: the same loopback uvicorn the API tests use
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchtable

from benchtable import Row, Target, add_flags, emit, row  # noqa: E402
from tests.liveserver import LiveServer  # noqa: E402

from rundossier.core.ids import run_id_at  # noqa: E402
from rundossier.server import create_app  # noqa: E402
from rundossier.settings import Settings  # noqa: E402
from rundossier.storage.db import RunQuery, RunStore  # noqa: E402

FLOWS = 200
SPAN = timedelta(days=90)
BATCH = 50_000
TARGET_MS = 50.0
#: per database: the HTTP floor (GET /healthz median, ms) and the rows for --json
FLOORS: dict[str, float] = {}
ROWS: list[Row] = []
COLUMNS = [
    "run_id",
    "orchestrator",
    "flow_id",
    "run_key",
    "status",
    "attempt",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "error_type",
    "error_message",
    "fingerprint",
    "host",
    "spooled",
    "blobs_expired",
    "created_at",
    "updated_at",
]


def rows(n: int, seed: int = 5, *, text_times: bool = False) -> Iterator[list[tuple[Any, ...]]]:
    """`n` runs over the last 90 days, oldest first, in batches: 85% success, 10% failed, 2% running...

    `text_times`: times as SQLite stores them (naive UTC text), not datetimes."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - SPAN
    step = SPAN / n
    batch: list[tuple[Any, ...]] = []
    for i in range(n):
        when = start + step * i
        r = rng.random()
        status = "success" if r < 0.85 else "failed" if r < 0.95 else "running" if r < 0.97 else "skipped"
        flow = f"flow_{rng.randrange(FLOWS):03d}"
        orch = ("airflow", "prefect", "python")[i % 3]
        run_id = run_id_at(when)
        rare = i % 10_000 == 7  # one run in 10,000 failed with a rare error
        if rare:
            status = "failed"
        failed = status == "failed"
        end = None if status == "running" else when + timedelta(seconds=60)
        if text_times:
            when = when.replace(tzinfo=None).isoformat(sep=" ")  # type: ignore[assignment]
            end = end.replace(tzinfo=None).isoformat(sep=" ") if end else None  # type: ignore[assignment]
        batch.append(
            (
                run_id,
                orch,
                flow,
                run_id,
                status,
                1,
                when,
                when,
                end,
                None if status == "running" else 60_000,
                ("ConnectionResetError" if rare else "WarehouseError") if failed else None,
                ("[Errno 104] Connection reset by peer" if rare else "load failed: warehouse unavailable")
                if failed
                else None,
                f"{rng.randrange(50):016x}" if failed else None,
                f"worker-{rng.randrange(8)}",
                False,
                False,
                when,
                when,
            )
        )
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _secondary_indexes() -> list[Any]:
    from rundossier.storage.db.models import Run

    return list(Run.__table__.indexes)  # type: ignore[attr-defined]


def _without_indexes(store: RunStore, load: Callable[[], None]) -> None:
    """Drop the run table's secondary indexes, load, and build them again (a sort, not 1M inserts)."""
    indexes = _secondary_indexes()
    with store._write.begin() as conn:
        for index in indexes:
            index.drop(conn)
    load()
    with store._write.begin() as conn:
        for index in indexes:
            index.create(conn)


def load_sqlite(store: RunStore, n: int) -> None:
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO rd_run ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    raw = store._write.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("BEGIN")  # the store's connections autocommit: one transaction for the whole load
        for batch in rows(n, text_times=True):
            cur.executemany(sql, batch)
        cur.execute("COMMIT")
    finally:
        raw.close()


def _copy_text(v: Any) -> str:
    """One value in COPY's text format (the generated values hold no tabs, newlines or backslashes)."""
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def load_postgres(store: RunStore, n: int) -> None:
    raw = store._write.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY rd_run ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for batch in rows(n):
                copy.write("".join("\t".join(map(_copy_text, row)) + "\n" for row in batch).encode())
        raw.commit()
    finally:
        raw.close()


def medians_ms(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each function, timed in turns (one call of each per round)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench(
    db_url: str, n: int, repeat: int, label: str
) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float, int]]]:
    store = RunStore(db_url, timeout=30)
    t0 = time.perf_counter()
    load = load_sqlite if store.dialect == "sqlite" else load_postgres
    _without_indexes(store, lambda: load(store, n))
    with store._write.begin() as conn:
        conn.exec_driver_sql("ANALYZE" if store.dialect == "sqlite" else "ANALYZE rd_run")
    print(f"[{label}] inserted {store.count_runs():,} runs in {time.perf_counter() - t0:.1f}s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-api-"))
    settings = Settings.resolve(explicit={"home": str(tmp), "db_url": db_url, "storage_url": f"file://{tmp}/blobs"})
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    queries: dict[str, dict[str, Any]] = {
        "first page": {"limit": 50},
        "by flow": {"flow_id": "flow_042", "limit": 50},
        "status + range": {"status": "failed", "since": since, "limit": 50},
    }
    searches: dict[str, dict[str, Any]] = {
        "q flow": {"q": "flow_042", "limit": 50},
        "q error": {"q": "WAREHOUSE", "limit": 50},
        "q rare": {"q": "peer reset", "limit": 50},
        "q none": {"q": "no such text", "limit": 50},
    }
    results: list[tuple[str, float, float]] = []
    with LiveServer(create_app(settings, store=store)) as server, httpx.Client(base_url=server.url) as client:

        def get(params: dict[str, Any]) -> dict[str, Any]:
            r = client.get("/api/runs", params=params)
            r.raise_for_status()
            return r.json()  # type: ignore[no-any-return]

        cursor = None
        for _ in range(499):
            cursor = get({"limit": 50, **({"cursor": cursor} if cursor else {})})["next_cursor"]
        assert cursor is not None
        queries["page 500"] = {"limit": 50, "cursor": cursor}
        http: dict[str, Callable[[], Any]] = {"healthz": lambda: client.get("/healthz").raise_for_status()}
        direct: dict[str, Callable[[], Any]] = {}
        found: dict[str, int] = {}
        for name, params in queries.items():
            assert len(get(params)["items"]) == 50, name
            http[name] = lambda p=params: get(p)
            q = RunQuery(
                flow_id=params.get("flow_id"),
                status=(params["status"],) if "status" in params else (),
                since=datetime.fromisoformat(params["since"]) if "since" in params else None,
            )
            cur = params.get("cursor")
            direct[name] = lambda q=q, c=cur: store.list_runs(q, limit=50, cursor=c)
        for name, params in searches.items():
            found[name] = len(get(params)["items"])
            http[name] = lambda p=params: get(p)
            search = RunQuery(q=params["q"])
            direct[name] = lambda q=search: store.list_runs(q, limit=50)
        # round robin: a busy machine slows every query alike, so the ratios stay fair
        h = medians_ms(http, repeat)
        d = medians_ms(direct, repeat)
        floor = h.pop("healthz")
        results = [(name, h[name], d[name]) for name in queries]
        searched = [(name, h[name], d[name], found[name]) for name in searches]
    store.close()
    print(f"[{label}] HTTP floor (GET /healthz): {floor:.2f} ms median")
    FLOORS[label] = floor
    return results, searched


def report(label: str, measured: tuple[list[tuple[str, float, float]], list[tuple[str, float, float, int]]]) -> bool:
    results, searched = measured
    ok = True
    first = results[0][1]
    print(f"[{label}] {'query':<16}{'HTTP median':>13}{'store only':>12}   target")
    for name, http, direct in results:
        good = http < TARGET_MS
        note = f"< {TARGET_MS:.0f} ms {'ok' if good else 'MISSED'}"
        if name == "page 500":
            ratio = http / first
            good = good and ratio <= 2.0
            note += f"; {ratio:.2f}x first page (<= 2x {'ok' if ratio <= 2.0 else 'MISSED'})"
        ok = ok and good
        print(f"[{label}] {name:<16}{http:>10.2f} ms{direct:>9.2f} ms   {note}")
        ROWS.append(
            row(f"GET /api/runs {label}, {name}", http, "ms", floor=FLOORS.get(label),
                target=Target("<", TARGET_MS, "value"), note=f"store only {direct:.1f} ms; floor: GET /healthz")
        )  # fmt: skip
        if name == "page 500":
            ROWS.append(
                row(f"GET /api/runs {label}, page 500 vs first page", http, "ms", floor=first, target=Target("<=", 2.0))
            )
    for name, http, direct, n in searched:
        print(f"[{label}] {name:<16}{http:>10.2f} ms{direct:>9.2f} ms   ({n} runs on the page; no target)")
        ROWS.append(row(f"GET /api/runs {label}, {name}", http, "ms", floor=FLOORS.get(label), note=f"{n} runs found"))
    return ok


def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"rd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="admin URL")
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:  # a smoke run: 100,000 runs (a day holds the 50 failed runs a page needs), SQLite only
        args.runs, args.repeat, args.db = 100_000, 3, "sqlite"
    ok = True
    for db in args.db.split(","):
        if db == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="rd-bench-sqlite-"))
            results = bench(f"sqlite:///{tmp}/runs.db", args.runs, args.repeat, "sqlite")
            ok = report("sqlite", results) and ok
        elif db == "postgres":
            try:
                url, drop = _pg_database(args.pg_url)
            except Exception as exc:  # noqa: BLE001
                print(f"[postgres] skipped: {args.pg_url} is not reachable ({type(exc).__name__}: {exc})")
                continue
            try:
                ok = report("postgres", bench(url, args.runs, args.repeat, "postgres")) and ok
            finally:
                drop()
        else:
            print(f"unknown --db {db!r}")
            return 2
    print("all targets met" if ok else "some targets MISSED")
    emit(args, "api_runs", ROWS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
