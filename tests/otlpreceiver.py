"""An OTLP/HTTP trace receiver on 127.0.0.1 for tests: it decodes each protobuf export request
(the opentelemetry-proto package comes with the OTLP exporter) and keeps every span."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from tests.s3server import free_port


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver on loopback: every span of every export request, decoded."""

    port: int
    spans: list[ProtoSpan] = field(default_factory=list)
    requests: int = 0
    #: set: requests are answered; clear: they wait (an exporter stuck on a collector that hangs)
    answering: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port, for the life of a `with` block."""
    state = Receiver(free_port())
    state.answering.set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests += 1
            state.arrived.set()
            state.answering.wait(30)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    state.spans.extend(ss.spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.answering.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def attributes(item: Any) -> dict[str, object]:
    """The attributes of a decoded span or span event, as plain values."""
    out: dict[str, object] = {}
    for kv in item.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


__all__ = ["Receiver", "otlp_receiver", "attributes", "ProtoSpan"]
