"""The retention sweep: stream every flow's runs through the planner and act in bounded batches (I/O).

    report = sweep(store, blobs)                 # or dry_run=True: the same report, nothing removed

Safe under load and faults:

* Runs are read in short keyset pages (newest first per flow) and acted on in batches of
  `batch_size`: each batch is a few short transactions (BEGIN IMMEDIATE on SQLite), so writers
  keep writing while a sweep runs; no transaction spans blob I/O.
* Blobs go before rows, with the intent written first. For each batch:
    1. mark the runs `blobs_expired` with no date ("expiring"): from now on the rows say their
       traces are gone, so no row ever points at a missing blob without saying so;
    2. delete their blobs (local: the run's folder; object stores: the referenced keys, 1000 per
       DeleteObjects call);
    3. delete the rows (run, steps, events), or date the expiry for runs that stay.
  A sweep killed anywhere leaves rows marked "expiring"; the next sweep finds them and finishes
  the job (deleting again is harmless), so nothing is orphaned and nothing dangles.
  Batches overlap by one: while a batch's blobs are deleted (local: its run folders in creation
  order, in short runs of neighbours, on a few threads that go straight on to the next batch;
  object stores: on a blob thread), the next batch is marked and the previous one's rows are
  deleted. Each batch keeps the order above, so at most two batches are "expiring" at a time.
* Only finished runs are touched; every write re-checks the status, so a run that became active
  again (an Airflow clear) while the sweep ran is left alone.
* Every removal is counted per flow. A dry run computes the same counts from the same queries
  and removes nothing: on a quiet database its report equals the real sweep's.

Bytes are the trace and log sizes recorded on the rows (uncompressed); storage holds them gzipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from rundossier.core.ids import is_run_id
from rundossier.core.retention.plan import Action, Because, FlowPlanner, RunFacts, ended_at
from rundossier.core.retention.policy import PolicySet, Resolution, Rule
from rundossier.core.timefmt import iso
from rundossier.errors import InvalidInput, RundossierError, StorageError
from rundossier.storage.blobs import BlobStore, RunBlobs, log_index, run_prefix, structured_trace
from rundossier.storage.db import RunStore
from rundossier.storage.db.models import EVENT_TABLE as EVENT
from rundossier.storage.db.models import RUN_TABLE as RUN
from rundossier.storage.db.retention import RunRow, StepBlobs, SweepRows

DEFAULT_BATCH = 1000
MAX_BATCH = 5000
#: concurrent deletes on local storage (see Sweeper._delete_local_sets)
LOCAL_DELETE_THREADS = 8
#: run folders one local delete task removes, neighbours in creation order
LOCAL_DELETE_RUN = 16
PAGE = 2000

Progress = Callable[[int, int], None]


# -- reports ---------------------------------------------------------------------------------------


@dataclass
class FlowReport:
    """What a sweep removed (or, dry, would remove) from one flow."""

    flow_id: str
    resolution: Resolution
    runs_scanned: int = 0
    active_runs: int = 0
    runs_removed: int = 0
    runs_expired: int = 0
    steps_removed: int = 0
    events_removed: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    #: runs acted on, per rule that decided (keep_last, keep_days, blob_days, resume)
    by_rule: dict[str, int] = field(default_factory=dict)
    #: referenced blobs outside this blob store (the storage URL changed): left alone, not counted
    foreign_blobs: int = 0

    COUNTS = (
        "runs_scanned",
        "active_runs",
        "runs_removed",
        "runs_expired",
        "steps_removed",
        "events_removed",
        "blobs_removed",
        "bytes_removed",
        "foreign_blobs",
    )

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS}

    def to_json(self) -> dict[str, Any]:
        r = self.resolution
        return {
            "flow_id": self.flow_id,
            "policy": r.policy.to_json(),
            "rule": r.rule.pattern if r.rule is not None else None,
            "reason": r.reason,
            **self.counts(),
            "by_rule": dict(sorted(self.by_rule.items())),
        }


@dataclass
class SweepReport:
    """A sweep's account: per flow and in total. `complete` is False when it stopped on an error."""

    dry_run: bool
    now: datetime
    started_at: datetime
    finished_at: datetime | None = None
    flows: list[FlowReport] = field(default_factory=list)
    complete: bool = True
    error: str | None = None
    orphans: Any = None  # an OrphanReport when the orphan sweep ran

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(FlowReport.COUNTS, 0)
        for f in self.flows:
            for k, v in f.counts().items():
                out[k] += v
        out["flows"] = len(self.flows)
        return out

    def flow(self, flow_id: str) -> FlowReport | None:
        return next((f for f in self.flows if f.flow_id == flow_id), None)

    def to_json(self) -> dict[str, Any]:
        done = self.finished_at or datetime.now(UTC)
        return {
            "dry_run": self.dry_run,
            "complete": self.complete,
            "error": {"type": "sweep_stopped", "message": self.error} if self.error else None,
            "now": iso(self.now),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_s": round((done - self.started_at).total_seconds(), 3),
            "totals": self.totals(),
            "flows": [f.to_json() for f in self.flows],
            "orphans": self.orphans.to_json() if self.orphans is not None else None,
        }


