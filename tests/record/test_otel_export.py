"""RUNDOSSIER_OTEL=on through the SDK's batch processor and the real OTLP/HTTP exporter, against a
receiver on 127.0.0.1 started here (it decodes the protobuf export requests), and with the exporter
down or hanging: the task's outcome never changes and nothing waits for the export."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from rundossier import Recorder
from rundossier.settings import Settings
from tests.otelspans import spans_to
from tests.otlpreceiver import Receiver, attributes, otlp_receiver

SECRET = "s3cr3t-Kq27"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home"), "otel": True}))
    yield r
    r.close()


def _flow(rec: Recorder) -> str:
    """A run whose second step fails with a secret in its message; returns the run id."""
    with pytest.raises(KeyError) as excinfo:
        with rec.run(flow_id="exported") as run:
            with run.step("extract"):
                pass
            with run.step("load"):
                raise KeyError(f"password={SECRET}")
    assert excinfo.value.args == (f"password={SECRET}",)  # the task's own exception, untouched
    return run.run_id


def test_spans_arrive_at_an_otlp_http_receiver(rec: Recorder, receiver: Receiver) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, timeout=10)
    with spans_to(BatchSpanProcessor(exporter, schedule_delay_millis=50)) as processor:
        run_id = _flow(rec)
        assert processor.force_flush(20_000)
    by_name = {s.name: s for s in receiver.spans}
    assert set(by_name) == {"run exported", "extract", "load"}
    root, load = by_name["run exported"], by_name["load"]
    assert root.parent_span_id == b""
    assert by_name["extract"].parent_span_id == root.span_id == load.parent_span_id
    assert load.trace_id == root.trace_id
    assert attributes(load) == {
        "rundossier.run_id": run_id,
        "rundossier.flow_id": "exported",
        "rundossier.orchestrator": "python",
        "rundossier.step_id": "load",
        "rundossier.try_number": 1,
        "rundossier.status": "failed",
        "rundossier.trace_uri": attributes(root)["rundossier.trace_uri"],
    }
    assert load.status.code == ProtoStatus.STATUS_CODE_ERROR
    (event,) = load.events
    assert event.name == "exception"
    exc = attributes(event)  # type: ignore[arg-type]
    assert exc["exception.type"] == "KeyError"
    assert "Traceback (most recent call last)" in str(exc["exception.stacktrace"])
    assert SECRET not in str(exc) and SECRET not in load.status.message
    assert rec.store.get_run(run_id).trace_id == root.trace_id.hex()


def test_an_exporter_that_cannot_connect_changes_nothing_for_the_task(rec: Recorder) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1)
    with spans_to(BatchSpanProcessor(exporter, schedule_delay_millis=1, export_timeout_millis=1000)):
        run_id = _flow(rec)
        run = rec.store.get_run(run_id)
        assert (run.status, run.root_step_id, run.error_type) == ("failed", "load", "KeyError")
        assert [s.status for s in rec.store.list_steps(run_id)] == ["success", "failed"]


def test_a_collector_that_hangs_holds_up_no_task(rec: Recorder, receiver: Receiver) -> None:
    """Every export waits until the flow is over: had anything in the task waited for one, the
    flow would never end (the test's timeout)."""
    receiver.answering.clear()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, timeout=30)
    with spans_to(BatchSpanProcessor(exporter, schedule_delay_millis=1)) as processor:
        _flow(rec)
        _flow(rec)
        assert receiver.arrived.wait(20), "the batch processor sent nothing"
        assert receiver.spans == []  # still hanging: the flows ran regardless
        receiver.answering.set()
        assert processor.force_flush(20_000)
    assert sorted(s.name for s in receiver.spans).count("run exported") == 2
