"""Benchmark: 50 concurrent API clients on 1,000,000 runs in PostgreSQL while 8 writers record.

    .venv/bin/python benchmarks/readers.py [--runs 1000000] [--clients 50] [--writers 8] [--seconds 60]
        [--json] [--quick]

Setup: a throwaway PostgreSQL database (dropped afterwards) with `--runs` runs loaded by COPY
(api_runs.py's rows: 200 flows over 90 days, 10% failed; each flow's failures spread over 10
fingerprints of its own, 2,000 in all, as bugs belong to a flow), the failure-group summaries
filled as migration 0003 fills them (dossier.py's backfill), and SEEDED failures recorded
through the Recorder into that database and S3 (moto's server on loopback), so that run detail and
trace download read real steps and real blobs. `rundossier serve` runs in its own process.

Load, for `--seconds`: `--writers` processes record failures into the same PostgreSQL + S3 without
pause, and `--clients` clients (asyncio + httpx in this process, one connection each) send one
request after another, each client cycling through the routes:
  runs by flow      GET /api/runs?flow_id=flow_042&status=failed&limit=50
  runs since        GET /api/runs?status=failed&since=<24h ago>&limit=50
  run detail        GET /api/runs/{id}            (a seeded failed run: its steps, events, dossier)
  failure groups    GET /api/failures
  trace download    GET /api/runs/{id}/trace      (the trace blob, from S3)
  floor             GET /healthz                  (a constant answer, under the same load)
Measured per route: requests/s, p50 and p99 (client side), errors (anything but a 200, or no
answer). Target (issue #20): p99 of every route <= 3x the floor's p99, and 0 errors. The writers'
failures are checked afterwards: every one has its run row (0 lost).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pgdb, tests.s3server
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable, api_runs, dossier, writers

from benchtable import Target, add_flags, emit, row  # noqa: E402
from writers import Background  # noqa: E402

SEEDED = 40
SERVE = "import sys; from rundossier.cli.main import main; sys.exit(main())"


# -- the clients -------------------------------------------------------------------------------------


def routes(failed_runs: list[str]) -> dict[str, Any]:
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    run_cycle = itertools.cycle(failed_runs)
    trace_cycle = itertools.cycle(reversed(failed_runs))
    return {
        "runs by flow": lambda: ("/api/runs", {"flow_id": "flow_042", "status": "failed", "limit": 50}),
        "runs since": lambda: ("/api/runs", {"status": "failed", "since": since, "limit": 50}),
        "run detail": lambda: (f"/api/runs/{next(run_cycle)}", {}),
        "failure groups": lambda: ("/api/failures", {}),
        "trace download": lambda: (f"/api/runs/{next(trace_cycle)}/trace", {}),
        "floor": lambda: ("/healthz", {}),
    }


async def load(url: str, clients: int, seconds: float, table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import httpx

    names = list(table)
    times: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, list[str]] = {n: [] for n in names}
    deadline = time.monotonic() + seconds

    async def client(k: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            i = k  # clients start at different routes: every route is asked for at every moment
            while time.monotonic() < deadline:
                name = names[i % len(names)]
                i += 1
                path, params = table[name]()
                t0 = time.perf_counter()
                try:
                    r = await http.get(path, params=params)
                    await r.aread()
                    ok = r.status_code == 200
                    why = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                took = (time.perf_counter() - t0) * 1000
                times[name].append(took)
                if not ok:
                    errors[name].append(why)

    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.monotonic() - t0
    out = {}
    for name in names:
        xs = sorted(times[name])
        out[name] = {
            "n": len(xs),
            "rps": len(xs) / wall,
            "p50": xs[len(xs) // 2] if xs else float("nan"),
            "p99": xs[max(0, int(len(xs) * 0.99) - 1)] if xs else float("nan"),
            "errors": len(errors[name]),
            "first_error": errors[name][0] if errors[name] else "",
        }
    return out


# -- setup ---------------------------------------------------------------------------------------------


def seed(url: str, runs: int, cfg: dict[str, Any], tmp: Path) -> list[str]:
    """`runs` runs by COPY, the failure-group summaries, and SEEDED recorded failures (their run ids)."""
    from api_runs import _without_indexes
    from dossier import backfill
    from record_failure import log_lines, make_exception
    from writers import _settings

    from rundossier import Recorder
    from rundossier.storage.db import RunStore

    t0 = time.perf_counter()
    store = RunStore(url, timeout=120)
    _without_indexes(store, lambda: copy_runs(store, runs))
    backfill(store)
    with store._write.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"seeded {store.count_runs():,} runs by COPY in {time.perf_counter() - t0:.1f}s", flush=True)
    store.close()
    rec = Recorder(_settings(tmp / "seed-home", cfg), live_log_interval=None)
    exc = make_exception(tmp)
    ids = []
    for i in range(SEEDED):
        run = rec.start_run("bench_readers_seed", f"seed-{i}")
        step = rec.start_step(run, "load")
        for line in log_lines()[:100]:
            step.log.write("stderr", line, "INFO")
        step.finish("failed", exc)
        run.finish("failed", exc)
        ids.append(run.run_id)
    rec.flush()  # what the writer spooled (S3 slower than its budget) is delivered before the clients ask
    rec.close()
    return ids


def copy_runs(store: Any, n: int) -> None:
    """api_runs.py's rows by COPY, each failure's fingerprint one of its flow's 10."""
    from api_runs import COLUMNS, _copy_text, rows

    fp, flow = COLUMNS.index("fingerprint"), COLUMNS.index("flow_id")
    raw = store._write.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY rd_run ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for batch in rows(n):
                lines = []
                for r in batch:
                    values = list(r)
                    if values[fp]:
                        values[fp] = f"{int(values[flow][5:]) * 10 + int(values[fp], 16) % 10:016x}"
                    lines.append("\t".join(map(_copy_text, values)) + "\n")
                copy.write("".join(lines).encode())
        raw.commit()
    finally:
        raw.close()


