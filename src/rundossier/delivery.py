"""Delivery: write blobs, then the rows that point at them; whatever fails goes to the spool.

Order matters: a blob is written before the row that points to it. If storage refuses a blob,
the rows are still written, marked `spooled`, and the blob waits in the spool. If the database
refuses the rows, they wait in the spool too. `flush` replays spool items in the same order and
clears the `spooled` marks. Nothing here ever raises into the caller's task except SpoolError
when even the local disk refuses (the recorder logs that as the last resort).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .blobs import BlobStore
from .errors import RundossierError, SpoolError
from .spool import Spool, SpoolItem, decode_datetimes
from .store import RunStore, WriteBatch

log = logging.getLogger("rundossier")


@dataclass
class DeliveryResult:
    run_ids: list[str] = field(default_factory=list)
    spooled: bool = False
    blob_error: str | None = None
    store_error: str | None = None


@dataclass
class FlushReport:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    remaining: int = 0
    errors: list[str] = field(default_factory=list)


class Delivery:
    """Blobs then rows, with the spool as the fallback for both."""

    def __init__(self, blobs: Callable[[], BlobStore], store: Callable[[], RunStore], spool: Spool) -> None:
        self._blobs = blobs
        self._store = store
        self.spool = spool

    def deliver(self, blobs: Sequence[tuple[str, bytes]], batch: WriteBatch) -> DeliveryResult:
        """Write `blobs`, then `batch`. Rows whose blobs were spooled are marked `spooled`."""
        result = DeliveryResult()
        pending: list[tuple[str, bytes]] = []
        if blobs:
            try:
                pending, result.blob_error = _put_all(self._blobs(), blobs)
            except Exception as exc:  # noqa: BLE001 - the blob store could not even be built
                pending = list(blobs)
                result.blob_error = f"{type(exc).__name__}: {exc}"
        if pending:
            _mark_spooled(batch)
        try:
            result.run_ids = self._store().write(batch)
        except RundossierError as exc:
            result.store_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the store could not even be opened: spool, don't lose
            result.store_error = f"{type(exc).__name__}: {exc}"
        if pending or result.store_error:
            item = SpoolItem(
                blobs=pending,
                batch=batch.to_json() if result.store_error else None,
                unmark=_unmark_targets(batch, result.run_ids) if pending and not result.store_error else [],
                reason="; ".join(e for e in (result.blob_error, result.store_error) if e),
            )
            self.spool.put(item)  # SpoolError propagates: the caller logs it as data loss
            result.spooled = True
        return result

    def flush(
        self, *, budget_s: float | None = None, progress: Callable[[int, int], None] | None = None
    ) -> FlushReport:
        """Deliver spooled items, oldest first. Stops early when `budget_s` runs out."""
        report = FlushReport()
        start = time.monotonic()
        paths = self.spool.pending()
        for n, path in enumerate(paths):
            if budget_s is not None and time.monotonic() - start > budget_s:
                report.remaining += len(paths) - n
                break
            with self.spool.claim(path) as mine:
                if not mine:
                    report.skipped += 1
                    continue
                try:
                    self._deliver_item(self.spool.load(path).item)
                except (RundossierError, OSError) as exc:
                    report.failed += 1
                    report.errors.append(f"{path.name}: {exc}")
                    continue
                self.spool.remove(path)
                report.delivered += 1
            if progress is not None:
                progress(n + 1, len(paths))
        report.remaining += report.failed + report.skipped
        self.spool.clean_temp()
        return report

    def _deliver_item(self, item: SpoolItem) -> None:
        if item.blobs:
            store = self._blobs()
            for key, data in item.blobs:
                store.put(key, data)
        if item.batch is not None:
            batch = WriteBatch.from_json(decode_datetimes(item.batch))
            _mark_spooled(batch, False)
            _remap_run_ids(batch, self._store())
            self._store().write(batch)
        for target in item.unmark:
            if "step_id" in target:
                self._store().update_step(target["run_id"], target["step_id"], target["try_number"], spooled=False)
            else:
                self._store().update_run(target["run_id"], spooled=False)


def _put_all(store: BlobStore, blobs: Sequence[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], str | None]:
    """Write blobs in order; on the first refusal the rest are returned as pending.

    (Writing them side by side in threads was measured slower: they are small local writes.)
    """
    for i, (key, data) in enumerate(blobs):
        exc = _try_put(store, key, data)
        if exc is not None:
            return list(blobs[i:]), str(exc)
    return [], None


def _try_put(store: BlobStore, key: str, data: bytes) -> BaseException | None:
    try:
        store.put(key, data)
        return None
    except RundossierError as exc:
        return exc


def _mark_spooled(batch: WriteBatch, value: bool = True) -> None:
    for values, _ in batch.runs:
        if values.get("trace_uri") or "spooled" in values:
            values["spooled"] = value
    for step in batch.steps:
        if step.get("trace_uri") or step.get("log_uri") or "spooled" in step:
            step["spooled"] = value
    for cause in batch.root_causes:
        if cause.get("trace_uri"):
            cause["spooled"] = value


def _unmark_targets(batch: WriteBatch, run_ids: list[str]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for (values, _), run_id in zip(batch.runs, run_ids, strict=False):
        if values.get("spooled"):
            targets.append({"run_id": run_id})
    for step in batch.steps:
        if step.get("spooled"):
            targets.append({"run_id": step["run_id"], "step_id": step["step_id"], "try_number": step["try_number"]})
    for cause in batch.root_causes:
        if cause.get("spooled") and {"run_id": cause["run_id"]} not in targets:
            targets.append({"run_id": cause["run_id"]})
    return targets


def _remap_run_ids(batch: WriteBatch, store: RunStore) -> None:
    """A run id chosen while the database was down may lose to one another process created."""
    mapping: dict[str, str] = {}
    for values, _ in batch.runs:
        existing = store.find_run(values["orchestrator"], values["flow_id"], values["run_key"])
        if existing is not None and values.get("run_id") and existing.run_id != values["run_id"]:
            mapping[values["run_id"]] = existing.run_id
            values["run_id"] = existing.run_id
    if mapping:
        for rows in (batch.steps, batch.events):
            for row in rows:
                if row.get("run_id") in mapping:
                    row["run_id"] = mapping[row["run_id"]]


__all__ = ["Delivery", "DeliveryResult", "FlushReport", "SpoolError"]
