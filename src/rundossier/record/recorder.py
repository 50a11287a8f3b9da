"""The recorder: the one API every integration calls to record runs, steps, failures and logs.

    rec = Recorder.from_env()
    with rec.run(flow_id="nightly_etl") as run:
        with run.step("extract"):
            ...

Integrations use the lower-level calls (`start_run`, `start_step`, `StepHandle.finish`,
`finish_run`, `record_failure`). Every public call is guarded: a rundossier fault (storage down,
database locked, a bug here) is logged as a warning on the `rundossier` logger and never changes
the host's outcome or hides its exception. Every row and blob goes through one `Writer`: what
could not be written waits in the spool, and a task waits at most one write budget in all.
Running runs and steps hold a lease the `Heartbeat` renews: if this process dies, readers show
them as crashed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from rundossier.core.artifacts import check_role, normalize_uri
from rundossier.core.dossier import events as ev
from rundossier.core.dossier.classify import ErrorNode, error_class
from rundossier.core.failure import build_failure, chain_summary
from rundossier.core.ids import RUN_STEP, new_run_id
from rundossier.core.masking import Masker
from rundossier.core.status import Status
from rundossier.core.trace import TraceHeader, exceptions_in
from rundossier.record.capture import capture
from rundossier.record.guard import guarded
from rundossier.record.heartbeat import Heartbeat
from rundossier.record.livelog import LIVE_LOG_EVERY_S, LivePublisher
from rundossier.record.steplog import StepLog
from rundossier.record.writer import Budget, FlushReport, Writer, WriteResult
from rundossier.settings import Settings
from rundossier.storage.artifacts import ArtifactInspector, ArtifactStat
from rundossier.storage.backends import Backends
from rundossier.storage.blobs import (
    LOG,
    LOG_INDEX,
    LOG_LIVE,
    TRACE_JSON,
    TRACE_TEXT,
    BlobStore,
    blob_key,
    log_part_name,
    log_parts_prefix,
    row_step,
)
from rundossier.storage.blobs.blobstore import LOCAL_PROTOCOLS
from rundossier.storage.db import RunStore, WriteBatch
from rundossier.storage.spool import Spool

if TYPE_CHECKING:
    from rundossier.record.otel import Failure, Spans

log = logging.getLogger("rundossier")
T = TypeVar("T")

#: PostgreSQL connections one recorder keeps open, and the extra ones it may open at busy moments
#: (a task's write, the lease heartbeat and the spool's delivery at once): 3 per process at most
RECORDER_POOL = (1, 2)
#: how often (at most) a successful write looks at the spool, and how long a flush may take then
SPOOL_CHECK_EVERY_S = 30.0
SPOOL_FLUSH_BUDGET_S = 2.0
#: how long `flush` waits for items another process is delivering
FLUSH_WAIT_S = 30.0
#: artifacts a step holds before they are written (a step recording 100,000 of them keeps at
#: most this many in memory)
ARTIFACT_BATCH = 500

#: the step try being recorded where the code runs (`rundossier.artifact` records on it)
_current_step: ContextVar[StepHandle | None] = ContextVar("rundossier_current_step", default=None)


def _now() -> datetime:
    return datetime.now(UTC)


def _from_ts(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def _status_for(exc: BaseException | None) -> Status:
    """What an exception leaving a `with` block means for the run or step."""
    if exc is None:
        return Status.SUCCESS
    if isinstance(exc, KeyboardInterrupt):
        return Status.CANCELLED
    if isinstance(exc, SystemExit):
        return Status.SUCCESS if exc.code in (None, 0) else Status.FAILED
    if isinstance(exc, GeneratorExit):
        return Status.CANCELLED
    return Status.FAILED


@dataclass
class RunHandle:
    """A run being recorded. `run_id` is ours; `run_key` is the orchestrator's own id."""

    recorder: Recorder
    run_id: str
    orchestrator: str
    flow_id: str
    run_key: str
    attempt: int | None = 1
    started_at: datetime | None = None
    host: str | None = None
    failed_step: StepHandle | None = None
    #: how long this run's own writes may still wait on a backend that fails (see `Writer`)
    budget: Budget = field(default_factory=lambda: Budget(0.0))
    #: step tries that failed, with the exception each recorded (the run's error may wrap one)
    _failed: list[tuple[StepHandle, BaseException]] = field(default_factory=list)
    #: RUNDOSSIER_OTEL on: the span context of the run's span (its steps' spans are its children)
    span_context: Any = None

    def step(
        self, step_id: str, *, try_number: int = 1, upstream: Sequence[str] | None = None, capture_logs: bool = True
    ) -> StepContext:
        """Context manager recording one try of one step, with its logs."""
        return StepContext(self, step_id, try_number=try_number, upstream=upstream, capture_logs=capture_logs)

    def start_step(self, step_id: str, **kwargs: Any) -> StepHandle:
        return self.recorder.start_step(self, step_id, **kwargs)

    def finish(self, status: Status | str, error: BaseException | str | None = None, **kwargs: Any) -> None:
        self.recorder.finish_run(self, status, error, **kwargs)


