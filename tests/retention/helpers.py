"""Test helpers: runs with steps and blobs recorded straight into a store, at chosen times."""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rundossier.core.ids import run_id_floor
from rundossier.storage.blobs import LOG, LOG_INDEX, TRACE_JSON, TRACE_TEXT, BlobStore, blob_key
from rundossier.storage.db import RunStore, WriteBatch

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def run_id_at(ts: datetime, seq: int = 0) -> str:
    """A run id recorded at `ts` (ids sort by that time; `seq` orders ids of the same millisecond)."""
    tail, n = [], (seq & 0xFFFF) << 64 | secrets.randbits(64)
    for _ in range(16):
        tail.append(_ALPHABET[n & 31])
        n >>= 5
    return run_id_floor(ts)[:-16] + "".join(reversed(tail))


@dataclass
class Made:
    run_id: str
    flow_id: str
    status: str
    keys: list[str]


def make_run(
    store: RunStore,
    blobs: BlobStore | None,
    flow_id: str,
    *,
    age_days: float = 0.0,
    status: str = "success",
    failed_step: bool = False,
    log: bool = True,
    orchestrator: str = "python",
    now: datetime = NOW,
    seq: int = 0,
    defer: list[tuple[str, bytes]] | None = None,
) -> Made:
    """One run that ended `age_days` before `now`, with a step (and its log and trace blobs).

    With `defer`, blobs are appended to it instead of written (to write many at once: `put_all`).
    """

    def put(key: str, data: bytes) -> str:
        assert blobs is not None
        if defer is None:
            return blobs.put(key, data)
        defer.append((key, data))
        return blobs.uri_for(key)

    ended = now - timedelta(days=age_days)
    run_id = run_id_at(ended, seq)
    keys: list[str] = []
    values: dict[str, Any] = {
        "run_id": run_id,
        "orchestrator": orchestrator,
        "flow_id": flow_id,
        "run_key": run_id,
        "status": status,
        "started_at": ended - timedelta(minutes=1),
        "finished_at": ended if status not in ("running", "queued", "paused") else None,
    }
    step: dict[str, Any] = {"run_id": run_id, "step_id": "work", "try_number": 1, "status": status}
    if blobs is not None and log:
        key = blob_key(orchestrator, flow_id, run_id, "work", 1, LOG)
        step["log_uri"] = put(key, gzip.compress(b'{"m":"hello"}\n'))
        step["log_bytes"] = 14
        index = blob_key(orchestrator, flow_id, run_id, "work", 1, LOG_INDEX)  # as the recorder writes it
        put(index, b'{"format":1,"lines":1,"size":34,"points":[[0,0]]}')
        keys += [key, index]
    if blobs is not None and failed_step:
        text = blob_key(orchestrator, flow_id, run_id, "work", 1, TRACE_TEXT)
        js = blob_key(orchestrator, flow_id, run_id, "work", 1, TRACE_JSON)
        uri = put(text, gzip.compress(b"Traceback ...\nValueError: boom\n"))
        put(js, gzip.compress(b"{}"))
        keys += [text, js]
        step.update(trace_uri=uri, trace_bytes=31, error_type="ValueError", error_message="boom")
        values.update(trace_uri=uri, trace_bytes=31, error_type="ValueError", error_message="boom")
        values["root_step_id"] = "work"
    batch = WriteBatch().run(values).step(step)
    batch.event({"run_id": run_id, "kind": "run_finished", "ts": ended, "summary": status})
    store.write(batch)
    return Made(run_id, flow_id, status, keys)


def put_all(blobs: BlobStore, items: list[tuple[str, bytes]]) -> None:
    """Write many blobs concurrently (fsspec's batched pipe: quick on an object store)."""
    root = blobs.fs._strip_protocol(blobs.url).rstrip("/")
    blobs.fs.pipe({f"{root}/{k}": v for k, v in items})


def all_keys(blobs: BlobStore) -> set[str]:
    return {b.key for b in blobs.iter_blobs()}


def runs_of(store: RunStore, flow_id: str | None = None) -> Iterator[Any]:
    from rundossier.storage.db import RunQuery

    cursor = None
    while True:
        page = store.list_runs(RunQuery(flow_id=flow_id), limit=500, cursor=cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