# -- the sweep -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """A run the planner chose to delete or expire."""

    run_id: str
    orchestrator: str
    flow_id: str
    action: Action
    because: Because
    blobs_gone: bool
    trace_uri: str | None
    trace_bytes: int | None


@dataclass(slots=True)
class _Batch:
    """A batch whose runs are marked and whose blobs are being deleted (`deletes`)."""

    flow: FlowReport
    targets: Sequence[Target]
    deleting: list[Target]
    expiring: list[Target]
    marked: set[str]
    blob_sets: list[BlobSet]
    deletes: list[Future[None]]

    def wait_quietly(self) -> None:
        wait(self.deletes)

    def wait(self) -> None:
        """Wait for every delete of the batch, then raise the first error (none is left running)."""
        wait(self.deletes)
        for f in self.deletes:
            f.result()


def sweep(
    store: RunStore,
    blobs: BlobStore,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
    flows: Sequence[str] | None = None,
    rules: Iterable[Rule] | None = None,
    progress: Progress | None = None,
) -> SweepReport:
    """Apply the retention policies to every flow (or only `flows`); returns the account.

    Stops at the first storage or database error with `complete=False` and the error in the
    report; what it did so far is counted, and the next sweep picks up where it stopped.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise InvalidInput(f"batch_size must be a whole number from 1 to {MAX_BATCH}, got {batch_size!r}")
    with Sweeper(store, blobs, dry_run=dry_run, now=now) as sweeper:
        return _sweep(sweeper, store, batch_size, flows, rules, progress)


def _sweep(
    sweeper: Sweeper,
    store: RunStore,
    batch_size: int,
    flows: Sequence[str] | None,
    rules: Iterable[Rule] | None,
    progress: Progress | None,
) -> SweepReport:
    dry_run = sweeper.dry_run
    policies = PolicySet(rules if rules is not None else load_rules(store))
    report = SweepReport(dry_run=dry_run, now=sweeper.now, started_at=datetime.now(UTC))
    try:
        if not dry_run:
            # a run whose process died is decided first (crashed): until then it is running, never deleted
            store.reap_expired()
        counts = flow_counts(store)
        if flows is not None:
            wanted = set(flows)
            counts = [(f, n) for f, n in counts if f in wanted]
        total = sum(n for _, n in counts)
        done = 0
        for flow_id, _n in counts:
            flow = FlowReport(flow_id, policies.resolve(flow_id))
            report.flows.append(flow)
            for scanned in sweeper.sweep_flow(flow, batch_size):
                done += scanned
                if progress is not None:
                    progress(done, total)
    except RundossierError as exc:
        report.complete = False
        report.error = str(exc)
    report.finished_at = datetime.now(UTC)
    return report


def preview(store: RunStore, blobs: BlobStore, **kwargs: Any) -> SweepReport:
    """What a sweep would remove now (a dry run)."""
    return sweep(store, blobs, dry_run=True, **kwargs)


def load_rules(store: RunStore) -> list[Rule]:
    return [Rule.from_row(row) for row in store.list_policies()]


def flow_counts(store: RunStore) -> list[tuple[str, int]]:
    """Every flow with runs, and how many (served by the (flow_id, run_id) index)."""
    stmt = select(RUN.c.flow_id, func.count()).group_by(RUN.c.flow_id).order_by(RUN.c.flow_id)
    with store.session() as s:
        return [(str(f), int(n)) for f, n in s.execute(stmt).all()]


class Sweeper:
    """Carries out decisions for one store and blob store, batch by batch. Use it as a context
    manager (or call `close`): local deletes run on a small thread pool."""

    def __init__(self, store: RunStore, blobs: BlobStore, *, dry_run: bool = False, now: datetime | None = None):
        self.store = store
        self.blobs = blobs
        self.dry_run = dry_run
        self.now = now or datetime.now(UTC)
        self.local = blobs.url.startswith("file://")
        self._pool: ThreadPoolExecutor | None = None
        self._blob_thread: ThreadPoolExecutor | None = None
        self._bases: dict[tuple[str, str], str] = {}
        self.rows = SweepRows(store)

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._blob_thread is not None:
            self._blob_thread.shutdown(wait=True)
            self._blob_thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(LOCAL_DELETE_THREADS, thread_name_prefix="rundossier-retention")
        return self._pool.submit(fn, *args)

    # -- reading ------------------------------------------------------------------------------
    def pages(self, flow_id: str, page: int = PAGE) -> Iterator[list[RunRow]]:
        """The flow's runs, newest first, one short read per page."""
        cursor: str | None = None
        while True:
            rows = self.rows.runs_page(flow_id, cursor, page)
            if not rows:
                return
            yield rows
            if len(rows) < page:
                return
            cursor = rows[-1].run_id

    def sweep_flow(self, flow: FlowReport, batch_size: int) -> Iterator[int]:
        """Plan and act on one flow; yields how many runs each page scanned.

        Batches overlap: while one batch's blobs are deleted (on the blob thread), the next is
        marked and the previous one's rows are deleted, so the database and the storage work
        side by side. Each batch keeps its own order (mark, blobs, rows); on an error the batch
        in flight is waited for and its runs stay marked for the next sweep."""
        planner = FlowPlanner(flow.resolution.policy, self.now)
        pending: list[Target] = []
        inflight: _Batch | None = None
        try:
            for rows in self.pages(flow.flow_id, max(PAGE, batch_size)):
                for run_id, orch, status, fin, sta, cre, expired, expired_at, trace_uri, trace_bytes in rows:
                    facts = RunFacts(run_id, status, ended_at(fin, sta, cre), bool(expired), expired_at)
                    d = planner.decide(facts)
                    if d.because is Because.ACTIVE:
                        flow.active_runs += 1
                    if d.action is Action.KEEP:
                        continue
                    target = Target(
                        run_id, orch, flow.flow_id, d.action, d.because, facts.blobs_gone, trace_uri, trace_bytes
                    )
                    pending.append(target)
                    if len(pending) >= batch_size:
                        inflight = self._next_batch(inflight, pending, flow)
                        pending = []
                flow.runs_scanned += len(rows)
                yield len(rows)
            if pending:
                inflight = self._next_batch(inflight, pending, flow)
            if inflight is not None:
                batch, inflight = inflight, None
                self._complete(batch)
        finally:
            if inflight is not None:  # stopped on an error: let the deletes in flight end
                inflight.wait_quietly()

    def _next_batch(self, inflight: _Batch | None, targets: Sequence[Target], flow: FlowReport) -> _Batch | None:
        """Start `targets` (its blobs deleting in the background), then complete the batch before it."""
        started = self._begin(targets, flow)
        if inflight is not None:
            try:
                self._complete(inflight)
            except BaseException:
                if started is not None:
                    started.wait_quietly()
                raise
        return started

    # -- acting -------------------------------------------------------------------------------
    def run_batch(self, targets: Sequence[Target], flow: FlowReport) -> None:
        """Delete or expire one batch (or count what that would do, dry): blobs, then rows."""
        batch = self._begin(targets, flow)
        if batch is not None:
            self._complete(batch)

    def _begin(self, targets: Sequence[Target], flow: FlowReport) -> _Batch | None:
        """Steps 1 and 2 of a batch: mark its runs, start deleting their blobs. Dry: count, None."""
        if not targets:
            return None
        ids = [t.run_id for t in targets]
        steps = self._steps(ids)
        need_blobs = [t for t in targets if t.action is Action.EXPIRE or not t.blobs_gone]
        blob_sets = {t.run_id: self._blob_set(t, steps.get(t.run_id, ())) for t in need_blobs}
        deleting = [t for t in targets if t.action is Action.DELETE]
        expiring = [t for t in targets if t.action is Action.EXPIRE]
        if self.dry_run:
            flow.runs_removed += len(deleting)
            flow.runs_expired += len(expiring)
            flow.steps_removed += sum(len(steps.get(t.run_id, ())) for t in deleting)
            flow.events_removed += self._event_count([t.run_id for t in deleting])
            self._count_blobs(flow, blob_sets.values())
            self._count_rules(flow, targets)
            return None
        marked = self._mark([t.run_id for t in need_blobs])
        done_sets = [blob_sets[rid] for rid in blob_sets if rid in marked]
        if not done_sets:
            deletes: list[Future[None]] = []
        elif self.local:
            deletes = self._delete_local_sets(done_sets)
        else:
            if self._blob_thread is None:
                self._blob_thread = ThreadPoolExecutor(1, thread_name_prefix="rundossier-retention-blobs")
            deletes = [self._blob_thread.submit(self._delete_remote, done_sets)]
        return _Batch(flow, targets, deleting, expiring, marked, done_sets, deletes)

    def _complete(self, batch: _Batch) -> None:
        """Step 3 of a batch, once its blobs are gone: the rows; then the counts."""
        batch.wait()  # a storage error stops the sweep here; the rows stay marked
        deleted, steps_n, events_n, expired = self._finish(
            [t.run_id for t in batch.deleting if t.blobs_gone or t.run_id in batch.marked],
            [t.run_id for t in batch.expiring if t.run_id in batch.marked],
        )
        flow = batch.flow
        flow.runs_removed += len(deleted)
        flow.runs_expired += len(expired)
        flow.steps_removed += steps_n
        flow.events_removed += events_n
        self._count_blobs(flow, batch.blob_sets)
        self._count_rules(flow, [t for t in batch.targets if t.run_id in deleted or t.run_id in expired])

    def _steps(self, run_ids: Sequence[str]) -> dict[str, list[StepBlobs]]:
        out: dict[str, list[StepBlobs]] = {}
        for row in self.rows.step_blobs(run_ids):
            out.setdefault(row.run_id, []).append(row)
        return out

    def _event_count(self, run_ids: Sequence[str]) -> int:
        if not run_ids:
            return 0
        stmt = select(func.count()).select_from(EVENT).where(EVENT.c.run_id.in_(run_ids))
        with self.store.session() as s:
            return int(s.execute(stmt).scalar() or 0)

    def _blob_set(self, t: Target, steps: Iterable[StepBlobs]) -> BlobSet:
        bs = BlobSet(t.run_id, self._run_prefix(t.orchestrator, t.flow_id, t.run_id), self.local)
        bs.add_trace(self.blobs, t.trace_uri, t.trace_bytes)
        for _run_id, trace_uri, trace_bytes, log_uri, log_bytes in steps:
            bs.add_trace(self.blobs, trace_uri, trace_bytes)
            bs.add_log(self.blobs, log_uri, log_bytes)
        return bs

    def _run_prefix(self, orchestrator: str, flow_id: str, run_id: str) -> str:
        base = self._bases.get((orchestrator, flow_id))
        if base is None:
            base = self._bases[(orchestrator, flow_id)] = run_prefix(orchestrator, flow_id, "x")[:-2]
        # run ids are made of safe characters: their segment is the id itself
        return f"{base}/{run_id}" if is_run_id(run_id) else run_prefix(orchestrator, flow_id, run_id)

    def _count_blobs(self, flow: FlowReport, sets: Iterable[BlobSet]) -> None:
        for bs in sets:
            flow.blobs_removed += len(bs.keys)
            flow.bytes_removed += sum(bs.keys.values())
            flow.foreign_blobs += bs.foreign

    @staticmethod
    def _count_rules(flow: FlowReport, targets: Iterable[Target]) -> None:
        for t in targets:
            flow.by_rule[t.because.value] = flow.by_rule.get(t.because.value, 0) + 1

    def _mark(self, run_ids: Sequence[str]) -> set[str]:
        """Step 1: say the blobs are going (expired, no date yet) before touching them."""
        return self.rows.mark_expiring(run_ids)

    def _delete_local_sets(self, sets: Sequence[BlobSet]) -> list[Future[None]]:
        """Step 2 on local storage: each run's folder (parts, temp files and all), and any blob a
        row points at outside it, through `BlobStore.delete_runs`. Started on the delete threads;
        returns what to wait for.

        Deleting a file or a folder is latency-bound (journal, discard), not CPU-bound: a few
        concurrent deletes finish many times faster than one after another. Runs go in creation
        order (their ids sort so), a few neighbours per task: neighbours share inode-table and
        folder blocks, so a thread keeps to its own blocks instead of fighting the others for
        them; the threads go on to the next batch's tasks without waiting for this batch's last."""
        ordered = [bs.run_blobs() for bs in sorted(sets, key=lambda bs: bs.prefix)]
        n = LOCAL_DELETE_RUN
        return [self._submit(self.blobs.delete_runs, ordered[i : i + n]) for i in range(0, len(ordered), n)]

    def _delete_remote(self, sets: Sequence[BlobSet]) -> None:
        """Step 2 on object stores: every referenced key in bulk deletes, and any log-part folders."""
        self.blobs.delete_runs([bs.run_blobs() for bs in sets])

    def _finish(self, delete_ids: Sequence[str], expire_ids: Sequence[str]) -> tuple[set[str], int, int, set[str]]:
        """Step 3, in one short transaction: delete rows of removed runs; date finished expiries."""
        return self.rows.finish(delete_ids, expire_ids, datetime.now(UTC))


