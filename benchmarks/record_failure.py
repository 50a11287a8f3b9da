"""Benchmark: recording a failure end to end, and a successful step, against baselines in the same run.

    .venv/bin/python benchmarks/record_failure.py [--n 2000] [--db sqlite|postgres]

Measured per operation (median and p99), all in this process, on the same machine and disk:
  rundossier  a failing step's finish: trace build, masking, bound, gzip, blob writes (trace text,
              trace JSON, log), rows (step, run root cause, event) for a 30-frame chained
              exception with 300 log lines before it
  floor       traceback.format_exception + gzip of that text and the log lines + one bare fsspec
              `pipe` to the same place in the same layout (a new run/step/try directory, as every
              failure gets) + one bare INSERT of the same data
  sentry      sentry_sdk.capture_exception of the same exception, with a transport that drops
              the event
  step        a successful step: its start and its finish recorded (no log lines)
  2 writes    the bare SQL a step needs: one INSERT and one UPDATE of the same row, on the same
              schema, with the DBAPI driver directly
Targets (issue #2): rundossier/floor <= 1.5, rundossier/sentry < 1.0, step/2-writes <= 2.0.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import logging
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import fsspec

from rundossier import Recorder
from rundossier.config import Settings
from rundossier.store.models import SQLModel

LOG_LINES = 300
CHAIN_DEPTH = 15  # frames per exception; two chained exceptions -> 30 frames


class WarehouseError(RuntimeError):
    pass


def _deep(n: int, dsn: str) -> None:
    if n == 0:
        raise ConnectionError(f"timeout after 30s connecting to {dsn} (attempt 3 of 3)")
    _deep(n - 1, dsn)


def _load(n: int) -> None:
    if n == 0:
        try:
            _deep(CHAIN_DEPTH, "postgresql://etl:hunter2@warehouse:5432/dw")
        except ConnectionError as exc:
            raise WarehouseError("load failed: warehouse unavailable for batch 2026-11-22/0042") from exc
    _load(n - 1)


def make_exception() -> BaseException:
    try:
        _load(CHAIN_DEPTH - 1)
    except WarehouseError as exc:
        return exc
    raise AssertionError("unreachable")


def log_lines() -> list[str]:
    return [
        f"2026-11-22T00:00:{i % 60:02d}.000Z INFO etl.load: wrote batch {i} of 300 rows=5000 "
        f"table=analytics.fact_sales partition=2026-11-22 elapsed_ms={i * 7 % 900}"
        for i in range(LOG_LINES)
    ]


def timeit(fn: Callable[[int], object], n: int, warmup: int = 50) -> list[float]:
    for i in range(warmup):
        fn(-1 - i)
    gc.collect()
    gc.disable()
    try:
        out = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            out.append((time.perf_counter() - t) * 1000)
        return out
    finally:
        gc.enable()


def p99(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.99) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    logging.getLogger("rundossier").setLevel(logging.ERROR)

    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-"))
    db_url = f"sqlite:///{tmp}/bench.db" if args.db == "sqlite" else args.pg_url
    rec = Recorder(
        Settings.resolve(explicit={"home": str(tmp / "home"), "db_url": db_url, "storage_url": f"file://{tmp}/blobs"})
    )
    exc = make_exception()
    lines = log_lines()
    n = args.n

    # -- rundossier: a failing step's finish ---------------------------------------------------------
    run = rec.start_run("bench_flow", "bench-run")

    def prepared_step(i: int):  # noqa: ANN202
        step = rec.start_step(run, f"load_{i}")
        for line in lines:
            step.log.write("stderr", line, "INFO")
        return step

    steps = {}
    # build steps outside the timed region: only the failure recording is measured
    for i in list(range(-1, -51, -1)) + list(range(n)):
        steps[i] = prepared_step(i)
    rd = timeit(lambda i: steps[i].finish("failed", exc), n)

    # -- floor -----------------------------------------------------------------------------------
    fs = fsspec.filesystem("file", auto_mkdir=True)
    floor_dir = tmp / "floor"
    floor_db = _bare_db(tmp / "floor.db", args.db, args.pg_url)

    def floor(i: int) -> None:
        text = "".join(traceback.format_exception(exc)) + "\n".join(lines)
        data = gzip.compress(text.encode(), compresslevel=6, mtime=0)
        path = f"{floor_dir}/python/bench_flow/run_{i}/load/1/trace.txt.gz"
        fs.pipe(path, data)
        floor_db.insert_failure(i, path, len(data))

    fl = timeit(floor, n)

    # -- sentry ----------------------------------------------------------------------------------
    se = _sentry(exc, n)

    # -- a successful step vs two bare writes ---------------------------------------------------
    ok = timeit(lambda i: rec.start_step(run, f"ok_{i}").finish("success"), n)
    bare = _bare_db(tmp / "bare.db", args.db, args.pg_url)
    two = timeit(lambda i: bare.step_writes(run.run_id, f"ok_{i}"), n)

    print(
        f"rundossier benchmark: recording failures ({args.db}, n={n}, "
        f"{LOG_LINES} log lines, 2x{CHAIN_DEPTH}-frame chain)"
    )
    rows = [
        ("rundossier failure", rd),
        ("floor", fl),
        ("sentry capture", se),
        ("successful step", ok),
        ("2 bare SQL writes", two),
    ]
    for name, xs in rows:
        if xs:
            print(f"  {name:<20} median {statistics.median(xs):7.3f} ms   p99 {p99(xs):7.3f} ms")
    m = statistics.median
    print(f"  rundossier / floor   {m(rd) / m(fl):.2f}   (target <= 1.5)")
    if se:
        print(f"  rundossier / sentry  {m(rd) / m(se):.2f}   (target < 1.0)")
    print(f"  step / 2 writes      {m(ok) / m(two):.2f}   (target <= 2.0)")
    return 0


def _sentry(exc: BaseException, n: int) -> list[float]:
    try:
        import sentry_sdk
        from sentry_sdk.transport import Transport
    except ImportError:
        print("  (sentry-sdk not installed: pip install rundossier[bench])", file=sys.stderr)
        return []

    class DropTransport(Transport):
        def capture_envelope(self, envelope):  # noqa: ANN001, ANN201
            return None

    sentry_sdk.init(dsn="https://public@127.0.0.1/1", transport=DropTransport, default_integrations=False)
    try:
        return timeit(lambda i: sentry_sdk.capture_exception(exc), n)
    finally:
        sentry_sdk.get_client().close()


class _BareDB:
    """The same rows written with the DBAPI driver alone (no rundossier, no SQLAlchemy)."""

    def __init__(self, conn, paramstyle: str, commit: Callable[[], None]) -> None:  # noqa: ANN001
        self.conn = conn
        self.q = "?" if paramstyle == "qmark" else "%s"
        self.commit = commit

    def _x(self, sql: str, params: tuple) -> None:
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self.q), params)
        cur.close()
        self.commit()

    def insert_failure(self, i: int, uri: str, size: int) -> None:
        self._x(
            "INSERT INTO rd_step (run_id, step_id, try_number, status, error_type, error_message, trace_uri,"
            " trace_bytes, log_lines_stdout, log_lines_stderr, spooled, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                "run_bench",
                f"s{i}",
                1,
                "failed",
                "WarehouseError",
                "load failed",
                uri,
                size,
                0,
                LOG_LINES,
                False,
                _now(),
            ),
        )

    def step_writes(self, run_id: str, step_id: str) -> None:
        self._x(
            "INSERT INTO rd_step (run_id, step_id, try_number, status, started_at, spooled, log_lines_stdout,"
            " log_lines_stderr, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (run_id, step_id, 1, "running", _now(), False, 0, 0, _now()),
        )
        self._x(
            "UPDATE rd_step SET status=?, finished_at=?, duration_ms=?, updated_at=?"
            " WHERE run_id=? AND step_id=? AND try_number=?",
            ("success", _now(), 1, _now(), run_id, step_id, 1),
        )


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S.000000")


def _bare_db(path: Path, kind: str, pg_url: str) -> _BareDB:
    from sqlalchemy import create_engine

    if kind == "sqlite":
        import sqlite3

        SQLModel.metadata.create_all(create_engine(f"sqlite:///{path}"))
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return _BareDB(conn, "qmark", lambda: None)
    import psycopg

    conn = psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"))
    schema = f"bare_{path.stem}_{int(time.time())}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    engine = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://"), connect_args={"options": f"-csearch_path={schema}"}
    )
    SQLModel.metadata.create_all(engine)
    conn.commit()
    return _BareDB(conn, "format", conn.commit)


if __name__ == "__main__":
    sys.exit(main())
