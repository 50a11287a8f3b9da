"""Example pipelines for `rundossier demo`, written the way you would record your own.

The demo copies this file next to its data and imports it from there, so its frames show up as
your code (in-app) in traces, the way your pipelines' frames will.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
import uuid
from datetime import UTC, datetime

from rundossier import Recorder

log = logging.getLogger("demo.etl")

WAREHOUSE = "postgresql://etl:s3cr3t-pass@warehouse.internal:5432/dw"


class WarehouseError(RuntimeError):
    """The load step could not write to the warehouse."""


def extract(rows: int) -> list[dict[str, int]]:
    log.info("extracting %d rows from source", rows)
    print(f"fetched page 1/1 ({rows} rows)")
    return [{"id": i, "amount": random.randint(1, 100)} for i in range(rows)]


def transform_orders(rows: list[dict[str, int]]) -> list[dict[str, int]]:
    log.info("normalising %d orders", len(rows))
    return [{**r, "amount_cents": r["amount"] * 100} for r in rows]


def transform_customers(rows: list[dict[str, int]]) -> list[dict[str, int]]:
    log.info("deduplicating customers")
    return rows[: len(rows) // 2]


def connect(dsn: str) -> None:
    raise ConnectionError(f"timeout after 30s connecting to {dsn}")


def load(rows: list[dict[str, int]], dsn: str, *, reachable: bool) -> None:
    log.info("loading %d rows into the warehouse", len(rows))
    if reachable:
        print(f"wrote {len(rows)} rows")
        return
    try:
        connect(dsn)
    except ConnectionError as exc:
        raise WarehouseError("load failed: warehouse unavailable") from exc


def nightly_etl(rec: Recorder, *, fail: bool) -> str:
    """extract -> two transforms -> load (retried once) -> publish. With `fail`, both load tries fail
    (a chained exception) and publish never runs."""
    with rec.run("nightly_etl") as run:
        with run.step("extract"):
            rows = extract(250)
        with run.step("transform_orders", upstream=["extract"]):
            orders = transform_orders(rows)
        with run.step("transform_customers", upstream=["extract"]):
            transform_customers(rows)
        for attempt in (1, 2):
            try:
                with run.step("load", try_number=attempt, upstream=["transform_orders", "transform_customers"]):
                    load(orders, WAREHOUSE, reachable=not fail and attempt == 2)
                break
            except WarehouseError:
                if attempt == 2:
                    skipped = run.start_step("publish", upstream=["load"])
                    skipped.finish("upstream_failed")
                    raise
                print("load failed, retrying in 1s", file=sys.stderr)
        with run.step("publish", upstream=["load"]):
            print("published the daily report")
    return run.run_id


def big_report(rec: Recorder, lines: int = 2000) -> str:
    """One step that writes `lines` lines (a warning every 100) for the log viewer."""
    with rec.run("big_report") as run:
        with run.step("render"):
            for i in range(1, lines + 1):
                if i % 100 == 0:
                    slow = random.randint(1, 9)
                    print(f"WARNING checkpoint {i // 100}: {i} rows rendered, {slow} slow", file=sys.stderr)
                else:
                    print(f"row {i:05d} rendered in {random.uniform(0.1, 9.9):.2f} ms")
        with run.step("upload", upstream=["render"]):
            print("uploaded report.pdf (2.1 MB)")
    return run.run_id


def parse_payload(text: str) -> dict[str, object]:
    return json.loads(text)  # the stdlib's frames are folded as library frames in the UI


def customer_sync(rec: Recorder) -> str:
    """An Airflow-style run whose transform fails inside the standard library (folded frames)."""
    day = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    run = rec.start_run("customer_sync", f"manual__{day}", orchestrator="airflow", agent="celery@worker-2")
    try:
        with run.step("fetch_customers") as h:
            h.log.write("stderr", "GET https://crm.example/api/customers -> 200 (812 records)", "INFO")
        with run.step("transform", upstream=["fetch_customers"]):
            parse_payload('{"id": 17, "email": "ana@example.com",')
    except json.JSONDecodeError as exc:
        skipped = run.start_step("load", upstream=["transform"])
        skipped.finish("upstream_failed")
        run.finish("failed", exc)
    return run.run_id


def ml_train(rec: Recorder) -> str:
    """A Prefect-style run whose worker was killed: no traceback exists, and the UI says so."""
    run = rec.start_run("ml_train", str(uuid.uuid4()), orchestrator="prefect", agent="process-pool/worker-7")
    with run.step("load-data-0") as h:
        h.log.write("stdout", "loaded 1,204,551 samples")
    train = run.start_step("train-0", upstream=["load-data-0"])
    train.log.write("stdout", "epoch 1/10 loss=0.913")
    train.log.write("stdout", "epoch 2/10 loss=0.702")
    train.finish("crashed", reason="the worker process was killed (SIGKILL, out of memory)")
    run.finish("crashed")
    return run.run_id


def streaming_ingest(rec: Recorder, *, seconds: float = 20.0, every: float = 0.5, stop: object = None) -> str:
    """A run that stays running for `seconds`, writing a line every `every` seconds (follow mode)."""
    run = rec.start_run("streaming_ingest")
    step = run.start_step("consume")
    n = 0
    stopped = False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop is not None and getattr(stop, "is_set", lambda: False)():
            stopped = True  # the demo is shutting down
            break
        n += 1
        step.log.write("stdout", f"batch {n}: consumed {random.randint(50, 500)} events from topic orders")
        time.sleep(every)
    step.finish("cancelled" if stopped else "success")
    run.finish("cancelled" if stopped else "success")
    return run.run_id


__all__ = ["nightly_etl", "big_report", "customer_sync", "ml_train", "streaming_ingest", "WarehouseError"]
