"""Reading back what was recorded: runs, steps, traces, logs, dossiers and failure groups.

`Reader` is the one way the HTTP API, the CLI and the UI read: built from the backends, it
answers with the models of `rundossier.read.models` (the API's response models). The functions
below it read one thing from a store and a blob store; a missing trace says why (never captured,
spooled, expired).
"""

from __future__ import annotations

import gzip
import json
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from sqlalchemy import select

from rundossier.core.dossier import Baseline, Dossier, build_dossier, merge_groups
from rundossier.core.dossier.events import KINDS
from rundossier.core.ids import run_id_floor
from rundossier.core.logs import LiveSnapshot, LogLine, MinLevel, at_least, decode_live, gunzip_stream
from rundossier.core.logs.index import LogIndex
from rundossier.core.masking import Masker
from rundossier.core.status import FAILURES, Status
from rundossier.errors import BlobCorrupt, BlobNotFound, StorageError, StoreError, TraceExpired, TraceNotFound
from rundossier.read import artifacts
from rundossier.read.models import (
    STEPS_OUT,
    ArtifactPage,
    DossierSteps,
    EventOut,
    FailureGroupOut,
    FailureGroups,
    FailureState,
    LogLineOut,
    LogPageOut,
    RunDetail,
    RunDossier,
    RunOut,
    RunPage,
    RunShow,
    StepOut,
    StreamName,
)
from rundossier.storage.backends import Backends
from rundossier.storage.blobs import (
    LOG_LIVE,
    BlobStore,
    blob_key,
    log_index,
    log_part_name,
    row_step,
    structured_trace,
)
from rundossier.storage.db import MAX_PAGE, Event, GroupQuery, Run, RunQuery, RunStore, Step
from rundossier.storage.db.models import RUN_TABLE as RUN
from rundossier.storage.db.models import STEP_TABLE as STEP

log = logging.getLogger("rundossier")


def reap_crashed(store: RunStore) -> int:
    """Mark runs and steps whose process died (lease expired, see `store.leases`) as crashed;
    returns how many. Readers call it before they read, so a killed run is shown as crashed, not
    running forever. A store that refuses the write (a read-only replica, a locked database) is
    read as it is: the next reader tries again."""
    try:
        reaped = store.reap_expired()
    except StoreError as exc:
        log.debug("rundossier could not mark crashed runs: %s", exc)
        return 0
    return len(reaped.runs) + len(reaped.steps)


@dataclass(frozen=True)
class TraceText:
    run_id: str
    step_id: str | None
    try_number: int | None
    text: str

    @property
    def filename(self) -> str:
        return f"{self.run_id}_trace.txt"


SPOOLED = "the trace is waiting in the local spool of the host that recorded it; run `rundossier flush` there"


def _run_trace_uri(store: RunStore, run_id: str) -> tuple[Run, str]:
    """The run and its root-cause trace's URI, or the error saying why there is none to read."""
    run = store.get_run(run_id)
    if not run.trace_uri:
        raise TraceNotFound(_no_trace_reason(run.status, run.error_type, run.error_message, "run"))
    _check_expired(run)
    if run.spooled:
        raise TraceNotFound(SPOOLED)
    return run, run.trace_uri


def _step_trace_uri(store: RunStore, run_id: str, step_id: str, try_number: int | None) -> tuple[Run, Step, str]:
    """The run, the step try (latest unless given) and its trace's URI, or why there is none."""
    run = store.get_run(run_id)
    step = store.get_step(run_id, step_id, try_number)
    if step is None:
        raise TraceNotFound(f"run {run_id} has no step {step_id!r}" + (f" try {try_number}" if try_number else ""))
    if not step.trace_uri:
        raise TraceNotFound(_no_trace_reason(step.status, step.error_type, step.error_message, "step"))
    _check_expired(run)
    if step.spooled:
        raise TraceNotFound(SPOOLED)
    return run, step, step.trace_uri


def run_trace(store: RunStore, blobs: BlobStore, run_id: str) -> TraceText:
    """The root-cause trace of a run (RunNotFound, TraceNotFound, TraceExpired otherwise)."""
    run, uri = _run_trace_uri(store, run_id)
    return TraceText(run.run_id, run.root_step_id, None, _read_text(blobs, uri, run))


