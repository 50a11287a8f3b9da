"""OpenTelemetry export: runs and step tries as spans through the global TracerProvider (RUNDOSSIER_OTEL=on).

One span per run (`run {flow_id}`) and a child span per step try (named for the step id), made
with `opentelemetry.trace.get_tracer`: whatever provider and exporter the user configured (Airflow's
`[traces] otel_on`, `opentelemetry-instrument`, their own code) receives them; rundossier configures
none. Spans carry the real start and end times of the run and the try, whichever process records them.

Across processes (an Airflow task runs in its own process; Prefect task runs may be recorded after
their flow run ended), only the run's span context is shared, through the run row: the process that
starts a run starts its span (a child of the W3C traceparent in effect) and writes its traceparent
and trace id on the row; any process that records a step of the run parents the step's span on that
context, read from the row. The run span itself ends in the process that started it (OpenTelemetry
lets no other process end it or choose its id): if that process died, the steps keep pointing at it.

A failed run or try has status ERROR and an `exception` event whose `exception.stacktrace` is the
stored trace text itself (already masked and bounded; cut further here to STACKTRACE_MAX_CHARS),
so a span never shows a secret the stored trace does not.

Nothing here blocks or raises into a task: spans are ended into the provider's span processor (a
batch processor exports in the background), and every call is guarded by the recorder.
"""

from __future__ import annotations

import calendar
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rundossier.core.status import Status

log = logging.getLogger("rundossier")

TRACER_NAME = "rundossier"
#: the environment variable holding a W3C traceparent a run joins (as CI systems and schedulers set it)
TRACEPARENT_VAR = "TRACEPARENT"
#: the longest `exception.stacktrace` a span carries (the whole trace stays in storage)
STACKTRACE_MAX_CHARS = 64 * 1024
MESSAGE_MAX_CHARS = 8 * 1024
_PROPAGATOR = TraceContextTextMapPropagator()

#: a run in this process: (orchestrator, flow_id, run_key)
RunKey = tuple[str, str, str]


@dataclass(frozen=True)
class Failure:
    """What a failed span shows: the stored trace's error type, message and text (all masked)."""

    error_type: str | None
    message: str | None
    trace_text: str | None = None
    trace_uri: str | None = None

    @property
    def description(self) -> str:
        first = (self.message or "").strip().split("\n", 1)[0][:200]
        return f"{self.error_type}: {first}" if self.error_type and first else (self.error_type or first or "failed")


def span_failure(error_type: str | None, message: str | None, trace_text: str | None, trace_uri: str | None) -> Failure:
    """A failure as a span shows it: the stored (masked) texts, bounded to what a span carries."""
    return Failure(
        error_type,
        bounded_text(message, MESSAGE_MAX_CHARS) if message else message,
        bounded_text(trace_text, STACKTRACE_MAX_CHARS, trace_uri) if trace_text else trace_text,
        trace_uri,
    )


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The span context of a W3C traceparent header value (None when absent or malformed)."""
    if not value:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": value.strip()})
    sc = trace.get_current_span(ctx).get_span_context()
    return sc if sc.is_valid else None


def traceparent_of(sc: SpanContext) -> str:
    """The W3C traceparent header value of a span context."""
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def trace_id_of(sc: SpanContext) -> str:
    return f"{sc.trace_id:032x}"


def ns(ts: datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond (no float rounding); a naive time is UTC.

    From the time's fields, not by subtraction: orchestrators hand in datetime subclasses (Prefect's
    pendulum-style DateTime) whose differences are not plain timedeltas."""
    return calendar.timegm(ts.utctimetuple()) * 1_000_000_000 + ts.microsecond * 1000


