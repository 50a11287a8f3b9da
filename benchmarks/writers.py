"""Benchmark: many processes recording failures at once, against the bare writes in the same run.

    .venv/bin/python benchmarks/writers.py [--procs 8] [--n 60] [--only postgres|sqlite] [--json] [--quick]

Each writer process records `--n` failures, one after the other: a run, a step that writes
LOG_LINES log lines and fails with a chained exception of 2 x 15 frames (record_failure.py's), the
run ending with it. Measured with 1 process and with `--procs` processes (all released at once
by a barrier after their start-up and one warm-up failure each):
  failures/s       every failure recorded / the wall time from the barrier to the last one
  capture p50/p99  the step's `finish("failed", exc)`: trace build, masking, gzip, blobs, rows
Checked after each case, in the database and the object store: every failure has exactly one run
row, one failed step row with its trace, and one trace blob: 0 lost, 0 duplicated (rows the
writer spooled because a backend was slow count as delivered only once they are in the database).

Floor, the same processes doing only the bare work per failure: an s3fs `pipe` of the same gzipped
bytes rundossier stored for one sample failure (its trace text, trace JSON and log blobs, in one
call, as s3fs sends a dict of puts concurrently) to a new key each, and one INSERT of a step row
with the DBAPI driver (psycopg / sqlite3), committed.

Cases: postgres+s3 (PostgreSQL on 127.0.0.1:5432, a throwaway database; S3 from moto's server on
loopback) and, for comparison, sqlite+local (one SQLite file in WAL mode and file:// blobs).
Targets (issue #20): rundossier >= 0.7x the floor's failures/s with `--procs` writers, and
`--procs` writers >= 3x one writer. The floor's own x8/x1 is printed beside it: on a machine whose
cores or whose S3 (moto serves requests with one Python process) are saturated by fewer writers,
no writer can scale 3x, and the floor shows it.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pgdb, tests.s3server
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable, record_failure (also when spawned)

from benchtable import Target, add_flags, emit, row  # noqa: E402

LOG_LINES = 100
FLOOR_SQL = (
    "INSERT INTO rd_step (run_id, step_id, try_number, status, error_type, error_message, trace_uri,"
    " trace_bytes, log_lines_stdout, log_lines_stderr, spooled, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _settings(home: Path, cfg: dict[str, Any]) -> Any:
    from rundossier.settings import Settings

    return Settings.resolve(
        explicit={
            "home": str(home),
            "db_url": cfg["db_url"],
            "storage_url": cfg["storage_url"],
            "storage_options": cfg["options"],
        }
    )


def _failure(rec: Any, flow: str, key: str, exc: BaseException, lines: list[str]) -> float:
    """One failure recorded end to end; returns the seconds its capture (the step's finish) took."""
    run = rec.start_run(flow, key)
    step = rec.start_step(run, "load")
    for line in lines:
        step.log.write("stderr", line, "INFO")
    t0 = time.perf_counter()
    step.finish("failed", exc)
    took = time.perf_counter() - t0
    run.finish("failed", exc)
    return took


# -- one writer process ----------------------------------------------------------------------------


def _writer(kind: str, cfg: dict[str, Any], flow: str, wid: int, n: int, barrier: Any, q: Any) -> None:
    try:
        q.put(_writer_work(kind, cfg, flow, wid, n, barrier))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the case
        barrier.abort()
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def _writer_work(kind: str, cfg: dict[str, Any], flow: str, wid: int, n: int, barrier: Any) -> dict[str, Any]:
    from record_failure import log_lines, make_exception

    logging.getLogger("rundossier").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-writer-"))
    exc = make_exception(tmp)
    lines = log_lines()[:LOG_LINES]
    latencies: list[float] = []
    if kind == "rundossier":
        from rundossier import Recorder

        rec = Recorder(_settings(tmp / "home", cfg), live_log_interval=None)
        _failure(rec, f"{flow}_warm", f"warm-{wid}", exc, lines)
        barrier.wait(timeout=300)
        start = time.time()
        for i in range(n):
            latencies.append(_failure(rec, flow, f"w{wid}-{i}", exc, lines))
        end = time.time()
        rec.flush()
        rec.close()
    else:
        floor = _Floor(cfg, wid)
        floor.one("warm")
        barrier.wait(timeout=300)
        start = time.time()
        for i in range(n):
            t0 = time.perf_counter()
            floor.one(str(i))
            latencies.append(time.perf_counter() - t0)
        end = time.time()
        floor.close()
    return {"start": start, "end": end, "latencies": latencies}


class _Floor:
    """The bare work of one failure: one s3fs/fsspec pipe of the sample's blobs, one INSERT."""

    def __init__(self, cfg: dict[str, Any], wid: int) -> None:
        import fsspec

        self.blobs: dict[str, bytes] = cfg["sample"]
        self.tag = f"w{wid}-{uuid.uuid4().hex[:8]}"  # a new key for every case's rows and blobs
        self.root = f"{cfg['floor_root']}/{self.tag}"
        proto = cfg["storage_url"].split("://", 1)[0]
        self.fs = fsspec.filesystem(proto, **({"auto_mkdir": True} if proto == "file" else cfg["options"]))
        self.wid = wid
        if cfg["db_url"].startswith("sqlite"):
            import sqlite3

            self.conn: Any = sqlite3.connect(cfg["db_url"].split(":///", 1)[1], isolation_level=None, timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.sql = FLOOR_SQL
            self.commit = lambda: None
        else:
            import psycopg

            self.conn = psycopg.connect(cfg["db_url"].replace("postgresql+psycopg://", "postgresql://"))
            self.sql = FLOOR_SQL.replace("?", "%s")
            self.commit = self.conn.commit

    def one(self, i: str) -> None:
        folder = f"{self.root}/run_{i}"
        self.fs.pipe({f"{folder}/{name}": data for name, data in self.blobs.items()})
        cur = self.conn.cursor()
        cur.execute(
            self.sql,
            (
                f"floor_{self.tag}_{i}",
                "load",
                1,
                "failed",
                "WarehouseError",
                "load failed",
                f"{folder}/load.1.trace.txt.gz",
                len(self.blobs.get("load.1.trace.txt.gz", b"")),
                0,
                LOG_LINES,
                False,
                time.strftime("%Y-%m-%d %H:%M:%S"),
            ),
        )
        cur.close()
        self.commit()

    def close(self) -> None:
        self.conn.close()


def record_until(cfg: dict[str, Any], flow: str, wid: int, ready: Any, stop: Any, out: Any) -> None:
    """A background writer (readers.py, retention_sweep.py --writers): record failures one after
    another until `stop` is set, then report how many; `ready` gets None once it is warm (or the error)."""
    from record_failure import log_lines, make_exception

    from rundossier import Recorder

    logging.getLogger("rundossier").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-bgwriter-"))
    try:
        exc = make_exception(tmp)
        lines = log_lines()[:LOG_LINES]
        rec = Recorder(_settings(tmp / "home", cfg), live_log_interval=None)
        _failure(rec, f"{flow}_warm", f"warm-{wid}", exc, lines)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        ready.put(f"{type(e).__name__}: {e}")
        return
    ready.put(None)
    n = 0
    while not stop.is_set():
        _failure(rec, flow, f"w{wid}-{n}", exc, lines)
        n += 1
    rec.flush()
    rec.close()
    out.put(n)


class Background:
    """`procs` background writers (`record_until`) of `flow`, started warm, stopped on exit."""

    def __init__(self, cfg: dict[str, Any], flow: str, procs: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.out, self.stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.ps = [
            ctx.Process(target=record_until, args=(cfg, flow, w, self.ready, self.stop, self.out)) for w in range(procs)
        ]
        self.written = 0

    def __enter__(self) -> Background:
        for p in self.ps:
            p.start()
        problems = [p for p in (self.ready.get(timeout=300) for _ in self.ps) if p]
        if problems:
            self.stop.set()
            raise RuntimeError(f"a writer could not start: {problems[0]}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.written = sum(self.out.get(timeout=300) for _ in self.ps)
        for p in self.ps:
            p.join(60)


# -- a case: N processes of one kind -----------------------------------------------------------------


def run_writers(kind: str, procs: int, n: int, cfg: dict[str, Any], flow: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    q = ctx.Queue()
    ps = [ctx.Process(target=_writer, args=(kind, cfg, flow, w, n, barrier, q)) for w in range(procs)]
    for p in ps:
        p.start()
    results = [q.get(timeout=900) for _ in ps]
    for p in ps:
        p.join(60)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{kind} writers failed: {errors[0]}")
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = sorted(x * 1000 for r in results for x in r["latencies"])
    return {
        "failures": len(lat),
        "wall": wall,
        "rate": len(lat) / wall,
        "p50": statistics.median(lat),
        "p99": lat[max(0, int(len(lat) * 0.99) - 1)],
    }


def check(cfg: dict[str, Any], flow: str, expected: int) -> dict[str, int]:
    """Rows and trace blobs of `flow` in the database and the store: what is missing, what is twice."""
    import fsspec
    from sqlalchemy import create_engine, text

    engine = create_engine(cfg["db_url"])
    with engine.connect() as conn:
        runs, keys = conn.execute(
            text("SELECT count(*), count(DISTINCT run_key) FROM rd_run WHERE flow_id = :f"), {"f": flow}
        ).one()
        steps, traced, spooled = conn.execute(
            text(
                "SELECT count(*), count(s.trace_uri), sum(CASE WHEN s.spooled THEN 1 ELSE 0 END) FROM rd_step s"
                " JOIN rd_run r ON r.run_id = s.run_id WHERE r.flow_id = :f AND s.status = 'failed'"
            ),
            {"f": flow},
        ).one()
    engine.dispose()
    proto, _, path = cfg["storage_url"].partition("://")
    fs = fsspec.filesystem(proto, **({} if proto == "file" else cfg["options"]))
    found = fs.find(f"{path}/python/{flow}/")
    blobs = sum(1 for p in found if p.endswith("trace.txt.gz"))
    return {
        "lost": max(0, expected - min(keys, traced, blobs)),
        "duplicated": (runs - keys) + max(0, steps - expected) + max(0, blobs - expected),
        "spooled": int(spooled or 0),
    }


def sample_blobs(cfg: dict[str, Any], tmp: Path) -> dict[str, bytes]:
    """The gzipped blobs rundossier stores for one failure (recorded here once): the floor puts these bytes."""
    import fsspec
    from record_failure import log_lines, make_exception

    from rundossier import Recorder

    rec = Recorder(_settings(tmp / "sample-home", cfg), live_log_interval=None)
    _failure(rec, "bench_sample", "sample", make_exception(tmp), log_lines()[:LOG_LINES])
    rec.close()
    proto, _, path = cfg["storage_url"].partition("://")
    fs = fsspec.filesystem(proto, **({} if proto == "file" else cfg["options"]))
    found = fs.find(f"{path}/python/bench_sample/")
    return {p.rsplit("/", 1)[1]: fs.cat_file(p) for p in found}


# -- main ----------------------------------------------------------------------------------------------


def measure(label: str, cfg: dict[str, Any], procs: int, n: int, tmp: Path) -> list[Any]:
    cfg = {**cfg, "sample": sample_blobs(cfg, tmp), "floor_root": cfg["storage_url"].split("://", 1)[1] + "/floor"}
    sizes = ", ".join(f"{k} {len(v):,} B" for k, v in sorted(cfg["sample"].items()))
    print(f"[{label}] blobs of one failure (the floor puts the same bytes): {sizes}", flush=True)
    res: dict[tuple[str, int], dict[str, Any]] = {}
    integrity: dict[int, dict[str, int]] = {}
    for p in (1, procs):
        n_each = n * 2 if p == 1 else n  # one writer gets more, so its timing is not a handful of calls
        for kind in ("floor", "rundossier"):
            flow = f"bench_{kind}_{p}_{uuid.uuid4().hex[:4]}"
            r = run_writers(kind, p, n_each, cfg, flow)
            res[(kind, p)] = r
            line = (
                f"[{label}] {kind:<10} x{p}: {r['failures']:>5} failures in {r['wall']:6.2f}s = {r['rate']:7.1f}/s"
                f"  capture p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms"
            )
            if kind == "rundossier":
                integrity[p] = check(cfg, flow, r["failures"])
                line += "  lost {lost}, duplicated {duplicated}, spooled {spooled}".format(**integrity[p])
            print(line, flush=True)
    rd, fl = res[("rundossier", procs)], res[("floor", procs)]
    rd1, fl1 = res[("rundossier", 1)], res[("floor", 1)]
    scale, floor_scale = rd["rate"] / rd1["rate"], fl["rate"] / fl1["rate"]
    lost = sum(i["lost"] for i in integrity.values())
    dup = sum(i["duplicated"] for i in integrity.values())
    print(
        f"[{label}] x{procs}: {rd['rate'] / fl['rate']:.2f}x the floor (target >= 0.7); "
        f"x{procs}/x1 {scale:.2f} (target >= 3), the floor's own x{procs}/x1 {floor_scale:.2f}; "
        f"lost {lost}, duplicated {dup}",
        flush=True,
    )
    return [
        row(f"{label} x{procs} writers", rd["rate"], "failures/s", floor=fl["rate"], target=Target(">=", 0.7)),
        row(
            f"{label} x{procs}/x1 writers",
            scale,
            "x",
            target=Target(">=", 3.0, "value"),
            note=f"floor {floor_scale:.2f}x",
        ),
        row(
            f"{label} x{procs} capture p99",
            rd["p99"],
            "ms",
            note=f"p50 {rd['p50']:.0f} ms; floor p99 {fl['p99']:.0f} ms",
        ),
        row(f"{label} lost + duplicated", float(lost + dup), "failures", target=Target("<=", 0, "value")),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--n", type=int, default=60, help="failures per writer with --procs (one writer records 2n)")
    ap.add_argument("--only", choices=["postgres", "sqlite"])
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:  # a smoke run: 2 writers, PostgreSQL + S3 only (SQLite when there is no PostgreSQL)
        args.procs, args.n = 2, 2
    logging.getLogger("rundossier").setLevel(logging.ERROR)
    rows: list[Any] = []
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-writers-"))
    print(f"{args.procs} writer processes x {args.n} failures (and 1 x {2 * args.n}); {os.cpu_count()} cpus")
    skipped = None
    if args.only in (None, "postgres"):
        from tests.pgdb import pg_unavailable_reason, temporary_database
        from tests.s3server import create_bucket, moto_s3_server, storage_options

        reason = pg_unavailable_reason()
        if reason:
            print(f"[postgres+s3] skipped: {reason}")
            skipped = reason
        else:
            with ExitStack() as stack:
                endpoint = stack.enter_context(moto_s3_server())
                url = stack.enter_context(temporary_database())
                from rundossier.storage.db import RunStore

                RunStore(url).close()  # the schema, once, before the writers start
                cfg = {
                    "db_url": url,
                    "storage_url": f"s3://{create_bucket(endpoint)}/rd",
                    "options": storage_options(endpoint),
                }
                rows += measure("postgres+s3", cfg, args.procs, args.n, tmp)
    if args.only == "sqlite" or (args.only is None and not (args.quick and rows)):
        d = tmp / "sqlite"
        d.mkdir()
        cfg = {"db_url": f"sqlite:///{d}/runs.db", "storage_url": f"file://{d}/blobs", "options": {}}
        from rundossier.storage.db import RunStore

        RunStore(cfg["db_url"]).close()
        rows += measure("sqlite+local", cfg, args.procs, args.n, tmp)
    emit(args, "writers", rows, skipped if not rows else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
