"""The writer: the one way rows and blobs reach storage and the database, with the spool behind it.

Every write of the recorder (run, step, event, root cause, trace, log) goes through `Writer.write`:

- blobs first, then the rows that point at them (a row never points at a blob that is not there,
  or that is not waiting in the spool: such rows are marked `spooled`);
- what the database or the blob store refuses waits in the spool (`$RUNDOSSIER_HOME/spool`) and is
  delivered later, oldest first; replaying is idempotent (merging upserts, events with unique ids,
  blobs overwritten with the same bytes), so a delivery cut short is simply done again;
- a task waits at most one `budget` (RUNDOSSIER_WRITE_BUDGET seconds) for a backend that fails or
  does not answer, however many writes it makes: once a backend is found unavailable (refused,
  locked, read-only, timed out), later writes of this process go straight to the spool, and a
  background thread delivers the spool and closes the outage when the backend answers again;
- calls to network backends (PostgreSQL, S3 ...) run on a worker thread with a time limit, so a
  socket that accepts and never replies costs the budget, not forever; local ones (SQLite, file://)
  run inline, bounded by their own timeouts (SQLite's busy timeout is capped at the budget);
- if even the spool's disk refuses (full, read-only), items are held in memory (bounded) and
  retried by the same thread; only what is still held when the process exits is lost, and that
  is said in an error line.

One warning line says when a backend becomes unavailable and where writes wait; one info line
when it answers again and how much was delivered.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from rundossier.errors import ConfigError, RundossierError, SpoolError, StorageError, StoreUnavailable
from rundossier.storage.blobs import BlobStore, run_prefix
from rundossier.storage.db import RunStore, WriteBatch
from rundossier.storage.spool import Spool, SpoolItem, decode_datetimes

log = logging.getLogger("rundossier")
T = TypeVar("T")

#: items kept in memory when the spool's disk refuses them (bytes of blobs; rows count little)
HELD_MAX_BYTES = 64 * 1024 * 1024
#: how long the recovery thread waits between attempts (doubling up to the max)
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
#: what the recovery looks up in blob storage to see whether it answers again (it need not exist)
PROBE_KEY = ".rundossier-probe"
#: network calls run on this many daemon threads (one hung call must not stop the others)
NETWORK_THREADS = 4
#: run keys remembered per process (what a spooled item needs to find its run again)
RUN_KEYS_MAX = 4096


class Unavailable(RundossierError):
    """A backend did not answer within the time it was given (or an earlier call still hangs)."""


class BudgetSpent(Unavailable):
    """This task already waited its whole budget on a failing backend: the write is spooled
    without trying (the backend itself may be fine, so no outage is declared)."""


@dataclass
class Budget:
    """How long one task may still wait on a backend that fails or does not answer.

    `deadline` (a `time.monotonic()` value, set by a caller that itself has only so long, such as
    Airflow's end-of-task hook) also bounds writes that succeed slowly: past it, whatever is still
    to be written goes to the spool without waiting."""

    seconds: float
    deadline: float | None = None

    def spend(self, seconds: float) -> None:
        self.seconds = max(0.0, self.seconds - seconds)

    def until(self, deadline: float) -> None:
        """Stop waiting at `deadline` at the latest (an earlier deadline already set stays)."""
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)

    @property
    def left(self) -> float:
        """Seconds a call may still wait: what is left of the budget, and no later than the deadline."""
        if self.deadline is None:
            return self.seconds
        return max(0.0, min(self.seconds, self.deadline - time.monotonic()))

    @property
    def exhausted(self) -> bool:
        return self.left <= 0.0


@dataclass
class WriteResult:
    """What `write` did: the runs' ids and stored start times (when the database took the rows)."""

    run_ids: list[str] = field(default_factory=list)
    started_at: list[datetime | None] = field(default_factory=list)
    spooled: bool = False
    held: bool = False
    blob_error: str | None = None
    store_error: str | None = None


@dataclass
class FlushReport:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    remaining: int = 0
    #: items that failed because a backend is (still) unavailable
    unavailable: int = 0
    errors: list[str] = field(default_factory=list)
    #: spool items that failed for another reason (bad data): they stay, and do not hold up the rest
    rejected: set[str] = field(default_factory=set)


class _NetworkCalls:
    """Calls to one network backend on a few daemon threads, each waited on for a bounded time.

    Daemon threads (not a ThreadPoolExecutor, whose threads are joined at exit): a call that hangs
    on a dead socket must not keep the task's process from exiting. A call that timed out is left
    to finish on its own; its backend counts as unavailable until it has. A thread is started only
    when none is idle: each may hold a database connection of its own (see `RawWriter`), so a
    process whose calls come one at a time holds one, not NETWORK_THREADS.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._hung: list[Future[Any]] = []
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job (guarded by _lock)
        self._queued = 0  # jobs no thread has taken yet (guarded by _lock)

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        with self._lock:
            self._hung = [f for f in self._hung if not f.done()]
            if self._hung:
                raise Unavailable(f"the {self.name} has not answered an earlier call yet")
            self._threads = [t for t in self._threads if t.is_alive()]
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < NETWORK_THREADS:
                thread = threading.Thread(target=self._work, name=f"rundossier-{self.name}", daemon=True)
                thread.start()
                self._threads.append(thread)
            future: Future[T] = Future()
            self._jobs.put((fn, future))
        try:
            return future.result(timeout=max(timeout, 0.001))
        except TimeoutError:
            with self._lock:
                self._hung.append(future)
            raise Unavailable(f"the {self.name} did not answer within {timeout:.1f}s") from None

    @property
    def threads(self) -> int:
        """Threads started so far and alive (each may hold one connection)."""
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            fn, future = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    future.set_exception(exc)


@dataclass
class _Outage:
    since: float
    reason: str


class Writer:
    """Blobs then rows, direct while the backends answer, through the spool when they do not."""

    def __init__(
        self,
        blobs: Callable[[], BlobStore],
        store: Callable[[], RunStore],
        spool: Spool,
        *,
        budget_s: float = 5.0,
        warn: Callable[[str], None] | None = None,
        local_store: bool = True,
        local_blobs: bool = True,
        on_rename: Callable[[str, str], None] | None = None,
    ) -> None:
        """`local_store` / `local_blobs`: the backend is on this machine (SQLite, file://), so its
        calls run inline; network ones run on worker threads with a time limit. Told, not asked:
        asking would build the backend, which may itself hang on a dead network.
        `on_rename(old, new)`: a run this process recorded under id `old` is stored as `new`
        (see `note_run`)."""
        self._blobs = blobs
        self._store = store
        self._local = {"store": local_store, "blob store": local_blobs}
        self.spool = spool
        self.budget_s = budget_s
        self._warn = warn or log.warning
        self._lock = threading.RLock()
        self._store_down: _Outage | None = None
        self._blobs_down: _Outage | None = None
        self._held: deque[SpoolItem] = deque()
        self._held_bytes = 0
        self._recovering: threading.Thread | None = None
        self._stop = threading.Event()
        self._calls: dict[str, _NetworkCalls] = {}
        self._on_rename = on_rename
        #: run id -> (orchestrator, flow_id, run_key) of the runs this process records
        self._run_keys: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        #: runs whose row waits in the spool: what is written for them waits there too, behind it
        self._waiting: set[str] = set()
        #: run ids this process chose that the database knows under another id (see `_deliver_item`)
        self._renamed: dict[str, str] = {}
        _WRITERS.add(self)

    # -- state ---------------------------------------------------------------------------------
    @property
    def store_down(self) -> bool:
        return self._store_down is not None

    @property
    def blobs_down(self) -> bool:
        return self._blobs_down is not None

    @property
    def held(self) -> int:
        """Items waiting in memory because the spool's disk refused them."""
        return len(self._held)

    # -- writing -------------------------------------------------------------------------------
    def note_run(self, run_id: str, orchestrator: str, flow_id: str, run_key: str) -> None:
        """Remember a run's key, so that what is spooled for it finds the run again when delivered.

        A run whose start waits in the spool has an id this process chose; if another process
        records the same run (orchestrator, flow, key) first, the row keeps that process's id, and
        the delivery moves this process's rows and blobs to it (and `on_rename` tells the caller)."""
        with self._lock:
            self._run_keys[run_id] = (orchestrator, flow_id, run_key)
            self._run_keys.move_to_end(run_id)
            while len(self._run_keys) > RUN_KEYS_MAX:
                self._run_keys.popitem(last=False)

    def write(
        self, blobs: Sequence[tuple[str, bytes]], batch: WriteBatch, *, budget: Budget | None = None
    ) -> WriteResult:
        """Write `blobs`, then `batch`; what a backend refuses goes to the spool. Never raises.

        Rows of a run whose own row waits in the spool wait there too, behind it (delivered in
        order, under the id the database gives the run)."""
        budget = budget if budget is not None else Budget(self.budget_s)
        result = WriteResult()
        if self._renamed:
            blobs, batch = self._apply_renames(blobs, batch)
        pending: list[tuple[str, bytes]] = []
        if blobs:
            pending, result.blob_error = self._put_blobs(blobs, budget)
        if pending:
            _mark_spooled(batch)
        spool_batch = False
        behind = self._behind_spooled_run(batch)
        if batch and behind:
            result.store_error = f"the row of run {behind} waits in the spool"
            spool_batch = True
        elif batch:
            try:
                written = self.bounded("store", lambda: self._store().write(batch, wait_s=budget.left), budget)
                result.run_ids, result.started_at = written.run_ids, written.started_at
            except Exception as exc:  # noqa: BLE001 - any refusal: the rows wait in the spool, never lost
                result.store_error = _describe(exc)
                spool_batch = True
                if isinstance(exc, BudgetSpent):
                    pass
                elif _is_outage(exc):
                    self._open("store", result.store_error)
                else:
                    self._warn(
                        f"rundossier could not write rows ({result.store_error}); they wait in "
                        f"{self.spool.directory} (`rundossier flush` retries and shows the error)"
                    )
        if pending or spool_batch:
            unmark = _unmark_targets(batch, result.run_ids) if pending and not spool_batch else []
            item = SpoolItem(
                blobs=pending,
                batch=batch.to_json() if spool_batch else None,
                unmark=unmark,
                reason="; ".join(e for e in (result.blob_error, result.store_error) if e),
                runs=self._keys_of(pending, batch if spool_batch else None, unmark),
            )
            if spool_batch:
                with self._lock:
                    self._waiting.update(values["run_id"] for values, _, _ in batch.runs if values.get("run_id"))
            result.spooled = True
            result.held = not self._keep(item)
            self._start_recovery()  # whatever waits is delivered as soon as the backends take it
        return result

    def _behind_spooled_run(self, batch: WriteBatch) -> str | None:
        """A run this batch writes to whose row waits in the spool (the batch then waits behind it)."""
        if not self._waiting:
            return None
        with self._lock:
            for run_id in _run_ids_of(batch):
                if run_id in self._waiting:
                    return run_id
        return None

    def _keys_of(
        self, blobs: Sequence[tuple[str, bytes]], batch: WriteBatch | None, unmark: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[str]]:
        """The keys of the runs a spool item writes to (rows, blobs, marks), as far as known."""
        ids = set(_run_ids_of(batch)) if batch is not None else set()
        ids.update(t["run_id"] for t in unmark)
        ids.update(parts[2] for parts in (key.split("/") for key, _ in blobs) if len(parts) > 3)
        keys: dict[str, list[str]] = {}
        with self._lock:
            for run_id in ids:
                if run_id in self._run_keys:
                    keys[run_id] = list(self._run_keys[run_id])
        for values, _, _ in batch.runs if batch is not None else ():
            if values.get("run_id") and values.get("run_key"):
                keys[values["run_id"]] = [values["orchestrator"], values["flow_id"], values["run_key"]]
        return keys

    def _apply_renames(
        self, blobs: Sequence[tuple[str, bytes]], batch: WriteBatch, mapping: Mapping[str, str] | None = None
    ) -> tuple[list[tuple[str, bytes]], WriteBatch]:
        """Blob keys and rows with run ids (and the URIs that hold them) renamed."""
        with self._lock:
            mapping = dict(self._renamed if mapping is None else mapping)
        return [(_renamed_key(key, mapping), data) for key, data in blobs], _renamed_batch(batch, mapping)

    def _learn(self, old: str, new: str) -> None:
        with self._lock:
            self._renamed[old] = new
            self._waiting.discard(old)
            if old in self._run_keys:
                self._run_keys[new] = self._run_keys[old]
        if self._on_rename is not None:
            try:
                self._on_rename(old, new)
            except Exception as exc:  # noqa: BLE001 - the rows are right; only this process's handle lags
                log.warning("rundossier: could not rename run %s to %s here: %s", old, new, _describe(exc))

    def _put_blobs(
        self, blobs: Sequence[tuple[str, bytes]], budget: Budget
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """Write blobs in order; from the first refusal on, the rest are returned as pending.

        (Writing them side by side in threads was measured slower: they are small local writes.)"""
        for i, (key, data) in enumerate(blobs):
            try:
                self.bounded("blob store", partial(self._put_blob_now, key, data), budget)
            except Exception as exc:  # noqa: BLE001 - the blob store could not even be built, or refused
                reason = _describe(exc)
                if not isinstance(exc, BudgetSpent):
                    self._open("blobs", reason)
                return list(blobs[i:]), reason
        return [], None

    def put_blob(self, key: str, data: bytes, *, budget: Budget | None = None) -> bool:
        """Write one blob (a log part); spooled if storage refuses. True if it is stored now."""
        result = self.write([(key, data)], WriteBatch(), budget=budget)
        return not result.spooled

    def bounded(self, backend: str, fn: Callable[[], T], budget: Budget) -> T:
        """Run one call to a backend unless it is known down, or the task's budget is spent and
        the backend is on the network (a local one is still tried: SQLite then waits no longer
        than what is left, possibly nothing, and a local disk does not hang)."""
        outage = self._store_down if backend == "store" else self._blobs_down
        if outage is not None:
            raise Unavailable(f"the {backend} is unavailable since {_ago(outage.since)} ({outage.reason})")
        if budget.exhausted and not self._local[backend]:
            if budget.deadline is not None and budget.seconds > 0.0:
                raise BudgetSpent(f"the caller's time is up: what is left waits in {self.spool.directory}")
            raise BudgetSpent(f"this task already waited {self.budget_s:g}s (RUNDOSSIER_WRITE_BUDGET) on storage")
        start = time.monotonic()
        try:
            return self._call(backend, fn, budget)
        except BaseException:
            budget.spend(time.monotonic() - start)
            raise

    def _call(self, backend: str, fn: Callable[[], T], budget: Budget) -> T:
        if self._local[backend]:
            return fn()
        calls = self._calls.get(backend) or self._calls.setdefault(backend, _NetworkCalls(backend))
        wait = budget.left
        try:
            return calls.call(fn, wait)
        except Unavailable:
            if budget.deadline is not None and wait < budget.seconds:  # cut short by the caller's deadline
                raise BudgetSpent(
                    f"the caller's time ran out after {wait:.1f}s: what is left waits in {self.spool.directory}"
                ) from None
            raise

    # -- outages and recovery ------------------------------------------------------------------
    def _open(self, which: str, reason: str) -> None:
        with self._lock:
            if which == "store":
                first, self._store_down = (
                    self._store_down is None,
                    self._store_down or _Outage(time.monotonic(), reason),
                )
                what = "the run history database"
            else:
                first, self._blobs_down = (
                    self._blobs_down is None,
                    self._blobs_down or _Outage(time.monotonic(), reason),
                )
                what = "blob storage"
            if first:
                self._warn(
                    f"rundossier: {what} is unavailable ({reason}); what this process records waits in "
                    f"{self.spool.directory} and is delivered when it answers again (or by `rundossier flush`)"
                )
            self._start_recovery()

    def _keep(self, item: SpoolItem) -> bool:
        """Spool an item; if the disk refuses, hold it in memory. True if it is on disk."""
        with self._lock:
            try:
                if not self._held:  # keep the order: held items go to disk first
                    self.spool.put(item)
                    return True
            except SpoolError as exc:
                self._warn(
                    f"rundossier could not spool ({exc}); keeping what it records in memory (up to "
                    f"{HELD_MAX_BYTES >> 20} MiB) until storage, the database or the spool's disk answers"
                )
            self._hold(item)
            self._start_recovery()
            return False

    def _hold(self, item: SpoolItem) -> None:
        size = sum(len(d) for _, d in item.blobs) + 1024
        while self._held and self._held_bytes + size > HELD_MAX_BYTES:
            dropped = self._held.popleft()
            self._held_bytes -= sum(len(d) for _, d in dropped.blobs) + 1024
            log.error(
                "rundossier lost a record it could neither write nor spool (memory cap reached): %s", dropped.reason
            )
        self._held.append(item)
        self._held_bytes += size

    def _start_recovery(self) -> None:
        if self._recovering is None or not self._recovering.is_alive():
            self._stop.clear()
            self._recovering = threading.Thread(target=self._recover, name="rundossier-recovery", daemon=True)
            self._recovering.start()

    def _recover(self) -> None:
        delay = RETRY_FIRST_S
        while not self._stop.wait(delay):
            try:
                if self.try_recover():
                    return
            except Exception as exc:  # noqa: BLE001 - a background thread: report, wait, try again
                log.debug("rundossier: delivering the spool failed: %s", _describe(exc))
            delay = min(delay * 2, RETRY_MAX_S)

    def try_recover(self) -> bool:
        """One attempt to end the outages and deliver what waits (held, then spooled); True once
        nothing is down, held or waiting. A backend is back when a probe of it answers (a write
        transaction on the database, a lookup in blob storage) and the spool then flushes clean:
        an empty spool alone proves nothing (the write that found the outage may not have spooled
        yet)."""
        self._release_held()
        with self._lock:
            down = [b for b, o in (("store", self._store_down), ("blob store", self._blobs_down)) if o]
        budget = Budget(self.budget_s)
        try:
            for backend in down:
                self._call(backend, self._probe_store if backend == "store" else self._probe_blobs, budget)
        except Exception as exc:  # noqa: BLE001 - still down: the next round tries again
            log.debug("rundossier: still unavailable: %s", _describe(exc))
            return False
        report = self.flush()
        self._end_outages(report, probed=True)
        with self._lock:
            if self._store_down is not None or self._blobs_down is not None or self._held:
                return False
            waiting = [p for p in self.spool.pending() if p.name not in report.rejected]
            return len(waiting) <= report.skipped

    def _probe_store(self) -> None:
        self._store().check_writable()

    def _probe_blobs(self) -> None:
        blobs = self._blobs()
        blobs.exists(blobs.uri_for(PROBE_KEY))

    def _end_outages(self, report: FlushReport, *, probed: bool) -> None:
        """After a flush that met no outage: the backends answer again, unless more was spooled meanwhile.

        Decided under the lock: a write that found the outage open has spooled by now, and anything
        spooled while we flushed (not rejected, not claimed by another process) means another round."""
        with self._lock:
            if self._store_down is None and self._blobs_down is None:
                return
            if not probed or report.unavailable or self._held:
                return
            waiting = [p for p in self.spool.pending() if p.name not in report.rejected]
            if len(waiting) > report.skipped:
                return
            healed = [w for w, o in (("the database", self._store_down), ("blob storage", self._blobs_down)) if o]
            self._store_down = self._blobs_down = None
        log.info("rundossier: %s answers again; %d spooled item(s) delivered", " and ".join(healed), report.delivered)

    def _release_held(self) -> None:
        """Held items go to the spool's disk as soon as it takes them (in order)."""
        with self._lock:
            while self._held:
                item = self._held[0]
                try:
                    self.spool.put(item)
                except SpoolError:
                    return
                self._held.popleft()
                self._held_bytes -= sum(len(d) for _, d in item.blobs) + 1024

    # -- flushing ------------------------------------------------------------------------------
    def flush(
        self, *, budget_s: float | None = None, progress: Callable[[int, int], None] | None = None
    ) -> FlushReport:
        """Deliver spooled items, oldest first; stops early when `budget_s` runs out or a backend
        is still unavailable. Tried even during an outage (the recovery thread ends one after a
        probe of the backend and a clean flush)."""
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
                except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the others
                    report.failed += 1
                    report.errors.append(f"{path.name}: {_describe(exc)}")
                    if _is_outage(exc):
                        report.unavailable += 1
                        report.remaining += len(paths) - n - 1
                        break  # the backend is down: later items would only wait on it too
                    report.rejected.add(path.name)
                    continue
                self.spool.remove(path)
                report.delivered += 1
            if progress is not None:
                progress(n + 1, len(paths))
        report.remaining += report.failed + report.skipped
        self.spool.clean_temp()
        return report

    def _deliver_item(self, item: SpoolItem) -> None:
        """One spooled item: blobs, rows, then the rows' `spooled` marks cleared.

        A run the item writes to that the database knows under another id (its start waited
        here while another process recorded it) is written under that id: its rows, its blobs
        in this item, and the blobs already stored in its own folder (moved first: a blob is in
        place before the row that points at it)."""
        budget = Budget(self.budget_s)

        def call(backend: str, fn: Callable[[], Any]) -> Any:
            return self._call(backend, fn, budget)

        batch = WriteBatch.from_json(decode_datetimes(item.batch)) if item.batch is not None else None
        blobs, unmark = list(item.blobs), [dict(t) for t in item.unmark]
        keys = {run_id: tuple(key) for run_id, key in item.runs.items() if len(key) == 3}
        for values, _, _ in batch.runs if batch is not None else ():
            if values.get("run_id") and values.get("run_key"):
                keys[values["run_id"]] = (values["orchestrator"], values["flow_id"], values["run_key"])
        mapping: dict[str, str] = {}
        for run_id, (orchestrator, flow_id, run_key) in keys.items():
            existing = call("store", partial(self._find_run, orchestrator, flow_id, run_key))
            if existing is not None and existing != run_id:
                mapping[run_id] = existing
        if mapping:
            blobs, renamed = self._apply_renames(blobs, batch or WriteBatch(), mapping)
            batch = renamed if batch is not None else None
            unmark = [{**t, "run_id": mapping.get(t["run_id"], t["run_id"])} for t in unmark]
            for old, new in mapping.items():
                orchestrator, flow_id, _ = keys[old]
                call("blob store", partial(self._move_run_blobs, orchestrator, flow_id, old, new))
        for key, data in blobs:
            call("blob store", partial(self._put_blob_now, key, data))
        if batch is not None:
            _mark_spooled(batch, False)
            call("store", partial(self._store().write, batch))
        for t in unmark:
            if "step_id" in t:
                call("store", partial(self._unmark_step, t))
            else:
                call("store", partial(self._unmark_run, t))
        with self._lock:
            self._waiting.difference_update(keys)
        for old, new in mapping.items():
            self._learn(old, new)

    def _put_blob_now(self, key: str, data: bytes) -> None:
        self._blobs().put(key, data)

    def _find_run(self, orchestrator: str, flow_id: str, run_key: str) -> str | None:
        row = self._store().find_run(orchestrator, flow_id, run_key)
        return row.run_id if row is not None else None

    def _move_run_blobs(self, orchestrator: str, flow_id: str, old: str, new: str) -> None:
        self._blobs().move_prefix(run_prefix(orchestrator, flow_id, old), run_prefix(orchestrator, flow_id, new))

    def _unmark_step(self, t: Mapping[str, Any]) -> None:
        self._store().update_step(t["run_id"], t["step_id"], t["try_number"], spooled=False)

    def _unmark_run(self, t: Mapping[str, Any]) -> None:
        self._store().update_run(t["run_id"], spooled=False)

    # -- exit ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the recovery thread; what is still held in memory is spooled if the disk allows."""
        self._stop.set()
        self._release_held()
        if self._held:
            log.error(
                "rundossier lost %d record(s) at exit: neither storage, the database nor the spool's disk "
                "(%s) took them",
                len(self._held),
                self.spool.directory,
            )
            self._held.clear()
            self._held_bytes = 0


_WRITERS: weakref.WeakSet[Writer] = weakref.WeakSet()


@atexit.register
def _close_writers() -> None:
    for writer in list(_WRITERS):
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - at exit: nothing left to report to
            pass


def _is_outage(exc: BaseException) -> bool:
    """A refusal that passes when the backend is back or reconfigured (not a bug or bad data)."""
    return isinstance(exc, Unavailable | StoreUnavailable | StorageError | SpoolError | ConfigError | OSError)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RundossierError) else f"{type(exc).__name__}: {exc}"


def _ago(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"


def _mark_spooled(batch: WriteBatch, value: bool = True) -> None:
    for values, _, _ in batch.runs:
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
    for (values, _, _), run_id in zip(batch.runs, run_ids, strict=False):
        if values.get("spooled"):
            targets.append({"run_id": run_id})
    for step in batch.steps:
        if step.get("spooled"):
            targets.append({"run_id": step["run_id"], "step_id": step["step_id"], "try_number": step["try_number"]})
    for cause in batch.root_causes:
        if cause.get("spooled") and {"run_id": cause["run_id"]} not in targets:
            targets.append({"run_id": cause["run_id"]})
    return targets


def _run_ids_of(batch: WriteBatch) -> Iterator[str]:
    """The run ids a batch writes to."""
    for values, _, _ in batch.runs:
        if values.get("run_id"):
            yield values["run_id"]
    for rows in (batch.steps, batch.events, batch.root_causes, batch.artifacts):
        for row in rows:
            if row.get("run_id"):
                yield row["run_id"]
    for run_id, _ in batch.cleared:
        yield run_id


def _renamed_value(value: Any, mapping: Mapping[str, str]) -> Any:
    """A row value with renamed run ids: the id itself, or a URI with the id as a path segment."""
    if not isinstance(value, str):
        return value
    if value in mapping:
        return mapping[value]
    for old, new in mapping.items():
        if f"/{old}/" in value:
            value = value.replace(f"/{old}/", f"/{new}/")
    return value


def _renamed_key(key: str, mapping: Mapping[str, str]) -> str:
    parts = key.split("/")
    if len(parts) > 3 and parts[2] in mapping:
        parts[2] = mapping[parts[2]]
    return "/".join(parts)


def _renamed_batch(batch: WriteBatch, mapping: Mapping[str, str]) -> WriteBatch:
    if not mapping:
        return batch

    def rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: _renamed_value(v, mapping) for k, v in row.items()} for row in items]

    return WriteBatch(
        runs=[(rows([values])[0], known, fill) for values, known, fill in batch.runs],
        steps=rows(batch.steps),
        events=rows(batch.events),
        root_causes=rows(batch.root_causes),
        cleared=[(mapping.get(run_id, run_id), step_id) for run_id, step_id in batch.cleared],
        artifacts=rows(batch.artifacts),
    )


__all__ = ["Writer", "WriteResult", "FlushReport", "Budget", "Unavailable", "BudgetSpent", "SpoolError"]
