"""The process-wide OpenTelemetry TracerProvider the tests use, set once (OpenTelemetry allows one).

Its one span processor forwards to whichever processor a test plugs in (`spans_to`): an in-memory
exporter behind a simple processor, or a batch processor with a real OTLP/HTTP exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class _Switch(SpanProcessor):
    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.target is not None:
            self.target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.target.force_flush(timeout_millis) if self.target is not None else True


_SWITCH = _Switch()
_LOCK = threading.Lock()
_SET = False


def provider() -> TracerProvider:
    global _SET
    with _LOCK:
        if not _SET:
            p = TracerProvider()
            p.add_span_processor(_SWITCH)
            trace.set_tracer_provider(p)
            _SET = True
    current = trace.get_tracer_provider()
    assert isinstance(current, TracerProvider), "another TracerProvider was set in this test process"
    return current


@contextmanager
def spans_to(processor: SpanProcessor) -> Iterator[SpanProcessor]:
    provider()
    _SWITCH.target = processor
    try:
        yield processor
    finally:
        _SWITCH.target = None
        processor.shutdown()


@contextmanager
def in_memory() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    with spans_to(SimpleSpanProcessor(exporter)):
        yield exporter