@dataclass
class StepHandle:
    """One try of one step being recorded; `log` collects its lines."""

    run: RunHandle
    step_id: str
    try_number: int
    log: StepLog
    started_at: datetime
    task_id: str | None = None
    map_index: int | None = None
    host: str | None = None
    finished: bool = False
    error: BaseException | str | None = None
    trace_uri: str | None = None
    #: False when `started_at` is a guess (a failure reported by another process): no duration then
    start_known: bool = True
    budget: Budget = field(default_factory=lambda: Budget(0.0))
    #: artifacts recorded and not written yet (at most ARTIFACT_BATCH)
    pending_artifacts: list[dict[str, Any]] = field(default_factory=list)
    artifacts_lock: threading.Lock = field(default_factory=threading.Lock)
    #: RUNDOSSIER_OTEL on: the try's live span, and what its failure shows in a span
    span: Any = None
    span_failure: Failure | None = None

    def finish(
        self,
        status: Status | str,
        error: BaseException | str | None = None,
        *,
        reason: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        self.run.recorder.finish_step(self, status, error, reason=reason, finished_at=finished_at)

    def artifact(
        self,
        uri: str,
        role: str = "output",
        *,
        size: int | None = None,
        checksum: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Record that this try read (`role="input"`) or wrote (`"output"`) `uri`.

        Size and checksum are looked up with fsspec when not given; an input that does not exist
        is recorded as missing (never an error of the task). Never raises."""
        self.run.recorder.record_artifact(self, uri, role, size=size, checksum=checksum, kind=kind)


class Recorder:
    """Records runs into the run history store and traces/logs into blob storage."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        orchestrator: str = "python",
        store: RunStore | None = None,
        blobs: BlobStore | None = None,
        redactors: Iterable[Callable[[str], str]] = (),
        host: str | None = None,
        warn: Callable[[str], None] | None = None,
        live_log_interval: float | None = LIVE_LOG_EVERY_S,
    ) -> None:
        """`live_log_interval`: seconds between snapshots of a running step's log for follow mode
        (None turns them off)."""
        self.settings = settings or Settings.resolve()
        self.orchestrator = orchestrator
        self.host = host or socket.gethostname()
        self.masker = Masker(self.settings.mask_patterns, redactors)
        self.spool = Spool(self.settings.spool_dir)
        self._backends = Backends(self.settings, store, blobs, timeout=self.settings.write_timeout, pool=RECORDER_POOL)
        self._warn = warn or (lambda msg: log.warning(msg))
        self._last_spool_check = 0.0
        self._cap: Any = None  # the write-time retention cap, when RUNDOSSIER_RETENTION_CAP is on
        self.writer = Writer(
            lambda: self.blobs,
            lambda: self.store,
            self.spool,
            budget_s=self.settings.write_budget,
            warn=self._warn,
            local_store=store.dialect == "sqlite" if store is not None else self.settings.db_url.startswith("sqlite"),
            local_blobs=blobs.is_local
            if blobs is not None
            else self.settings.storage_url.partition("://")[0].lower() in (*LOCAL_PROTOCOLS, "memory"),
            on_rename=self._rename_run,
        )
        #: the runs this process records, by id (a run whose start waited in the spool may be renamed)
        self._runs: weakref.WeakValueDictionary[str, RunHandle] = weakref.WeakValueDictionary()
        self.heartbeat = Heartbeat(self._renew_leases, interval=self.settings.heartbeat)
        self._inspector: ArtifactInspector | None = None
        self.spans: Spans | None = None
        if self.settings.otel:
            from rundossier.record.otel import Spans

            self.spans = Spans(self._warn)
        self._live = (
            LivePublisher(
                self._put_live,
                lambda key: self.blobs.delete([self.blobs.uri_for(key)]),
                interval=live_log_interval,
                warn=self._warn,
            )
            if live_log_interval
            else None
        )

    @classmethod
    def from_env(cls, **settings: Any) -> Recorder:
        """A recorder on RUNDOSSIER_* settings; keyword arguments override them."""
        return cls(Settings.resolve(explicit=settings))

    # -- lazily built backends ---------------------------------------------------------------
    @property
    def store(self) -> RunStore:
        return self._backends.store

    @property
    def blobs(self) -> BlobStore:
        return self._backends.blobs

    @property
    def inspector(self) -> ArtifactInspector:
        """Looks artifacts up (size, checksum) when they are recorded."""
        if self._inspector is None:
            self._inspector = ArtifactInspector(
                hash_max_bytes=self.settings.artifact_hash_max_bytes,
                timeout=self.settings.write_budget,
                storage_url=self.settings.storage_url,
                storage_options=self.settings.storage_options,
            )
        return self._inspector

    # -- never break the host ----------------------------------------------------------------
    def _guard(self, what: str, fn: Callable[[], T], default: T) -> T:
        return guarded(what, fn, default, self._warn)

    def _budget(self) -> Budget:
        return Budget(self.settings.write_budget)

    def _renew_leases(self, runs: list[str], steps: list[tuple[str, str, int]], now: datetime, until: datetime) -> None:
        self.writer.bounded("store", lambda: self.store.renew_leases(runs, steps, now=now, until=until), self._budget())

    def _put_live(self, key: str, data: bytes) -> None:
        """A follow-mode snapshot: skipped while blob storage is down (it is replaced soon anyway)."""
        self.writer.bounded("blob store", lambda: self.blobs.put(key, data), self._budget())

    # -- runs ----------------------------------------------------------------------------------
    def run(
        self,
        flow_id: str,
        *,
        run_key: str | None = None,
        attempt: int = 1,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> RunContext:
        """Context manager recording a run of `flow_id` (plain Python)."""
        return RunContext(self, flow_id, run_key=run_key, attempt=attempt, tags=tags, parent_run_id=parent_run_id)

    def start_run(
        self,
        flow_id: str,
        run_key: str | None = None,
        *,
        status: Status | str = Status.RUNNING,
        attempt: int | None = 1,
        orchestrator: str | None = None,
        queued_at: datetime | None = None,
        started_at: datetime | None = None,
        host: str | None = None,
        agent: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        params_hash: str | None = None,
        code_version: str | None = None,
        traceparent: str | None = None,
        lease: bool = True,
    ) -> RunHandle:
        """Record that a run exists (idempotent on orchestrator + flow_id + run_key).

        `attempt=None` means "I cannot tell which attempt this is": the row's attempt is kept.
        `started_at=None` for a running run means "now" for a new row; a row that already knows
        its start keeps it (a guess never replaces a fact).
        `lease`: this process runs the run, so a running run holds a lease while it lives and is
        shown as crashed if the process dies; False for a process that only reports it (a
        scheduler whose runs are ended by the orchestrator's own events).
        `traceparent`: the orchestrator's W3C trace context the run joins (RUNDOSSIER_OTEL on; see
        `record.otel` for the other sources). The first process to record the run starts its span
        and names it on the row; every process's steps join the span named there.
        Always returns a handle; if the database is down the row waits in the spool.
        """
        # masked where they enter: every text a caller hands in (ids too: they name rows and blobs)
        flow_id = self.masker.mask(flow_id)
        run_key, host, agent, params_hash, code_version = self.masker.mask_fields(
            run_key, host, agent, params_hash, code_version
        )
        tags = self.masker.mask_data(tags)
        run_id = new_run_id()
        running = Status(status) == Status.RUNNING
        handle = RunHandle(
            self,
            run_id=run_id,
            orchestrator=orchestrator or self.orchestrator,
            flow_id=flow_id,
            run_key=run_key or run_id,
            attempt=attempt,
            started_at=started_at or (_now() if running else None),
            host=host or self.host,
            budget=self._budget(),
        )
        values = {
            "run_id": run_id,
            "orchestrator": handle.orchestrator,
            "flow_id": flow_id,
            "run_key": handle.run_key,
            "status": Status(status).value,
            "attempt": attempt,
            "queued_at": queued_at,
            "started_at": handle.started_at,
            "host": handle.host,
            "agent": agent,
            "tags": dict(tags) if tags else None,
            "parent_run_id": parent_run_id,
            "params_hash": params_hash,
            "code_version": code_version,
        }
        span_key = None
        if self.spans is not None:
            span_key = self._guard(
                "start a run's span", lambda: self._start_run_span(handle, values, traceparent), None
            )
        held = lease and running
        if held:
            values["heartbeat_at"], values["lease_until"] = self.heartbeat.lease()
            values["lease_holder"] = self.heartbeat.holder
        guessed = ("started_at",) if started_at is None else ()
        # the first process to start the run's span names it on the row (a new attempt starts over)
        kept = ("traceparent", "trace_id") if span_key is not None else ()
        batch = WriteBatch().run(values, attempt_known=attempt is not None, fill=(*guessed, *kept))
        if params_hash is not None or code_version is not None:
            # kept per attempt in the ledger (the row keeps only the latest): replay plans compare them
            inputs = {"hash": params_hash, "code_version": code_version, "attempt": attempt}
            batch.event(
                {
                    "run_id": run_id,
                    "kind": ev.INPUTS_RECORDED,
                    "ts": queued_at or handle.started_at or _now(),
                    "summary": f"params {params_hash or '-'}, code {code_version or '-'}",
                    "data": {k: v for k, v in inputs.items() if v is not None},
                }
            )
        self.writer.note_run(run_id, handle.orchestrator, flow_id, handle.run_key)
        self._runs[run_id] = handle
        result = self._write("record the start of a run", [], batch, handle.budget)
        if result is not None and result.run_ids:
            if result.run_ids[0] != handle.run_id:
                self._rename_run(handle.run_id, result.run_ids[0])
            handle.started_at = result.started_at[0] or handle.started_at
        if self.spans is not None:
            self._guard("join a run's span", lambda: self._join_run_span(handle, span_key, traceparent, result), None)
        if held:
            self._guard("hold a run's lease", lambda: self.heartbeat.hold_run(handle), None)
        return handle

    def _rename_run(self, old: str, new: str) -> None:
        """The database knows a run this process recorded as `old` under `new`: its handle follows."""
        handle = self._runs.pop(old, None)
        if handle is not None:
            handle.run_id = new
            self._runs[new] = handle

    # -- spans (RUNDOSSIER_OTEL on; see record/otel.py) -------------------------------------------
    def _start_run_span(self, handle: RunHandle, values: dict[str, Any], traceparent: str | None) -> Any:
        """Start this process's span of the run (a child of the trace context in effect) and put
        its context on the row's values; returns the span's key, None when it has no valid context."""
        from rundossier.record.otel import run_attributes, trace_id_of, traceparent_of

        assert self.spans is not None
        key = _run_key(handle)
        ctx = self.spans.start_run(
            key,
            handle.attempt,
            started_at=handle.started_at or _now(),
            parent=self.spans.parent_in_effect(traceparent),
            attributes=run_attributes(handle.run_id, handle.flow_id, handle.orchestrator, handle.attempt),
        )
        if not ctx.is_valid:  # no TracerProvider: nothing to join
            self.spans.drop_run(key)
            return None
        handle.span_context = ctx
        values["traceparent"], values["trace_id"] = traceparent_of(ctx), trace_id_of(ctx)
        return key

    def _join_run_span(self, handle: RunHandle, key: Any, traceparent: str | None, result: WriteResult | None) -> None:
        """After the run's write: the run's span is the one named on the row (another process's,
        when it recorded the run first: then this process's own span is dropped, never ended)."""
        from rundossier.record.otel import parse_traceparent

        assert self.spans is not None
        if key is not None:
            self.spans.set_run_id(key, handle.run_id)
        if result is None or not result.run_ids:
            return  # spooled: the row cannot be read now; steps join this process's context, if any
        row = self.writer.bounded("store", lambda: self.store.get_run(handle.run_id), handle.budget)
        stored = parse_traceparent(row.traceparent)
        if stored is None:
            if handle.span_context is None:
                handle.span_context = self.spans.parent_in_effect(traceparent)
            return
        ours = handle.span_context
        if key is not None and (ours is None or (stored.trace_id, stored.span_id) != (ours.trace_id, ours.span_id)):
            self.spans.drop_run(key)  # another process holds the run's span: this one is never ended
        handle.span_context = stored

    def finish_run(
        self,
        run: RunHandle,
        status: Status | str,
        error: BaseException | str | None = None,
        *,
        reason: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Record a run's end. An `error` no step has recorded yet gets a run-level trace."""
        self._guard(
            "record the end of a run", lambda: self._finish_run(run, Status(status), error, reason, finished_at), None
        )

    def _finish_run(
        self,
        run: RunHandle,
        status: Status,
        error: BaseException | str | None,
        reason: str | None,
        finished_at: datetime | None,
    ) -> None:
        self.heartbeat.release(run)
        end = finished_at or _now()
        values: dict[str, Any] = {
            "run_id": run.run_id,
            "orchestrator": run.orchestrator,
            "flow_id": run.flow_id,
            "run_key": run.run_key,
            "status": status.value,
            "attempt": run.attempt,
            "finished_at": end,
            "duration_ms": _ms(run.started_at, end),
        }
        finished: dict[str, Any] = {"run_id": run.run_id, "kind": ev.RUN_FINISHED, "ts": end, "summary": status.value}
        blobs: list[tuple[str, bytes]] = []
        root_cause: dict[str, Any] | None = None
        run_failure: Failure | None = None
        if status.is_failure and error is not None and not self._recorded_by_a_step(run, error):
            step = StepHandle(run, RUN_STEP, 1, StepLog(), started_at=run.started_at or end, host=run.host)
            blobs, trace_values, extra = self._failure_payload(step, error, reason, end, status)
            run_failure = extra.get("span_failure")
            finished["data"] = {"chain": extra["chain"]}
            led_by_step = isinstance(error, BaseException) and self._failed_step_in(run, error) is not None
            if isinstance(error, BaseException):
                # the exception that ended the run is the run's error and trace, whole chain
                # included; a step failure it wraps stays the root cause (class, fingerprint)
                values.update({k: trace_values[k] for k in _RUN_ERROR_COLUMNS})
            if not led_by_step:
                root_cause = {
                    "run_id": run.run_id,
                    "root_step_id": RUN_STEP,
                    "root_try_number": 1,
                    "failure_class": extra["failure_class"],
                    "failed_at": end,
                    **trace_values,
                }
                if isinstance(error, BaseException) and run._failed:
                    root_cause["replace"] = True  # the steps' failures were handled: not what ended it
                elif status == Status.CRASHED:
                    # the process died: that ended the run, whatever step failed before (whose row
                    # keeps its own failure); and the run-level trace just written is referenced
                    root_cause["replace"] = True
        batch = WriteBatch().run(values, attempt_known=run.attempt is not None)
        batch.event(finished)
        if root_cause is not None:
            batch.root_cause(root_cause)
        if status == Status.SUCCESS:
            # a run that ended well keeps its failed tries as steps, not as the run's error
            batch.clear_outcome(run.run_id)
        self._write("record the end of a run", blobs, batch, run.budget)
        if self.spans is not None and status.is_terminal:
            if run_failure is None and status.is_failure and run.failed_step is not None:
                run_failure = run.failed_step.span_failure  # the step failure that ended the run
            spans, key = self.spans, _run_key(run)
            self._guard("end a run's span", lambda: spans.end_run(key, status, run_failure, end), False)
        if self.settings.retention_cap and status.is_terminal:
            self._guard("apply the retention cap", lambda: self._retention_cap().after_finish(run.flow_id), None)
        self._maybe_flush()

    # -- steps ---------------------------------------------------------------------------------
    def start_step(
        self,
        run: RunHandle,
        step_id: str,
        *,
        try_number: int = 1,
        task_id: str | None = None,
        map_index: int | None = None,
        upstream: Sequence[str] | None = None,
        started_at: datetime | None = None,
        queued_at: datetime | None = None,
        host: str | None = None,
    ) -> StepHandle:
        """Record a step try as running and return its handle (with a log buffer).

        The try holds a lease while this process lives (see `Heartbeat`)."""
        step_id = self.masker.mask(step_id)  # masked where they enter
        task_id, host = self.masker.mask_fields(task_id, host)
        upstream = self.masker.mask_data(list(upstream)) if upstream else None
        start = started_at or _now()
        budget = self._budget()
        handle = StepHandle(
            run,
            step_id,
            try_number,
            self._step_log(run, step_id, try_number, budget),
            started_at=start,
            task_id=task_id,
            map_index=map_index,
            host=host or run.host,
            budget=budget,
        )
        row = {
            "run_id": run.run_id,
            "step_id": step_id,
            "try_number": try_number,
            "task_id": task_id,
            "map_index": map_index,
            "status": Status.RUNNING.value,
            "queued_at": queued_at,
            "started_at": start,
            "upstream": list(upstream) if upstream else None,
            "host": handle.host,
            # the lease starts with the try (heartbeat_at is set by the first renewal)
            "lease_until": self.heartbeat.until(start if started_at is None else _now()),
            "lease_holder": self.heartbeat.holder,
        }
        self._write("record the start of a step", [], WriteBatch().step(row), budget)
        if self.spans is not None:
            handle.span = self._guard("start a step's span", lambda: self._start_step_span(handle), None)
        self._guard("hold a step's lease", lambda: self.heartbeat.hold_step(handle), None)
        if self._live is not None:
            live = self._live
            key = partial(self._key, run, step_id, try_number, LOG_LIVE)
            self._guard("publish a running step's log", lambda: live.watch(key, handle.log), None)
        return handle

    def _start_step_span(self, step: StepHandle) -> Any:
        from rundossier.record.otel import step_attributes

        assert self.spans is not None
        run = step.run
        attributes = step_attributes(run.run_id, run.flow_id, run.orchestrator, step.step_id, step.try_number)
        return self.spans.start_step(run.span_context, step.step_id, started_at=step.started_at, attributes=attributes)

    def _end_step_span(self, step: StepHandle, status: Status, end: datetime) -> None:
        assert self.spans is not None
        if step.span is None:  # a try reported by another process (or the span could not start): made now
            step.span = self._start_step_span(step)
        self.spans.end_step(step.span, status, step.span_failure, end)

    def _step_log(self, run: RunHandle, step_id: str, try_number: int, budget: Budget) -> StepLog:
        def spill(n: int, data: bytes) -> None:
            # through the writer: a part storage refuses waits in the spool, never lost
            self.writer.put_blob(self._key(run, step_id, try_number, log_part_name(n)), data, budget=budget)

        return StepLog(spill=spill, mask=self.masker.mask)

    def finish_step(
        self,
        step: StepHandle,
        status: Status | str,
        error: BaseException | str | None = None,
        *,
        reason: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Record a step try's end: status, timings, logs and, on failure, its trace."""
        self._guard(
            "record the end of a step",
            lambda: self._finish_step(step, Status(status), error, reason, finished_at),
            None,
        )

    def _finish_step(
        self,
        step: StepHandle,
        status: Status,
        error: BaseException | str | None,
        reason: str | None,
        finished_at: datetime | None,
    ) -> None:
        if step.finished:
            return
        step.finished = True
        self.heartbeat.release(step)
        if _current_step.get() is step:
            _current_step.set(None)
        self._guard("record a step's artifacts", lambda: self._write_artifacts(step), None)
        live_key = self._live.unwatch(step.log) if self._live is not None else None
        try:
            self._finish_step_rows(step, status, error, reason, finished_at)
        finally:
            if live_key is not None:
                self._guard("delete a live log snapshot", lambda: self.blobs.delete([self.blobs.uri_for(live_key)]), 0)

    def _finish_step_rows(
        self,
        step: StepHandle,
        status: Status,
        error: BaseException | str | None,
        reason: str | None,
        finished_at: datetime | None,
    ) -> None:
        end = finished_at or _now()
        run = step.run
        blobs: list[tuple[str, bytes]] = []
        values: dict[str, Any] = {
            "run_id": run.run_id,
            "step_id": step.step_id,
            "try_number": step.try_number,
            "status": status.value,
            "finished_at": end,
            # a guessed start gives no duration: the row may know the real one
            "duration_ms": _ms(step.started_at, end) if step.start_known else None,
        }
        batch = WriteBatch()
        failed = status.is_failure or (error is not None and status != Status.SUCCESS)
        if failed:
            trace_blobs, trace_values, extra = self._failure_payload(step, error, reason, end, status)
            blobs.extend(trace_blobs)
            values.update(trace_values)
            step.error = error
            step.trace_uri = trace_values.get("trace_uri")
            step.span_failure = extra.get("span_failure")
            if isinstance(error, BaseException):
                run._failed.append((step, error))
            if run.failed_step is None:
                run.failed_step = step
            if run.failed_step.step_id == step.step_id:  # another step of this run failed first: not the root
                batch.root_cause(
                    {
                        "run_id": run.run_id,
                        "root_step_id": step.step_id,
                        "root_try_number": step.try_number,
                        "failure_class": extra["failure_class"],
                        "failed_at": end,
                        **trace_values,
                    }
                )
            batch.event(
                {
                    "run_id": run.run_id,
                    "step_id": step.step_id,
                    "try_number": step.try_number,
                    "kind": ev.STEP_FAILED,
                    "ts": end,
                    "summary": _summary(trace_values),
                    "raw_ref": trace_values.get("trace_uri"),
                    "data": {"chain": extra["chain"]},
                }
            )
        elif status == Status.SUCCESS and run.failed_step is not None and run.failed_step.step_id == step.step_id:
            # a later try recovered the root step: whatever fails next is what the run failed of
            batch.clear_outcome(run.run_id, step_id=step.step_id)
            run.failed_step = None
        log_blobs, log_values = self._log_payload(step)
        blobs.extend(log_blobs)
        values.update(log_values)
        batch.step(values)
        self._write("record the end of a step", blobs, batch, step.budget)
        if self.spans is not None:
            self._guard("end a step's span", lambda: self._end_step_span(step, status, end), None)
        self._maybe_flush()

    def record_failure(
        self,
        run: RunHandle,
        step_id: str | None,
        error: BaseException | str | None,
        *,
        try_number: int = 1,
        status: Status | str = Status.FAILED,
        reason: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        deadline: float | None = None,
    ) -> None:
        """Record a failure reported outside a live step (scheduler, API server, a dead process).

        A string or None error is recorded as exactly that: no traceback is invented. `deadline`
        (`time.monotonic()`): past it, what is not written yet goes to the spool without waiting.
        """

        def go() -> None:
            budget = self._budget()
            if deadline is not None:
                budget.until(deadline)
            step = StepHandle(
                run,
                self.masker.mask(step_id) if step_id else RUN_STEP,  # masked where it enters
                try_number,
                StepLog(),
                started_at=started_at or finished_at or _now(),
                host=run.host,
                start_known=started_at is not None,
                budget=budget,
            )
            self._finish_step(step, Status(status), error, reason, finished_at)

        self._guard("record a failure", go, None)

    def record_event(
        self,
        run: RunHandle,
        kind: str,
        summary: str = "",
        *,
        step_id: str | None = None,
        try_number: int | None = None,
        data: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
        raw_ref: str | None = None,
    ) -> None:
        """Add one event to the run's ledger (kinds in `rundossier.core.dossier.events`; others are kept as is).

        Integrations use it for what only the orchestrator knows: the worker claimed a task, the
        first and last piece of work, an artifact written, a kill, a lost heartbeat. Guarded like
        every call: a bad kind or a database fault is logged, never raised.
        """

        def go() -> None:
            m = self.masker  # every text of the event is masked where it enters
            row: dict[str, Any] = {
                "run_id": run.run_id,
                "step_id": m.mask(step_id) if step_id is not None else None,
                "try_number": try_number,
                "kind": m.mask(ev.check_kind(kind)),
                "ts": ts or _now(),
                "summary": m.mask(str(summary)) if summary else "",
                "raw_ref": m.mask(raw_ref) if raw_ref is not None else None,
                "data": m.mask_data(dict(data)) if data else None,
            }
            self._write(f"record a {kind} event", [], WriteBatch().event(row), run.budget)

        self._guard(f"record a {kind!s:.40} event", go, None)

    # -- artifacts -----------------------------------------------------------------------------
    def record_artifact(
        self,
        step: StepHandle,
        uri: str,
        role: str = "output",
        *,
        size: int | None = None,
        checksum: str | None = None,
        kind: str | None = None,
        uid: str | None = None,
    ) -> None:
        """Record one artifact of a step try (see `StepHandle.artifact`). Guarded: a bad role, an
        empty URI or a storage fault is a warning, never an error of the task. `uid`: an id of
        the caller's choosing, so recording the same artifact twice keeps one row."""

        def go() -> None:
            row = self._artifact_row(step, uri, role, size, checksum, kind)
            if uid:
                row["uid"] = uid
            with step.artifacts_lock:
                step.pending_artifacts.append(row)
                full = len(step.pending_artifacts) >= ARTIFACT_BATCH
            if full or step.finished:  # recorded after the end (a late hook): written at once
                self._write_artifacts(step)

        self._guard(f"record an artifact of {step.step_id} (try {step.try_number})", go, None)

    def record_ended_try_artifact(
        self,
        run: RunHandle,
        step_id: str,
        try_number: int,
        uri: str,
        role: str = "output",
        *,
        size: int | None = None,
        checksum: str | None = None,
        kind: str | None = None,
        uid: str | None = None,
    ) -> None:
        """Record an artifact of a try that already ended (what an orchestrator's API says it
        made, read after the run): written at once."""
        step = self.try_handle(run, step_id, try_number)
        self.record_artifact(step, uri, role, size=size, checksum=checksum, kind=kind, uid=uid)

    def try_handle(self, run: RunHandle, step_id: str, try_number: int) -> StepHandle:
        """A handle on a try recorded elsewhere (another thread or process, or after the fact),
        to add artifacts to it: they are written at once. It never ends the try."""
        return StepHandle(
            run,
            self.masker.mask(step_id),
            try_number,
            StepLog(),
            started_at=_now(),
            finished=True,
            budget=self._budget(),
        )

    def _artifact_row(
        self, step: StepHandle, uri: str, role: str, size: int | None, checksum: str | None, kind: str | None
    ) -> dict[str, Any]:
        the_role = check_role(role)
        raw = normalize_uri(uri)
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError(f"an artifact's size is a number of bytes, got {size!r}")
        stat = ArtifactStat(size=size, checksum=checksum)
        if size is None or checksum is None:
            found = self.inspector.inspect(raw, want_checksum=checksum is None)
            stat = ArtifactStat(
                present=found.present,
                size=size if size is not None else found.size,
                checksum=checksum if checksum is not None else found.checksum,
                note=found.note,
            )
        m = self.masker  # the URI (credentials in it), the kind and the note are masked where they enter
        return {
            "run_id": step.run.run_id,
            "step_id": step.step_id,
            "try_number": step.try_number,
            "role": the_role.value,
            "uri": m.mask(raw),
            "kind": m.mask(str(kind)) if kind else None,
            "size": stat.size,
            "checksum": m.mask(str(stat.checksum)) if stat.checksum else None,
            "present": stat.present,
            "note": m.mask(stat.note) if stat.note else None,
            "recorded_at": _now(),
        }

    def _write_artifacts(self, step: StepHandle) -> None:
        with step.artifacts_lock:
            rows, step.pending_artifacts = step.pending_artifacts, []
        if rows:
            batch = WriteBatch()
            for row in rows:
                batch.artifact(row)
            self._write(f"record {len(rows)} artifact(s) of {step.step_id}", [], batch, step.budget)

    # -- payloads ------------------------------------------------------------------------------
    def _key(self, run: RunHandle, step_id: str, try_number: int, name: str) -> str:
        return blob_key(run.orchestrator, run.flow_id, run.run_id, row_step(step_id), try_number, name)

    def _failure_payload(
        self, step: StepHandle, error: BaseException | str | None, reason: str | None, end: datetime, status: Status
    ) -> tuple[list[tuple[str, bytes]], dict[str, Any], dict[str, Any]]:
        """The trace blobs, the row columns they fill, and extras: the chain summary and the class."""
        run = step.run
        header = TraceHeader(
            run_id=run.run_id,
            flow_id=run.flow_id,
            step_id=step.step_id,
            try_number=step.try_number,
            orchestrator=run.orchestrator,
            host=step.host,
            started_at=step.started_at.isoformat() if step.started_at else None,
            failed_at=end.isoformat(),
            extra=(("run_key", run.run_key),),
        )
        art = build_failure(
            error,
            header,
            step.log.tail(),
            mask=self.masker.mask,
            mask_many=self.masker.mask_many,
            max_bytes=self.settings.max_trace_bytes,
            reason=reason,
            log_tail_masked=step.log.masked,
        )
        text_key = self._key(run, step.step_id, step.try_number, TRACE_TEXT)
        json_key = self._key(run, step.step_id, step.try_number, TRACE_JSON)
        uri = self.blobs_uri(text_key)
        values = {
            "error_type": art.error_type,
            "error_message": art.error_message,
            "fingerprint": art.fingerprint,
            "trace_uri": uri,
            "trace_bytes": art.text_bytes,
        }
        chain = chain_summary(art.doc)
        nodes = tuple(ErrorNode(n["type"], n["message"]) for n in chain)
        extra: dict[str, Any] = {
            "chain": chain,
            "failure_class": error_class(status.value, nodes, art.error_type, art.error_message),
        }
        if self.spans is not None:
            from rundossier.record.otel import span_failure

            extra["span_failure"] = span_failure(art.error_type, art.error_message, art.text, uri)
        return [(text_key, art.text_gz), (json_key, art.json_gz)], values, extra

    def blobs_uri(self, key: str) -> str:
        """The URI a key will have, even when the blob store cannot be reached right now, and
        without waiting for it to be built (an object store's is built off the task's time)."""
        try:
            built = self._backends.blobs_built
            if built is None and (root := BlobStore.root_url(self.settings.storage_url)) is not None:
                return f"{root}/{key}"  # keys are built by `blob_key`, already checked
            return self.blobs.uri_for(key)
        except Exception:  # noqa: BLE001 - storage misconfigured: keep the intended location
            return self.settings.storage_url.rstrip("/") + "/" + key

    def _log_payload(self, step: StepHandle) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
        steplog = step.log
        final = steplog.finish()
        counts = steplog.counts
        values: dict[str, Any] = {
            "log_lines_stdout": counts.get("stdout", 0),
            "log_lines_stderr": counts.get("stderr", 0),
            "first_output_at": _from_ts(steplog.first_ts),
            "last_output_at": _from_ts(steplog.last_ts),
        }
        if steplog.total_bytes == 0:
            return [], values
        run = step.run
        key = self._key(run, step.step_id, step.try_number, LOG)
        values["log_uri"] = self.blobs_uri(key)
        values["log_bytes"] = steplog.total_bytes
        index = (self._key(run, step.step_id, step.try_number, LOG_INDEX), steplog.index().to_json())
        if steplog.parts_spilled == 0:
            return [(key, final), index], values  # the log first: an index never points at nothing
        # a big log already went out in parts: append the last part, then join them in storage
        parts = [
            self._key(run, step.step_id, step.try_number, log_part_name(n)) for n in range(1, steplog.parts_spilled + 1)
        ]
        try:
            self.writer.bounded("blob store", lambda: self._join_parts(key, parts, final), step.budget)
            return [index], values
        except Exception as exc:  # noqa: BLE001 - storage refused: the parts stay, and the last one is written too
            self._warn(f"rundossier could not join the log parts of {step.step_id}: {exc}; they stay as parts")
            last = self._key(run, step.step_id, step.try_number, log_part_name(steplog.parts_spilled + 1))
            parts_folder = log_parts_prefix(
                run.orchestrator, run.flow_id, run.run_id, row_step(step.step_id), step.try_number
            )
            values["log_uri"] = self.blobs_uri(parts_folder + "/")
            return [(last, final)], values

    def _join_parts(self, key: str, parts: list[str], final: bytes) -> None:
        store = self.blobs
        with store.open_write(key) as out:
            for part in parts:
                with store.open_read(store.uri_for(part)) as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
            out.write(final)
        store.delete([store.uri_for(p) for p in parts])

    # -- writing -------------------------------------------------------------------------------
    def _write(
        self, what: str, blobs: list[tuple[str, bytes]], batch: WriteBatch, budget: Budget
    ) -> WriteResult | None:
        """Every row and blob goes through the writer (spooled when refused; it warns once per outage)."""
        return self._guard(what, lambda: self.writer.write(blobs, batch, budget=budget), None)

    @staticmethod
    def _recorded_by_a_step(run: RunHandle, error: BaseException | str) -> bool:
        """True if a step recorded this very exception object (then it has its trace already)."""
        return any(recorded is error for _, recorded in run._failed)

    @staticmethod
    def _failed_step_in(run: RunHandle, error: BaseException) -> StepHandle | None:
        """The first failed step whose exception is in `error`'s chain (it led to the run's end)."""
        recorded = {id(exc): step for step, exc in run._failed}
        for exc in exceptions_in(error):
            if id(exc) in recorded:
                return recorded[id(exc)]
        return None

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_spool_check < SPOOL_CHECK_EVERY_S:
            return
        self._last_spool_check = now
        if not self.writer.store_down and self.spool.has_pending():
            report = self.writer.flush(budget_s=SPOOL_FLUSH_BUDGET_S)
            if report.delivered:
                log.info("rundossier delivered %d spooled item(s)", report.delivered)

    def _retention_cap(self) -> Any:
        if self._cap is None:
            from rundossier.retention.cap import RetentionCap

            self._cap = RetentionCap(self.store, self.blobs)
        return self._cap

    def flush(self, *, progress: Callable[[int, int], None] | None = None, wait_s: float = FLUSH_WAIT_S) -> FlushReport:
        """Deliver everything waiting in the spool (what `rundossier flush` runs).

        Items another process is delivering at that moment are waited for (up to `wait_s`), so
        that when this returns with nothing remaining, everything is in the database."""
        report = self.writer.flush(progress=progress)
        deadline = time.monotonic() + wait_s
        while report.skipped and not report.unavailable and time.monotonic() < deadline:
            time.sleep(0.1)
            again = self.writer.flush(progress=progress)
            again.delivered += report.delivered
            report = again
        return report

    def close(self) -> None:
        """Stop background work and close connections (what is still held in memory is spooled)."""
        self.writer.close()
        self._backends.close()


def _run_key(run: RunHandle) -> tuple[str, str, str]:
    """A run's key in this process's spans: the row's unique key (the same whatever its run id)."""
    return (run.orchestrator, run.flow_id, run.run_key)


#: the run columns the exception that ended a run sets, whichever failure is its root cause
_RUN_ERROR_COLUMNS = ("error_type", "error_message", "trace_uri", "trace_bytes")


def _summary(values: Mapping[str, Any]) -> str:
    t, m = values.get("error_type"), values.get("error_message")
    if t and m:
        return f"{t}: {m}"
    return str(t or m or "failed")


def _activate(recorder: Recorder, span: Any) -> Any:
    """Make a run's or step's span current in this thread (the user's spans nest in it); a token or None."""
    spans = recorder.spans
    if spans is None or span is None:
        return None
    return recorder._guard("make a span current", lambda: spans.activate(span), None)


def _deactivate(recorder: Recorder, token: Any) -> None:
    spans = recorder.spans
    if spans is not None and token is not None:
        recorder._guard("restore the current span", lambda: spans.deactivate(token), None)


class StepContext:
    """`with run.step("name"):` records one step try; the exception passes through untouched."""

    def __init__(
        self, run: RunHandle, step_id: str, *, try_number: int, upstream: Sequence[str] | None, capture_logs: bool
    ) -> None:
        self.run = run
        self.step_id = step_id
        self.try_number = try_number
        self.upstream = upstream
        self.capture_logs = capture_logs
        self.handle: StepHandle | None = None
        self._capture: Any = None
        self._token: Any = None
        self._span_token: Any = None

    def __enter__(self) -> StepHandle:
        rec = self.run.recorder
        self.handle = rec.start_step(self.run, self.step_id, try_number=self.try_number, upstream=self.upstream)
        self._token = _current_step.set(self.handle)
        self._span_token = _activate(rec, self.handle.span)
        if self.capture_logs:
            try:
                self._capture = capture(self.handle.log)
                self._capture.__enter__()
            except Exception as exc:  # noqa: BLE001
                self._capture = None
                rec._warn(f"rundossier could not capture the logs of {self.step_id}: {exc}")
        return self.handle

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if self._capture is not None:
            try:
                self._capture.__exit__(exc_type, exc, tb)
            except Exception:  # noqa: BLE001
                pass
        assert self.handle is not None
        _deactivate(self.run.recorder, self._span_token)
        self.handle.finish(_status_for(exc), exc if _status_for(exc) != Status.SUCCESS else None)
        try:
            _current_step.reset(self._token)
        except ValueError:  # left in another context (a generator): the step ended anyway
            _current_step.set(None)
        return False  # never swallow the step's exception


class RunContext:
    """`with recorder.run(flow_id=...) as run:` records a run; the exception passes through untouched."""

    def __init__(
        self,
        recorder: Recorder,
        flow_id: str,
        *,
        run_key: str | None,
        attempt: int,
        tags: Mapping[str, Any] | None,
        parent_run_id: str | None,
    ) -> None:
        self.recorder = recorder
        self.flow_id = flow_id
        self.run_key = run_key
        self.attempt = attempt
        self.tags = tags
        self.parent_run_id = parent_run_id
        self.handle: RunHandle | None = None
        self._span_token: Any = None

    def __enter__(self) -> RunHandle:
        self.handle = self.recorder.start_run(
            self.flow_id, self.run_key, attempt=self.attempt, tags=self.tags, parent_run_id=self.parent_run_id
        )
        spans = self.recorder.spans
        if spans is not None and self.handle.span_context is not None:
            live = spans.live_run(_run_key(self.handle))
            self._span_token = _activate(self.recorder, live)
        return self.handle

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        assert self.handle is not None
        _deactivate(self.recorder, self._span_token)
        status = _status_for(exc)
        self.handle.finish(status, exc if status != Status.SUCCESS else None)
        return False


#: integrations that know the try running here another way (Prefect: its task run context)
_step_finders: list[Callable[[], StepHandle | None]] = []


def add_step_finder(finder: Callable[[], StepHandle | None]) -> None:
    """Integrations: `finder` names the try running here when no `with run.step(...)` does."""
    if finder not in _step_finders:
        _step_finders.append(finder)


def current_step() -> StepHandle | None:
    """The step try recorded where this code runs (a `with run.step(...)` block, an Airflow task,
    a Prefect task run), or None."""
    step = _current_step.get()
    if step is not None and not step.finished:
        return step
    for finder in _step_finders:
        try:
            found = finder()
        except Exception as exc:  # noqa: BLE001 - a finder's fault: no step here
            log.debug("rundossier: a step finder failed: %s", exc)
            continue
        if found is not None:
            return found
    return None


def set_current_step(step: StepHandle | None) -> None:
    """Integrations: make `step` the one `rundossier.artifact` records on, in this context."""
    _current_step.set(step)


def artifact(
    uri: str,
    role: str = "output",
    *,
    size: int | None = None,
    checksum: str | None = None,
    kind: str | None = None,
) -> bool:
    """Record an artifact of the step try running here (see `StepHandle.artifact`); False (and a
    warning) when no step is being recorded here. Never raises."""
    step = current_step()
    if step is None:
        log.warning("rundossier.artifact(%.200r): no step is being recorded here; not recorded", uri)
        return False
    step.artifact(uri, role, size=size, checksum=checksum, kind=kind)
    return True


__all__ = [
    "Recorder",
    "RunHandle",
    "StepHandle",
    "RunContext",
    "StepContext",
    "RUN_STEP",
    "artifact",
    "add_step_finder",
    "current_step",
    "set_current_step",
]