def step_trace(
    store: RunStore, blobs: BlobStore, run_id: str, step_id: str, try_number: int | None = None
) -> TraceText:
    run, step, uri = _step_trace_uri(store, run_id, step_id, try_number)
    return TraceText(run_id, step_id, step.try_number, _read_text(blobs, uri, run))


def run_trace_doc(store: RunStore, blobs: BlobStore, run_id: str) -> dict[str, Any]:
    """The structured form (trace.json) of the run's root-cause trace, for the UI's failure panel."""
    return _read_doc(blobs, _run_trace_uri(store, run_id)[1])


def step_trace_doc(
    store: RunStore, blobs: BlobStore, run_id: str, step_id: str, try_number: int | None = None
) -> dict[str, Any]:
    return _read_doc(blobs, _step_trace_uri(store, run_id, step_id, try_number)[2])


def _read_doc(blobs: BlobStore, text_uri: str) -> dict[str, Any]:
    uri = structured_trace(text_uri)
    if uri is None:
        raise TraceNotFound("this trace has no structured form")
    try:
        raw = blobs.get(uri)
    except BlobNotFound:
        raise TraceNotFound(f"the structured trace {uri} is missing from storage") from None
    text = _gunzip_text(raw, uri, "structured trace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _corrupt(uri, "structured trace", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _corrupt(uri, "structured trace", f"a JSON {type(data).__name__}, not a trace document")
    return data


def _gunzip_text(data: bytes, uri: str, what: str) -> str:
    """The text of a gzipped blob; BlobCorrupt naming it when the bytes are not a whole gzip stream."""
    try:
        return gzip.decompress(data).decode("utf-8", errors="replace")
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a truncated stream, EOFError
        raise _corrupt(uri, what, f"not a whole gzip stream ({type(exc).__name__}: {exc})") from None


def _corrupt(uri: str, what: str, detail: str) -> BlobCorrupt:
    return BlobCorrupt(
        f"the {what} blob {uri} is damaged: {detail}; it was changed or cut after it was written "
        "(restore it from a backup of the storage, or ignore it: the run's rows are intact)"
    )


def step_log_lines(store: RunStore, blobs: BlobStore, step: Step) -> Iterator[LogLine]:
    """Stream a step's stored log lines from storage (bounded memory)."""
    if not step.log_uri:
        return iter(())
    return step_log_lines_stored(blobs, step.log_uri)


def step_log_lines_stored(blobs: BlobStore, uri: str) -> Iterator[LogLine]:
    if uri.endswith("/"):  # a log left in parts
        return _parts(blobs, uri)
    return _one(blobs, uri)


@dataclass(frozen=True)
class StepLogSource:
    """Where a step's log lines come from, and what to tell the reader about them.

    `available` is False when there are no lines to show (then `reason` says why); `live` is
    True while the step runs (its lines come from the worker's snapshot and grow); `snapshot_ts`
    is when that snapshot was taken.
    """

    available: bool
    reason: str | None
    live: bool = False
    snapshot_ts: float | None = None
    _lines: Callable[[], Iterator[LogLine]] | None = None
    #: a stored whole log (not parts, not live): pages may be read through its index
    stored_uri: str | None = None

    def lines(self) -> Iterator[LogLine]:
        return self._lines() if self._lines is not None else iter(())


RUNNING = (Status.RUNNING.value, Status.QUEUED.value)


def step_log_source(blobs: BlobStore, run: Run, step: Step) -> StepLogSource:
    """The log of one step try: the stored log once it ended; while it runs, the spilled parts plus
    the latest live snapshot (follow mode); honest reasons when there is nothing to show."""
    if run.blobs_expired:
        when = run.blobs_expired_at.date().isoformat() if run.blobs_expired_at else "an earlier sweep"
        return StepLogSource(False, f"log expired by retention on {when}")
    if step.log_uri:
        if step.spooled:
            return StepLogSource(False, "the log is waiting in the local spool of the host that recorded it")
        uri = step.log_uri
        return StepLogSource(
            True, None, _lines=lambda: step_log_lines_stored(blobs, uri), stored_uri=None if uri.endswith("/") else uri
        )
    running = step.status in RUNNING
    snapshot, parts = _live_state(blobs, run, step)
    if snapshot is None and not parts:
        if running:
            return StepLogSource(False, "the step is running and has not published any output yet", live=True)
        return StepLogSource(False, "this step wrote no log lines")

    def lines() -> Iterator[LogLine]:
        return _live_lines(blobs, parts, snapshot)

    ts = snapshot.ts if snapshot is not None else None
    if running:
        return StepLogSource(True, None, live=True, snapshot_ts=ts, _lines=lines)
    reason = (
        f"the step ended ({step.status}) without storing its log, as when its process is killed; "
        "these are the lines published while it ran"
    )
    return StepLogSource(True, reason, snapshot_ts=ts, _lines=lines)


def _live_state(blobs: BlobStore, run: Run, step: Step) -> tuple[LiveSnapshot | None, list[str]]:
    """The step's latest live snapshot (or None) and the URIs of the parts that precede it."""
    key = partial(blob_key, run.orchestrator, run.flow_id, run.run_id, row_step(step.step_id), step.try_number)
    return _live_state_in(blobs, key)


def _live_state_in(blobs: BlobStore, key: Callable[[str], str]) -> tuple[LiveSnapshot | None, list[str]]:
    snapshot: LiveSnapshot | None = None
    try:
        snapshot = decode_live(blobs.get(blobs.uri_for(key(LOG_LIVE))))
    except (BlobNotFound, ValueError):
        snapshot = None
    if snapshot is not None:
        return snapshot, [blobs.uri_for(key(log_part_name(n))) for n in range(1, snapshot.parts + 1)]
    prefix = key(log_part_name(1)).rsplit("/", 1)[0]
    try:
        found = sorted(blobs.iter_blobs(prefix), key=lambda b: b.key)
    except StorageError:
        found = []
    return None, [b.uri for b in found]


def _live_lines(blobs: BlobStore, parts: list[str], snapshot: LiveSnapshot | None) -> Iterator[LogLine]:
    for uri in parts:
        try:
            yield from _one(blobs, uri)
        except BlobNotFound:  # the step just ended and joined its parts: the next read gets the whole log
            return
    if snapshot is not None:
        yield from snapshot.lines


@dataclass
class LogPage:
    """One page of a step's log, after the stream and level filters; `matches` are line numbers of `q`.
    `exact` is False when the scan stopped once the page was full: `total` and `counts` are then
    what was seen so far (lower bounds)."""

    lines: list[LogLineOut]
    page: int
    page_size: int
    total: int
    counts: dict[str, int]
    matches: list[int]
    matches_truncated: bool
    exact: bool = True


MAX_MATCHES = 10_000
#: a filtered page goes on counting this many lines after it is full, then stops (totals become
#: lower bounds): a page of a million-line log costs about this much, a small log stays exact
COUNT_AHEAD = 20_000


def _out(n: int, line: LogLine) -> LogLineOut:
    return LogLineOut(n=n, ts=line.ts, stream=line.stream, level=line.level, message=line.message)


def log_page(
    lines: Iterable[LogLine],
    *,
    stream: str = "all",
    page: int = 1,
    page_size: int = 500,
    q: str | None = None,
    level: MinLevel | None = None,
    last: bool = False,
    count_ahead: int | None = None,
) -> LogPage:
    """Filter by level (that level or worse) and stream, cut one page, and find every line
    containing `q` (case-insensitive).

    Streams once through the log: memory holds one page and the match positions, whatever the
    log's size. Line numbers start at 1 and count lines after the filters; `counts` are the
    lines of each stream that pass the level filter. `last`: the last page, whatever its number
    (the whole log is read, the latest page kept). `count_ahead` (ignored with `q` or `last`,
    which need every line): once the page is full, read at most this many more lines to count
    them, then stop and say the totals are lower bounds (`exact` False).
    """
    start = (page - 1) * page_size
    out: list[LogLineOut] = []
    tail: deque[tuple[int, LogLine]] = deque(maxlen=page_size)
    counts = {"stdout": 0, "stderr": 0}
    matches: list[int] = []
    needle = q.lower() if q else None
    ahead = count_ahead if needle is None and not last else None
    exact = True
    n = read = 0
    full_at: int | None = None  # lines read when the page became full
    for line in lines:
        read += 1
        if ahead is not None and full_at is not None and read - full_at > ahead:
            exact = False
            break
        if level is not None and not at_least(line, level):
            continue
        counts[line.stream] = counts.get(line.stream, 0) + 1
        if stream != "all" and line.stream != stream:
            continue
        n += 1
        if needle is not None and needle in line.message.lower() and len(matches) < MAX_MATCHES:
            matches.append(n)
        if last:
            tail.append((n, line))
        elif start < n <= start + page_size:
            out.append(_out(n, line))
            if n == start + page_size:
                full_at = read
    if last:
        page = max(1, -(-n // page_size))
        out = [_out(i, line) for i, line in tail if i > (page - 1) * page_size]
    return LogPage(out, page, page_size, n, counts, matches, len(matches) >= MAX_MATCHES, exact)


def read_log_index(blobs: BlobStore, log_uri: str) -> LogIndex | None:
    """The index stored beside a whole log, or None (none stored, unreadable, or not this log's)."""
    uri = log_index(log_uri)
    if uri is None:
        return None
    try:
        index = LogIndex.from_json(blobs.get(uri))
    except BlobNotFound:
        return None  # a log recorded before indexes existed
    except (ValueError, StorageError) as exc:
        log.debug("rundossier reads %s without its index: %s", log_uri, exc)
        return None
    return index


def indexed_lines(blobs: BlobStore, log_uri: str, index: LogIndex, first: int, count: int) -> list[LogLine] | None:
    """Lines `[first, first + count)` (0-based) of a stored log, reading only the members that
    hold them; None when the index does not fit the blob (then scan)."""
    skip, start, end = index.span(first, count)
    try:
        with blobs.open_read(log_uri, block_size=end - start) as f:
            f.seek(start)
            if f.read(2) != b"\x1f\x8b":
                log.debug("rundossier: the index of %s does not point at a gzip member; scanning", log_uri)
                return None
            f.seek(start)
            return list(islice(gunzip_stream(f), skip, skip + count))
    except (BlobNotFound, StorageError, OSError) as exc:
        log.debug("rundossier reads %s without its index: %s", log_uri, exc)
        return None


def _one(blobs: BlobStore, uri: str) -> Iterator[LogLine]:
    with blobs.open_read(uri) as f:
        yield from gunzip_stream(f)


def _parts(blobs: BlobStore, uri: str) -> Iterator[LogLine]:
    prefix = blobs.key_for(uri)
    for info in sorted(blobs.iter_blobs(prefix), key=lambda b: b.key):
        yield from _one(blobs, info.uri)


def _check_expired(run: Run) -> None:
    if run.blobs_expired:
        when = run.blobs_expired_at.date().isoformat() if run.blobs_expired_at else "an earlier sweep"
        raise TraceExpired(f"trace expired by retention on {when}")


def _read_text(blobs: BlobStore, uri: str, run: Run) -> str:
    try:
        data = blobs.get(uri)
    except BlobNotFound:
        raise TraceNotFound(f"the trace blob {uri} is missing from storage") from None
    return _gunzip_text(data, uri, "trace")


def _no_trace_reason(status: str, error_type: str | None, message: str | None, what: str) -> str:
    if status in ("success", "running", "queued", "paused", "skipped"):
        return f"this {what} has no trace: it is {status}"
    if error_type is None and message:
        return f"no trace captured: the failure was reported as a message only ({message[:200]})"
    if status == "crashed":
        return "no trace captured: the process was killed or died before it could report"
    return f"no trace captured for this {what}"


def baseline_for(store: RunStore, run: Run) -> Baseline | None:
    """The flow's last successful run before `run` (same orchestrator), with its steps and events."""
    if run.status not in FAILURES:
        return None
    query = RunQuery(flow_id=run.flow_id, status=("success",), orchestrator=run.orchestrator)
    before = store.list_runs(query, limit=1, cursor=run.run_id).items
    if not before:
        return None
    ok = before[0]
    inputs = _inputs(store, ok.run_id, run.root_step_id) if run.root_step_id else []
    return Baseline(ok, store.list_step_records(ok.run_id), store.list_event_records(ok.run_id, KINDS), inputs)


def _inputs(store: RunStore, run_id: str, step_id: str) -> list[Any]:
    """The first page of a step's input artifacts (a dossier names at most a few)."""
    return list(store.list_artifacts(run_id, step_id=step_id, role="input", limit=MAX_PAGE)[0])


def run_dossier(
    store: RunStore, run: Run, *, now: datetime | None = None, steps: Sequence[Any] | None = None
) -> Dossier:
    """The run's dossier, compared with the flow's last successful run (read here, built purely).

    Steps and events are read as light records, and only events of the dossier's vocabulary.
    `steps`: the run's step rows when the caller has them already (the run's detail reads them once).
    """
    if steps is None:
        steps = store.list_step_records(run.run_id)
    events = store.list_event_records(run.run_id, KINDS)
    inputs = _inputs(store, run.run_id, run.root_step_id) if run.root_step_id and run.status in FAILURES else []
    return build_dossier(
        run, steps, events, baseline=baseline_for(store, run), now=now or datetime.now(UTC), inputs=inputs
    )


#: the most subflow runs a run's page lists
MAX_CHILDREN = 200
#: how long after its parent's end a child's row may still be first written (a late hook, a spool flush)
CHILD_GRACE = timedelta(hours=1)


def child_runs(store: RunStore, run: Run, *, limit: int = MAX_CHILDREN) -> list[Run]:
    """The runs whose parent is `run` (Prefect subflow runs), oldest first, at most `limit`.

    A child's row is first written while its parent runs, so only run ids from the parent's own to
    its end (plus a grace) are read: a range of the primary key (run ids sort by creation time),
    not a scan of every run for a column without an index.
    """
    c = RUN.c
    stmt = select(Run).where(c.run_id >= run.run_id, c.parent_run_id == run.run_id)
    if run.finished_at is not None:
        stmt = stmt.where(c.run_id < run_id_floor(run.finished_at + CHILD_GRACE))
    with store.session() as s:
        rows = [r[0] for r in s.execute(stmt.order_by(c.run_id).limit(limit)).all()]
        for r in rows:
            s.expunge(r)
    return rows


class Reader:
    """Everything the API, the CLI and the UI read, as response models, from one set of backends.

    Access control is the caller's: methods that list take the flows the caller may read
    (`flows`, None for all). `base` is where the API is mounted ("" standalone, "/rundossier"
    inside Airflow), so the links in errors stay right.
    """

    #: how often reads look for runs whose process died (a reap is a write: not on every request)
    REAP_EVERY_S = 5.0

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self._last_reap = float("-inf")
        self._masker: Masker | None = None

    @property
    def store(self) -> RunStore:
        return self.backends.store

    @property
    def blobs(self) -> BlobStore:
        return self.backends.blobs

    def reap_due(self) -> None:
        """Mark runs whose process died as crashed (at most every REAP_EVERY_S) before reading."""
        now = time.monotonic()
        if now - self._last_reap < self.REAP_EVERY_S:
            return
        self._last_reap = now
        reap_crashed(self.store)

    # -- runs --------------------------------------------------------------------------------------

    def runs(self, query: RunQuery, *, limit: int, cursor: str | None = None, base: str = "") -> RunPage:
        self.reap_due()
        page = self.store.list_runs(query, limit=limit, cursor=cursor)
        return RunPage.model_construct(items=[RunOut.of(r, base) for r in page.items], next_cursor=page.next_cursor)

    def flows(self) -> list[str]:
        return self.store.list_flows()

    def find_run(self, orchestrator: str, flow_id: str, run_key: str) -> Run | None:
        return self.store.find_run(orchestrator, flow_id, run_key)

    def run(self, run_id: str) -> Run:
        """The run's row (RunNotFound otherwise)."""
        self.reap_due()
        return self.store.get_run(run_id)

    def run_detail(
        self,
        run: Run,
        *,
        flows: frozenset[str] | set[str] | None = None,
        base: str = "",
        dossier_steps: DossierSteps = "all",
    ) -> RunDetail:
        """The run with its steps, events, dossier and the subflow runs in `flows`. `dossier_steps`
        "failed" keeps the dossier's per-step timing of the failed step only (what the run page
        shows: a 1,000-step run's detail is a third of the size)."""
        children = [c for c in child_runs(self.store, run) if flows is None or c.flow_id in flows]
        rows = self._step_rows(run.run_id)  # read once: the steps' list and the dossier
        dossier = self.dossier(run, flows=flows, steps=rows)
        if dossier is not None and dossier_steps == "failed":
            d = dossier.dossier
            kept = replace(d, steps=tuple(t for t in d.steps if t.step_id == d.failed_step))
            dossier = RunDossier.model_construct(dossier=kept, group=dossier.group)
        return RunDetail.model_construct(
            **RunOut.fields_of(run, base),
            steps=STEPS_OUT.validate_python([StepOut.data_of(r) for r in rows]),
            events=[EventOut.of(e) for e in self.events(run.run_id)],
            dossier=dossier,
            children=[RunOut.of(c, base) for c in children],
            trace_viewer_url=self.backends.settings.trace_viewer_url(run.trace_id),
        )

    def run_show(self, run: Run, dossier: Dossier | None) -> RunShow:
        """The run with its steps, events and `dossier` (what `rundossier show --json` prints)."""
        return RunShow.model_construct(**self._with_steps(run), dossier=dossier)

    def steps(self, run_id: str) -> list[Step]:
        return self.store.list_steps(run_id)

    def events(self, run_id: str) -> list[Event]:
        return self.store.list_events(run_id)

    def _with_steps(self, run: Run, base: str = "") -> dict[str, Any]:
        return {
            **RunOut.fields_of(run, base),
            "steps": STEPS_OUT.validate_python([StepOut.data_of(r) for r in self._step_rows(run.run_id)]),
            "events": [EventOut.of(e) for e in self.events(run.run_id)],
        }

    def _step_rows(self, run_id: str) -> Sequence[Any]:
        """Every try of a run's steps as plain rows (no ORM objects), in the order `list_steps`
        gives: for a 1,000-step run what the ORM objects cost (~0.5 s) becomes a few tens of ms."""
        t = STEP
        stmt = select(t).where(t.c.run_id == run_id).order_by(t.c.started_at, t.c.step_id, t.c.try_number)
        with self.store.session() as s:
            return s.execute(stmt).all()

    def run_dossier(self, run: Run) -> Dossier:
        """The run's dossier alone (errors pass through)."""
        return run_dossier(self.store, run)

    def dossier(
        self, run: Run, *, flows: frozenset[str] | set[str] | None = None, steps: Sequence[Any] | None = None
    ) -> RunDossier | None:
        """The run's dossier and its failure group (counted in `flows`). A fault here is logged and
        leaves the dossier out: it never hides the run."""
        try:
            dossier = run_dossier(self.store, run, steps=steps)
            group = None
            if run.fingerprint:
                found = self.failure_groups(GroupQuery(fingerprint=run.fingerprint, flows=_sorted(flows)))
                group = found.items[0] if found.items else None
            return RunDossier.model_construct(dossier=dossier, group=group)
        except Exception as exc:  # noqa: BLE001 - the run must show even if its dossier cannot be built
            log.warning("rundossier could not build the dossier of %s: %s: %s", run.run_id, type(exc).__name__, exc)
            return None

    def runs_updated_since(self, since: datetime) -> list[Run]:
        self.reap_due()
        return self.store.runs_updated_since(since)

    # -- failures ----------------------------------------------------------------------------------

    def failure_groups(self, query: GroupQuery) -> FailureGroups:
        page = self.store.failure_groups(query)
        groups = merge_groups(page.order, page.counts, page.rows)
        return FailureGroups.model_construct(
            items=[
                FailureGroupOut.of(
                    g, trend=page.trends.get(g.fingerprint), resolution=page.resolutions.get(g.fingerprint)
                )
                for g in groups
            ],
            counted_since=f"{page.counted_since}T00:00:00Z" if page.counted_since else None,
            trend_from=page.trend_from or None,
            trend_days=page.trend_days,
        )

    def failure_state(self, fingerprint: str, *, resolve: bool) -> FailureState | None:
        """Mark the group resolved (`resolve`) or reopen it; None when no failure has that fingerprint."""
        if resolve:
            at = self.store.resolve_failure(fingerprint)
            if at is None:
                return None
            return FailureState(fingerprint=fingerprint, state="resolved", resolved_at=at)
        if self.store.reopen_failure(fingerprint) is None:
            return None
        return FailureState(fingerprint=fingerprint, state="open", resolved_at=None)

    # -- traces and logs ---------------------------------------------------------------------------

    def run_trace(self, run_id: str) -> TraceText:
        return run_trace(self.store, self.blobs, run_id)

    def step_trace(self, run_id: str, step_id: str, try_number: int | None = None) -> TraceText:
        return step_trace(self.store, self.blobs, run_id, step_id, try_number)

    def run_trace_doc(self, run_id: str) -> dict[str, Any]:
        return run_trace_doc(self.store, self.blobs, run_id)

    def step_trace_doc(self, run_id: str, step_id: str, try_number: int | None = None) -> dict[str, Any]:
        return step_trace_doc(self.store, self.blobs, run_id, step_id, try_number)

    def step(self, run_id: str, step_id: str, try_number: int | None = None) -> Step:
        """One try of a step (the latest unless given); TraceNotFound naming it otherwise."""
        step = self.store.get_step(run_id, step_id, try_number)
        if step is None:
            raise TraceNotFound(f"run {run_id} has no step {step_id!r}" + (f" try {try_number}" if try_number else ""))
        return step

    def log_source(self, run: Run, step: Step) -> StepLogSource:
        return step_log_source(self.blobs, run, step)

    def log_page(
        self,
        run: Run,
        step: Step,
        *,
        stream: StreamName = "all",
        page: int = 1,
        page_size: int = 500,
        q: str | None = None,
        level: MinLevel | None = None,
        last: bool = False,
    ) -> LogPageOut:
        """One page: through the log's index when it has one and no filter applies (reads only
        that page's members), else by streaming the log (stopping once the page is full unless
        `q` or `last` needs every line)."""
        source = self.log_source(run, step)
        result = None
        if source.stored_uri and stream == "all" and level is None and not q:
            result = self._indexed_page(source.stored_uri, page, page_size, last)
        if result is None:
            result = log_page(
                source.lines(),
                stream=stream,
                page=page,
                page_size=page_size,
                q=q or None,
                level=level,
                last=last,
                # a filtered page stops soon after it is full; an unindexed log's plain pages keep
                # their exact totals (the old full scan)
                count_ahead=COUNT_AHEAD if not source.live and (level is not None or stream != "all") else None,
            )
        snapshot_at = None
        if source.snapshot_ts is not None:
            snapshot_at = datetime.fromtimestamp(source.snapshot_ts, UTC).isoformat().replace("+00:00", "Z")
        return LogPageOut.model_construct(
            run_id=run.run_id,
            step_id=step.step_id,
            try_number=step.try_number,
            status=step.status,
            available=source.available,
            reason=source.reason,
            live=source.live,
            snapshot_at=snapshot_at,
            stream=stream,
            page=result.page,
            page_size=result.page_size,
            total=result.total,
            pages=max(1, -(-result.total // result.page_size)) + (0 if result.exact else 1),
            total_exact=result.exact,
            counts=result.counts
            if level is not None
            else {
                "stdout": step.log_lines_stdout,
                "stderr": step.log_lines_stderr,
                **(result.counts if result.exact else {}),
            },
            level=level,
            lines=result.lines,
            q=q,
            matches=result.matches,
            matches_truncated=result.matches_truncated,
        )

    def _indexed_page(self, uri: str, page: int, page_size: int, last: bool) -> LogPage | None:
        index = read_log_index(self.blobs, uri)
        if index is None:
            return None
        if last:
            page = max(1, -(-index.lines // page_size))
        first = min((page - 1) * page_size, index.lines)
        lines = indexed_lines(self.blobs, uri, index, first, min(page_size, index.lines - first))
        if lines is None:
            return None
        out = [_out(first + 1 + i, line) for i, line in enumerate(lines)]
        return LogPage(out, page, page_size, index.lines, {}, [], False)

    # -- artifacts ---------------------------------------------------------------------------------

    def run_artifacts(
        self,
        run: Run,
        *,
        limit: int,
        cursor: str | None = None,
        step_id: str | None = None,
        role: str | None = None,
        flows: frozenset[str] | set[str] | None = None,
    ) -> ArtifactPage:
        """A run's artifacts in recording order, paged; inputs name their producer (in `flows`)."""
        return artifacts.run_artifacts(
            self.store, run, limit=limit, cursor=cursor, step_id=step_id, role=role, flows=flows
        )

    def uri_artifacts(
        self, uri: str, *, limit: int, cursor: str | None = None, flows: frozenset[str] | set[str] | None = None
    ) -> ArtifactPage:
        """Who wrote and who read `uri` (in `flows`), newest first, paged."""
        if self._masker is None:
            self._masker = Masker(self.backends.settings.mask_patterns)
        return artifacts.uri_artifacts(self.store, self._masker, uri, limit=limit, cursor=cursor, flows=flows)


def _sorted(flows: frozenset[str] | set[str] | None) -> tuple[str, ...] | None:
    return tuple(sorted(flows)) if flows is not None else None


__all__ = [
    "Reader",
    "reap_crashed",
    "MAX_CHILDREN",
    "child_runs",
    "TraceText",
    "LogPage",
    "StepLogSource",
    "run_trace",
    "step_trace",
    "run_trace_doc",
    "step_trace_doc",
    "step_log_lines",
    "step_log_source",
    "log_page",
    "read_log_index",
    "indexed_lines",
    "run_dossier",
    "baseline_for",
]