def start_server(cfg: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import json

    import httpx
    from tests.s3server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNDOSSIER_")}
    env.update(
        RUNDOSSIER_HOME=str(tmp / "server-home"),
        RUNDOSSIER_DB_URL=cfg["db_url"],
        RUNDOSSIER_STORAGE_URL=cfg["storage_url"],
        RUNDOSSIER_STORAGE_OPTIONS=json.dumps(cfg["options"]),
    )
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - the server's whole life
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # up to 60 s on a busy machine
        if proc.poll() is not None:
            raise RuntimeError(f"rundossier serve exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("rundossier serve did not answer within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def count_runs(url: str, flow: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        n, keys = conn.execute(
            text("SELECT count(*), count(DISTINCT run_key) FROM rd_run WHERE flow_id = :f"), {"f": flow}
        ).one()
    engine.dispose()
    return n, keys


# -- main ----------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    add_flags(ap)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.clients, args.writers, args.seconds = 5000, 5, 1, 3
    logging.getLogger("rundossier").setLevel(logging.ERROR)

    from tests.pgdb import pg_unavailable_reason, temporary_database
    from tests.s3server import create_bucket, moto_s3_server, storage_options

    reason = pg_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        emit(args, "readers", [], reason)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-readers-"))
    flow = f"bench_readers_{uuid.uuid4().hex[:6]}"
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_s3_server())
        url = stack.enter_context(temporary_database())
        cfg = {"db_url": url, "storage_url": f"s3://{create_bucket(endpoint)}/rd", "options": storage_options(endpoint)}
        failed_runs = seed(url, args.runs, cfg, tmp)
        proc, server = start_server(cfg, tmp)
        stack.callback(stop_server, proc)

        with Background(cfg, flow, args.writers) as writers:
            print(
                f"{args.clients} clients for {args.seconds:.0f}s against {server}, {args.writers} writers recording",
                flush=True,
            )
            res = asyncio.run(load(server, args.clients, args.seconds, routes(failed_runs)))
        written = writers.written
        rows_found, keys = count_runs(url, flow)
    floor = res["floor"]
    print(f"{'route':<16}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'p99/floor':>11}{'errors':>8}")
    rows = []
    for name, r in res.items():
        ratio = r["p99"] / floor["p99"]
        print(f"{name:<16}{r['rps']:>8.1f}{r['p50']:>9.1f}{r['p99']:>9.1f}{ratio:>10.2f}x{r['errors']:>8}")
        if r["errors"]:
            print(f"   first error: {r['first_error']}")
        if name != "floor":
            rows.append(
                row(
                    f"p99 {name}",
                    r["p99"],
                    "ms",
                    floor=floor["p99"],
                    target=Target("<=", 3.0),
                    note=f"{r['rps']:.0f} req/s, p50 {r['p50']:.0f} ms",
                )
            )
    errors = sum(r["errors"] for r in res.values())
    total_rps = sum(r["rps"] for r in res.values())
    lost = written - keys + (rows_found - keys)
    print(
        f"all routes {total_rps:.0f} req/s, {errors} errors; writers recorded {written} failures meanwhile, "
        f"{keys} in the database ({rows_found - keys} twice)"
    )
    rows.append(row("requests, all routes", total_rps, "req/s", note=f"floor p99 {floor['p99']:.0f} ms"))
    rows.append(row("errors", float(errors), "requests", target=Target("<=", 0, "value")))
    rows.append(
        row("writers meanwhile: lost + duplicated", float(lost), "failures", target=Target("<=", 0, "value"),
            note=f"{written} recorded")
    )  # fmt: skip
    emit(args, "readers", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