class BlobSet:
    """The blobs one run's rows point at: key -> recorded bytes, plus log-part folders.

    `by_prefix`: the run's folder is deleted whole (local storage), so keys inside it are only
    counted and need no per-key check; every other key is checked (and refused ones counted as
    foreign) before anything could delete it."""

    __slots__ = ("run_id", "prefix", "keys", "folders", "foreign", "_inside")

    def __init__(self, run_id: str, prefix: str, by_prefix: bool = False) -> None:
        self.run_id = run_id
        self.prefix = prefix
        self.keys: dict[str, int] = {}
        self.folders: set[str] = set()
        self.foreign = 0
        self._inside: str | None = prefix + "/" if by_prefix else None

    def add(self, blobs: BlobStore, uri: str | None, size: int | None) -> None:
        if not uri:
            return
        folder = uri.endswith("/")
        root = blobs.url
        inside = self._inside
        if inside is not None and uri.startswith(root + "/") and uri.startswith(inside, len(root) + 1):
            key = uri[len(root) + 1 :].rstrip("/")
        else:
            try:
                key = blobs.key_for(uri.rstrip("/") if folder else uri)
            except StorageError:
                self.foreign += 1
                return
        if folder:
            self.folders.add(key)
        self.keys[key] = max(self.keys.get(key, 0), int(size or 0))

    def run_blobs(self) -> RunBlobs:
        """What `BlobStore.delete_runs` deletes for this run."""
        return RunBlobs(self.prefix, [k for k in self.keys if k not in self.folders], self.folders)

    def add_log(self, blobs: BlobStore, uri: str | None, size: int | None) -> None:
        """A step's log, and the index stored beside it."""
        self.add(blobs, uri, size)
        index = log_index(uri) if uri else None
        if index is not None:
            self.add(blobs, index, 0)

    def add_trace(self, blobs: BlobStore, uri: str | None, size: int | None) -> None:
        """A trace's text form, and its structured form stored beside it."""
        self.add(blobs, uri, size)
        structured = structured_trace(uri) if uri else None
        if structured is not None:
            self.add(blobs, structured, 0)


__all__ = [
    "sweep",
    "preview",
    "load_rules",
    "flow_counts",
    "Sweeper",
    "Target",
    "BlobSet",
    "SweepReport",
    "FlowReport",
    "DEFAULT_BATCH",
    "MAX_BATCH",
]