def bounded_text(text: str, limit: int, where: str | None = None) -> str:
    """`text`, or its head and tail around a marker when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    omitted = len(text) - limit
    marker = f"\n... {omitted} characters omitted" + (f" (the whole trace: {where})" if where else "") + " ...\n"
    head = limit // 2
    return text[:head] + marker + text[len(text) - (limit - head) :]


@dataclass
class _LiveRun:
    attempt: int | None
    span: Span


class Spans:
    """The spans of the runs and step tries one recorder records (one per recorder)."""

    def __init__(self, warn: Callable[[str], None], environ: Mapping[str, str] | None = None) -> None:
        self._warn = warn
        self._environ = os.environ if environ is None else environ
        self._tracer = trace.get_tracer(TRACER_NAME)
        self._runs: dict[RunKey, _LiveRun] = {}
        self._lock = threading.Lock()
        self._checked_provider = False

    # -- the parent -----------------------------------------------------------------------------
    def parent_in_effect(self, traceparent: str | None = None) -> SpanContext | None:
        """What a new run joins: the orchestrator's traceparent (given), else the span current in
        this thread, else the TRACEPARENT environment variable; None: the run starts a trace."""
        given = parse_traceparent(traceparent)
        if given is not None:
            return given
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            return current
        return parse_traceparent(self._environ.get(TRACEPARENT_VAR))

    # -- runs -----------------------------------------------------------------------------------
    def start_run(
        self,
        key: RunKey,
        attempt: int | None,
        *,
        started_at: datetime,
        parent: SpanContext | None,
        attributes: Mapping[str, Any],
    ) -> SpanContext:
        """This process's live span of the run (started now with the run's real start time, or
        the one already started here for the same attempt); returns its context."""
        with self._lock:
            live = self._runs.get(key)
            if live is not None and (attempt is None or live.attempt is None or live.attempt == attempt):
                return live.span.get_span_context()
            if live is not None:  # a new attempt of the run: the old attempt's span ends where this one starts
                live.span.end(end_time=ns(started_at))
            parent_ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
            span = self._tracer.start_span(
                f"run {key[1]}",
                context=parent_ctx if parent_ctx is not None else otel_context.Context(),
                kind=SpanKind.INTERNAL,
                attributes=dict(attributes),
                start_time=ns(started_at),
            )
            self._runs[key] = _LiveRun(attempt, span)
            return span.get_span_context()

    def set_run_id(self, key: RunKey, run_id: str) -> None:
        """The run's id as stored (a run that already existed keeps its id)."""
        live = self._runs.get(key)
        if live is not None:
            live.span.set_attribute("rundossier.run_id", run_id)

    def live_run(self, key: RunKey) -> Span | None:
        """This process's live span of the run, if it started one."""
        live = self._runs.get(key)
        return live.span if live is not None else None

    def drop_run(self, key: RunKey) -> None:
        """Forget a span this process started for a run whose span another process holds
        (never ended, so never exported)."""
        with self._lock:
            self._runs.pop(key, None)

    def end_run(self, key: RunKey, status: Status, failure: Failure | None, end: datetime) -> bool:
        """End the run's live span; False when this process holds none (another process started the run)."""
        with self._lock:
            live = self._runs.pop(key, None)
        if live is None:
            return False
        self._end(live.span, status, failure, end)
        return True

    # -- step tries -----------------------------------------------------------------------------
    def start_step(
        self, parent: SpanContext | None, name: str, *, started_at: datetime, attributes: Mapping[str, Any]
    ) -> Span:
        """A step try's span, started with the try's real start time, a child of the run's span."""
        parent_ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        return self._tracer.start_span(
            name,
            context=parent_ctx if parent_ctx is not None else otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes=dict(attributes),
            start_time=ns(started_at),
        )

    def end_step(self, span: Span, status: Status, failure: Failure | None, end: datetime) -> None:
        self._end(span, status, failure, end)

    # -- ending ---------------------------------------------------------------------------------
    def _end(self, span: Span, status: Status, failure: Failure | None, end: datetime) -> None:
        span.set_attribute("rundossier.status", status.value)
        if status.is_failure:
            failure = failure or Failure(None, None)
            if failure.trace_uri:
                span.set_attribute("rundossier.trace_uri", failure.trace_uri)
            if failure.error_type or failure.message or failure.trace_text:
                event: dict[str, Any] = {}
                if failure.error_type:
                    event["exception.type"] = failure.error_type
                if failure.message:
                    event["exception.message"] = failure.message
                if failure.trace_text:
                    event["exception.stacktrace"] = failure.trace_text
                span.add_event("exception", event, timestamp=ns(end))
            span.set_status(StatusCode.ERROR, failure.description)
        span.end(end_time=ns(end))
        self._check_provider()

    def _check_provider(self) -> None:
        if self._checked_provider:
            return
        self._checked_provider = True
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            self._warn(
                "RUNDOSSIER_OTEL is on but no OpenTelemetry TracerProvider is configured in this process: "
                "rundossier's spans go nowhere (see docs/otel.md)"
            )

    # -- making a span current ------------------------------------------------------------------
    @staticmethod
    def activate(span: Span) -> object:
        """Make `span` current in this thread (spans the user's code starts become its children)."""
        return otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def deactivate(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]


def run_attributes(run_id: str, flow_id: str, orchestrator: str, attempt: int | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "rundossier.run_id": run_id,
        "rundossier.flow_id": flow_id,
        "rundossier.orchestrator": orchestrator,
    }
    if attempt is not None:
        attrs["rundossier.attempt"] = attempt
    return attrs


def step_attributes(run_id: str, flow_id: str, orchestrator: str, step_id: str, try_number: int) -> dict[str, Any]:
    return {
        "rundossier.run_id": run_id,
        "rundossier.flow_id": flow_id,
        "rundossier.orchestrator": orchestrator,
        "rundossier.step_id": step_id,
        "rundossier.try_number": try_number,
    }


__all__ = [
    "Spans",
    "Failure",
    "span_failure",
    "parse_traceparent",
    "traceparent_of",
    "trace_id_of",
    "run_attributes",
    "step_attributes",
    "TRACEPARENT_VAR",
    "STACKTRACE_MAX_CHARS",
]
