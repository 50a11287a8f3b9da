"""Benchmark: one dossier for a big run, and failure groups over 1,000,000 runs, against baselines.

    .venv/bin/python benchmarks/dossier.py [--runs 1000000] [--db sqlite,postgres] [--json] [--quick]

`--quick`: two repetitions, 5,000 runs, SQLite only (a smoke run).

Part 1, the dossier (pure, in this process): a failed run of 1,000 steps and 100,000 events,
as light records (what `RunStore.list_step_records` / `list_event_records` hand over), alone
and with a baseline run of the same size to compare with.
  typical      per step: worker_claimed, first_work, 96 events of kinds the dossier ignores,
               last_work, artifact_written
  worst case   every one of the 100,000 events is of a kind the dossier indexes
  floor        one pass over the same records reading a few attributes of each
  read path    `readside.run_dossier` on SQLite: the queries (events filtered to the dossier's
               kinds in SQL), the baseline's, and the build
Target (issue #7): under 50 ms for one dossier.

Part 2, failure groups: 1,000,000 runs (25% failed, 2,000 fingerprints, 500 flows, 180 days)
bulk-inserted into a temporary SQLite file and a temporary PostgreSQL database; the summary
tables are filled the way migration 0003 backfills them (written still, no longer read for counts).
Then, per query (median and p95 of 20):
  /api/failures   the route's work: `RunStore.failure_groups` (failed runs per fingerprint and
                  flow, read through the partial index ix_rd_run_failed) + merge + JSON
  GROUP BY runs   the baseline: GROUP BY fingerprint over rd_run, no status filter, no index
Target: `GET /api/failures` under 200 ms on 1,000,000 runs. Also: the extra cost the summary
upserts add to recording a root cause (median of 300 writes, with and without a fingerprint).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import Row, Target, add_flags, emit, row  # noqa: E402

from rundossier.core.dossier import Baseline, build_dossier, dossier_json, group_json, merge_groups  # noqa: E402
from rundossier.core.dossier.events import KINDS  # noqa: E402
from rundossier.core.ids import new_run_id  # noqa: E402
from rundossier.read.reader import run_dossier  # noqa: E402
from rundossier.storage.db import Event, GroupQuery, Run, RunStore, Step, WriteBatch  # noqa: E402
from rundossier.storage.db.models import event_record, step_record  # noqa: E402

STEPS = 1000
EVENTS = 100_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def timeit(fn: Callable[[], object], n: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    gc.collect()
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.95))]


#: the rows for --json: every measured line, under the heading it was printed under
ROWS: list[Row] = []
HEADING = [""]


def line(name: str, xs: list[float], target: float | None = None) -> None:
    ROWS.append(
        row(
            f"{HEADING[0]}: {name.strip()}",
            statistics.median(xs),
            "ms",
            target=Target("<", target, "value") if target is not None else None,
        )
    )
    verdict = ""
    if target is not None:
        verdict = f"   target < {target:g} ms: {'met' if statistics.median(xs) < target else 'MISSED'}"
    print(f"  {name:<44} median {statistics.median(xs):8.2f} ms   p95 {p95(xs):8.2f} ms{verdict}")


# -- part 1: one dossier -------------------------------------------------------------------------
def big_run(run_id: str, status: str, *, worst: bool) -> tuple[Run, list[Step], list[Event]]:
    run = Run(
        run_id=run_id, orchestrator="airflow", flow_id="big_dag", run_key=f"scheduled__{run_id}", status=status,
        attempt=1, queued_at=T0, started_at=T0 + timedelta(seconds=1), finished_at=T0 + timedelta(hours=2),
        host="w1", params_hash="p", code_version="v", root_step_id="s0500" if status == "failed" else None,
        error_type="ConnectionError" if status == "failed" else None, error_message="refused",
    )  # fmt: skip
    steps: list[Step] = []
    events: list[Event] = []
    per = EVENTS // STEPS
    for i in range(STEPS):
        sid = f"s{i:04d}"
        start = T0 + timedelta(seconds=5 + i * 6)
        failed = status == "failed" and i == 500
        steps.append(
            Step(
                run_id=run_id, step_id=sid, try_number=1, status="failed" if failed else "success",
                queued_at=start - timedelta(seconds=1), started_at=start, finished_at=start + timedelta(seconds=5),
                first_output_at=start + timedelta(seconds=1), last_output_at=start + timedelta(seconds=4),
                upstream=[f"s{i - 1:04d}"] if i else None, error_type="ConnectionError" if failed else None,
                error_message="refused" if failed else None, trace_uri="file:///t" if failed else None,
                log_uri="file:///l", log_lines_stdout=10, log_lines_stderr=0, host="w1",
            )
        )  # fmt: skip
        kinds = ["worker_claimed", "first_work"] + ["progress"] * (per - 4) + ["last_work", "artifact_written"]
        if worst:
            kinds = ["worker_claimed", "first_work"] + ["first_work", "last_work"] * ((per - 4) // 2)
            kinds += ["last_work", "artifact_written"]
        for j, kind in enumerate(kinds):
            events.append(
                Event(
                    id=len(events) + 1, run_id=run_id, step_id=sid, try_number=1, kind=kind,
                    ts=start + timedelta(milliseconds=j * 40), summary="", data=None,
                )
            )  # fmt: skip
        if failed:
            events.append(
                Event(
                    id=len(events) + 1, run_id=run_id, step_id=sid, try_number=1, kind="step_failed",
                    ts=start + timedelta(seconds=5), summary="ConnectionError: refused",
                    data={"chain": [{"type": "ConnectionRefusedError", "message": "refused"}]},
                )
            )  # fmt: skip
    return run, steps, events


def floor_pass(run: Run, steps: list[Any], events: list[Any]) -> int:
    n = 0
    for s in steps:
        n += s.started_at is not None and s.finished_at is not None and s.first_output_at is not None
    for e in events:
        n += e.kind == "first_work" and e.step_id is not None and e.ts is not None
    return n


def part1(n: int) -> None:
    print(f"dossier of one failed run: {STEPS:,} steps, {EVENTS:,} events (as the read side hands them over)")
    for worst in (False, True):
        _shape(worst, n)


def _shape(worst: bool, n: int) -> None:
    run, orm_steps, orm_events = big_run("run_01JH00000000000000000000F1", "failed", worst=worst)
    ok, ok_steps, ok_events = big_run("run_01JH00000000000000000000A1", "success", worst=worst)
    steps, events = [step_record(s) for s in orm_steps], [event_record(e) for e in orm_events]
    known = [e for e in events if e.kind in KINDS]
    baseline = Baseline(ok, [step_record(s) for s in ok_steps], [event_record(e) for e in ok_events if e.kind in KINDS])
    label = "worst case: every event of a kind the dossier reads" if worst else "typical"
    print(f" {label}:")
    HEADING[0] = f"dossier, {label.split(':')[0]}"
    line("floor (one pass over the steps and events)", timeit(lambda: floor_pass(run, steps, events), n))
    line(f"build_dossier, all {len(events):,} events", timeit(lambda: build_dossier(run, steps, events), n), 50)
    line(
        f"build_dossier, {len(known):,} vocabulary events + baseline",
        timeit(lambda: build_dossier(run, steps, known, baseline=baseline), n),
        50,
    )
    line(
        "  same, from ORM objects (not what is served)",
        timeit(lambda: build_dossier(run, orm_steps, orm_events), 3, 1),
    )
    d = build_dossier(run, steps, known, baseline=baseline)
    line("dossier_json", timeit(lambda: dossier_json(d), n))
    assert d.classification is not None and d.comparison is not None
    if not worst:
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(f"sqlite:///{tmp}/one.db")
            _store_run(store, run, orm_steps, orm_events)
            _store_run(store, ok, ok_steps, ok_events)
            line(
                "read path on SQLite: records + SQL kind filter + build",
                timeit(lambda: run_dossier(store, store.get_run(run.run_id)), n),
            )
            store.close()


def _store_run(store: RunStore, run: Run, steps: list[Step], events: list[Event]) -> None:
    values = {c: getattr(run, c) for c in Run.model_fields if getattr(run, c) is not None}
    values.pop("created_at", None)
    values.pop("updated_at", None)
    store.upsert_run(values)
    for s in steps:
        store.upsert_step({c: getattr(s, c) for c in Step.model_fields if getattr(s, c) is not None})
    rows = [{c: getattr(e, c) for c in Event.model_fields if c != "id"} for e in events]
    for i in range(0, len(rows), 5000):
        store.add_events(rows[i : i + 5000])


# -- part 2: failure groups over many runs -------------------------------------------------------
def synth_runs(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    flows = [f"flow_{i:03d}" for i in range(500)]
    fp_flows = {f"{i:016x}": rnd.sample(flows, rnd.choice((1, 1, 2, 3))) for i in range(2000)}
    fps = list(fp_flows)
    weights = [1 / (i + 1) ** 0.8 for i in range(len(fps))]  # a few common bugs, a long tail
    span_ms = 180 * 86400 * 1000
    start_ms = int((datetime.now(UTC) - timedelta(days=180)).timestamp() * 1000)
    offsets = sorted(rnd.randrange(span_ms) for _ in range(n))
    rows = []
    for i, off in enumerate(offsets):
        ms = start_ms + off
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        if rnd.random() < 0.25:
            fp = rnd.choices(fps, weights)[0]
            flow = rnd.choice(fp_flows[fp])
            rows.append((new_run_id(ms), flow, f"k{i}", "failed", fp, "ConnectionError", "refused", "unavailable", ts))
        else:
            rows.append((new_run_id(ms), rnd.choice(flows), f"k{i}", "success", None, None, None, None, ts))
    return rows


def load_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> RunStore:
    store = RunStore(f"sqlite:///{path}", timeout=60)
    raw = store._write.raw_connection()
    cur = raw.cursor()
    cur.execute("BEGIN")
    cur.executemany(
        "INSERT INTO rd_run (run_id, orchestrator, flow_id, run_key, status, attempt, fingerprint, error_type, "
        "error_message, failure_class, finished_at, spooled, blobs_expired, created_at, updated_at) "
        "VALUES (?, 'airflow', ?, ?, ?, 1, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
        [(*r[:8], _sq(r[8]), _sq(r[8]), _sq(r[8])) for r in rows],
    )
    cur.execute("COMMIT")
    raw.close()
    return store


def _sq(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def load_postgres(url: str, rows: list[tuple[Any, ...]]) -> RunStore:
    store = RunStore(url, timeout=120)
    raw = store._write.raw_connection()
    cur = raw.cursor()
    cols = (
        "run_id, orchestrator, flow_id, run_key, status, attempt, fingerprint, error_type, error_message, "
        "failure_class, finished_at, spooled, blobs_expired, created_at, updated_at"
    )
    with cur.copy(f"COPY rd_run ({cols}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row((r[0], "airflow", r[1], r[2], r[3], 1, *r[4:8], r[8], False, False, r[8], r[8]))
    raw.commit()
    # what autovacuum does after a bulk insert (PostgreSQL 13+ vacuums on inserts too): statistics,
    # and the visibility map that lets failure groups read ix_rd_run_failed alone
    driver = raw.driver_connection
    assert driver is not None
    driver.autocommit = True
    cur.execute("VACUUM ANALYZE rd_run")
    raw.close()
    return store


def backfill(store: RunStore) -> None:
    """What migration 0003 computes for existing runs, in SQL (the migration itself does it in Python)."""
    day = (
        "substr(finished_at, 1, 10)"
        if store.dialect == "sqlite"
        else "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    )
    with store._write.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rd_failure_group (fingerprint, flow_id, orchestrator, count, first_seen, last_seen, "
                "latest_run_id, error_type, error_message, failure_class) "
                "SELECT fingerprint, flow_id, orchestrator, count(*), min(finished_at), max(finished_at), max(run_id), "
                "max(error_type), max(error_message), max(failure_class) FROM rd_run WHERE fingerprint IS NOT NULL "
                "GROUP BY fingerprint, flow_id, orchestrator"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO rd_failure_day (day, fingerprint, flow_id, orchestrator, count, last_seen) "
                f"SELECT {day}, fingerprint, flow_id, orchestrator, count(*), max(finished_at) FROM rd_run "
                f"WHERE fingerprint IS NOT NULL GROUP BY {day}, fingerprint, flow_id, orchestrator"
            )
        )
        if store.dialect == "postgresql":
            conn.execute(text("ANALYZE rd_failure_group"))
            conn.execute(text("ANALYZE rd_failure_day"))


def api_failures(store: RunStore, q: GroupQuery) -> dict[str, Any]:
    page = store.failure_groups(q)
    groups = merge_groups(page.order, page.counts, page.rows)
    return {"items": [group_json(g) for g in groups], "counted_since": page.counted_since}


def naive(store: RunStore, since: datetime | None, flows: tuple[str, ...] | None) -> list[Any]:
    where = "fingerprint IS NOT NULL"
    params: dict[str, Any] = {}
    if since is not None:
        where += " AND finished_at >= :since"
        params["since"] = _sq(since) if store.dialect == "sqlite" else since
    if flows is not None:
        where += " AND flow_id IN (" + ", ".join(f"'{f}'" for f in flows) + ")"
    sql = (
        "SELECT fingerprint, count(*), min(finished_at), max(finished_at), max(run_id) FROM rd_run "
        f"WHERE {where} GROUP BY fingerprint ORDER BY max(finished_at) DESC LIMIT 50"
    )
    with store._read.connect() as conn:
        return conn.execute(text(sql), params).all()


def part2(kind: str, store: RunStore, n_runs: int, reps: int) -> None:
    now = datetime.now(UTC)
    flows100 = tuple(f"flow_{i:03d}" for i in range(0, 500, 5))
    with store._read.connect() as conn:
        groups = conn.execute(text("SELECT count(*) FROM rd_failure_group")).scalar()
        days = conn.execute(text("SELECT count(*) FROM rd_failure_day")).scalar()
    print(f" summary rows: {groups:,} fingerprint x flow, {days:,} fingerprint x flow x day")
    cases = [
        ("all time, newest first", GroupQuery(), None, None),
        ("all time, by count", GroupQuery(sort="count"), None, None),
        ("since 24h", GroupQuery(since=now - timedelta(hours=24)), now - timedelta(hours=24), None),
        ("since 30d", GroupQuery(since=now - timedelta(days=30)), now - timedelta(days=30), None),
        ("since 180d (everything)", GroupQuery(since=now - timedelta(days=181)), now - timedelta(days=181), None),
        ("one flow", GroupQuery(flow_id="flow_007"), None, ("flow_007",)),
        ("100 readable flows (access filter)", GroupQuery(flows=flows100), None, flows100),
    ]
    for name, q, since, flows in cases:
        print(f" {name}:")
        HEADING[0] = f"failure groups {kind} {n_runs:,} runs, {name}"
        api = timeit(lambda q=q: api_failures(store, q), reps)
        base = timeit(lambda since=since, flows=flows: naive(store, since, flows), 3, warmup=1)
        line("/api/failures", api, 200)
        line("baseline: GROUP BY over rd_run", base)
        print(f"  {'ratio baseline / api':<44} {statistics.median(base) / statistics.median(api):8.1f}x")
    # the write side: what the summary upserts add to recording a root cause
    keys = iter(range(10**9))

    def root_cause(fp: str | None) -> None:
        i = next(keys)
        rid = store.upsert_run(
            {"orchestrator": "python", "flow_id": "bench", "run_key": f"w{i}", "status": "failed", "attempt": 1}
        )
        cause = {"run_id": rid, "root_step_id": "s", "error_type": "E", "error_message": "m"}
        if fp:
            cause["fingerprint"] = fp
        store.write(WriteBatch().root_cause(cause))

    without = timeit(lambda: root_cause(None), 300, warmup=20)
    with_fp = timeit(lambda: root_cause("00000000000000aa"), 300, warmup=20)
    print(" recording a root cause (run upsert + root cause write):")
    HEADING[0] = f"root cause write {kind}"
    line("without a fingerprint (no group upsert)", without)
    line("with a fingerprint (+ 2 summary upserts)", with_fp)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:  # a smoke run: 5,000 runs, SQLite only, two repetitions
        args.runs, args.db = min(args.runs, 5_000), "sqlite"
    reps = 2 if args.quick else 20
    print(f"python {sys.version.split()[0]}")
    part1(1 if args.quick else 15)

    t = time.perf_counter()
    rows = synth_runs(args.runs)
    print(f"\nfailure groups over {args.runs:,} runs ({sum(1 for r in rows if r[4]):,} failed) "
          f"(generated in {time.perf_counter() - t:.1f}s)")  # fmt: skip
    for kind in args.db.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                store = load_sqlite(Path(tmp) / "bench.db", rows)
                loaded = time.perf_counter() - t
                t = time.perf_counter()
                backfill(store)
                print(f"\nSQLite: loaded in {loaded:.1f}s, summaries backfilled in {time.perf_counter() - t:.1f}s")
                part2(kind, store, args.runs, reps)
                store.close()
        elif kind == "postgres":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            try:
                from tests.pgdb import pg_unavailable_reason, temporary_database
            except ImportError as exc:
                print(f"\nPostgreSQL: skipped ({exc})")
                continue
            reason = pg_unavailable_reason()
            if reason:
                print(f"\nPostgreSQL: skipped ({reason})")
                continue
            with temporary_database() as url:
                t = time.perf_counter()
                store = load_postgres(url, rows)
                loaded = time.perf_counter() - t
                t = time.perf_counter()
                backfill(store)
                print(f"\nPostgreSQL: loaded in {loaded:.1f}s, summaries backfilled in {time.perf_counter() - t:.1f}s")
                part2(kind, store, args.runs, reps)
                store.close()
    emit(args, "dossier", ROWS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
