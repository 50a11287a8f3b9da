"""RUNDOSSIER_OTEL=on with plain Python: the span tree, attributes, events, masking and the traceparent join,
read back from the SDK's in-memory exporter."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from rundossier import Recorder
from rundossier.errors import ConfigError
from rundossier.record import otel
from rundossier.settings import Settings
from tests.otelspans import in_memory

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SECRET = "hunter2-Zq81x"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    with in_memory() as exp:
        yield exp


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home"), "otel": True}))
    yield r
    r.close()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def _fail(dsn: str) -> None:
    raise ConnectionError(f"timeout connecting to {dsn}")


def test_a_run_is_a_span_with_a_child_span_per_step_try(rec: Recorder, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ConnectionError):
        with rec.run(flow_id="nightly_etl") as run:
            with run.step("extract"):
                pass
            with run.step("load", upstream=["extract"]):
                _fail(f"postgresql://etl:{SECRET}@db:5432/dw")
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"run nightly_etl", "extract", "load"}
    root, extract, load = spans["run nightly_etl"], spans["extract"], spans["load"]
    assert root.parent is None
    for child in (extract, load):
        assert child.parent is not None
        assert (child.parent.trace_id, child.parent.span_id) == (root.context.trace_id, root.context.span_id)
    assert dict(root.attributes or {}) == {
        "rundossier.run_id": run.run_id,
        "rundossier.flow_id": "nightly_etl",
        "rundossier.orchestrator": "python",
        "rundossier.attempt": 1,
        "rundossier.status": "failed",
        "rundossier.trace_uri": load.attributes["rundossier.trace_uri"],
    }
    assert dict(extract.attributes or {}) == {
        "rundossier.run_id": run.run_id,
        "rundossier.flow_id": "nightly_etl",
        "rundossier.orchestrator": "python",
        "rundossier.step_id": "extract",
        "rundossier.try_number": 1,
        "rundossier.status": "success",
    }
    assert extract.status.status_code == StatusCode.UNSET and not extract.events
    assert load.status.status_code == StatusCode.ERROR and root.status.status_code == StatusCode.ERROR
    assert load.status.description.startswith("ConnectionError: timeout connecting to")

    # the row knows the trace and the run span's own context
    row = rec.store.get_run(run.run_id)
    assert row.trace_id == f"{root.context.trace_id:032x}"
    flags = int(root.context.trace_flags)
    assert flags & 1  # sampled
    assert row.traceparent == f"00-{root.context.trace_id:032x}-{root.context.span_id:016x}-{flags:02x}"


def test_the_exception_event_is_the_stored_trace_masked_the_same(rec: Recorder, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ConnectionError):
        with rec.run(flow_id="masked") as run:
            with run.step("load"):
                _fail(f"postgresql://etl:{SECRET}@db:5432/dw")
    load = by_name(exporter.get_finished_spans())["load"]
    (event,) = load.events
    assert event.name == "exception"
    attrs = dict(event.attributes or {})
    step = rec.store.list_steps(run.run_id)[0]
    stored = gzip.decompress(rec.blobs.get(step.trace_uri)).decode()
    assert attrs["exception.type"] == "ConnectionError" == step.error_type
    assert attrs["exception.message"] == step.error_message
    assert attrs["exception.stacktrace"] == stored  # the stored text itself, not formatted again
    assert "Traceback (most recent call last)" in stored
    for value in (*attrs.values(), load.status.description, *(load.attributes or {}).values()):
        assert SECRET not in str(value)
    assert "postgresql://etl:" in attrs["exception.message"]  # masked, not dropped


def test_a_run_joins_the_traceparent_of_the_environment(
    rec: Recorder, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEPARENT", PARENT)
    with rec.run(flow_id="joined") as run:
        with run.step("only"):
            pass
    spans = by_name(exporter.get_finished_spans())
    root = spans["run joined"]
    assert root.parent is not None
    assert f"{root.parent.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{root.parent.span_id:016x}" == "b7ad6b7169203331"
    assert spans["only"].context.trace_id == root.context.trace_id
    assert rec.store.get_run(run.run_id).trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_an_explicit_traceparent_beats_the_current_span_which_beats_the_environment(
    rec: Recorder, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEPARENT", PARENT)
    tracer = trace.get_tracer("user-code")
    with tracer.start_as_current_span("user work") as user:
        with rec.run(flow_id="inside") as run:
            pass
        explicit = rec.start_run("explicit", traceparent="00-11111111111111111111111111111111-2222222222222222-01")
        rec.finish_run(explicit, "success")
    spans = by_name(exporter.get_finished_spans())
    assert spans["run inside"].parent.span_id == user.get_span_context().span_id
    assert f"{spans['run explicit'].parent.trace_id:032x}" == "1" * 32
    assert rec.store.get_run(run.run_id).trace_id == f"{user.get_span_context().trace_id:032x}"


def test_spans_the_user_starts_inside_a_step_are_its_children(rec: Recorder, exporter: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("user-code")
    with rec.run(flow_id="nested") as run:
        with run.step("transform"):
            with tracer.start_as_current_span("query warehouse"):
                pass
        with tracer.start_as_current_span("between steps"):
            pass
    spans = by_name(exporter.get_finished_spans())
    assert spans["query warehouse"].parent.span_id == spans["transform"].context.span_id
    assert spans["between steps"].parent.span_id == spans["run nested"].context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left current


def test_spans_carry_the_real_times_also_for_tries_reported_by_another_process(
    rec: Recorder, exporter: InMemorySpanExporter
) -> None:
    t0 = datetime(2026, 12, 1, 3, 0, 0, 123456, tzinfo=UTC)
    run = rec.start_run("timed", "key-1", started_at=t0, lease=False)
    step = rec.start_step(run, "a", started_at=t0 + timedelta(seconds=1))
    step.finish("success", finished_at=t0 + timedelta(seconds=3))
    # a failure reported from outside the task (no live step): its span is made at once, with its times
    rec.record_failure(
        run, "b", "killed by the scheduler", started_at=t0 + timedelta(seconds=4), finished_at=t0 + timedelta(seconds=9)
    )
    rec.finish_run(run, "failed", finished_at=t0 + timedelta(seconds=10))
    spans = by_name(exporter.get_finished_spans())
    ns0 = otel.ns(t0)
    assert ns0 % 1000 == 0 and ns0 // 1000 % 1_000_000 == 123456
    assert (spans["run timed"].start_time, spans["run timed"].end_time) == (ns0, ns0 + 10 * 10**9)
    assert (spans["a"].start_time, spans["a"].end_time) == (ns0 + 10**9, ns0 + 3 * 10**9)
    assert (spans["b"].start_time, spans["b"].end_time) == (ns0 + 4 * 10**9, ns0 + 9 * 10**9)
    assert spans["b"].parent.span_id == spans["run timed"].context.span_id
    assert spans["b"].status.status_code == StatusCode.ERROR
    assert dict(spans["b"].events[0].attributes)["exception.message"] == "killed by the scheduler"
    # the run failed of b: its span says so too
    assert spans["run timed"].status.status_code == StatusCode.ERROR


def test_a_step_recorded_by_another_process_joins_the_run_span_on_the_row(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    """An Airflow task: its own process, its own recorder; the run's span context comes from the row."""
    settings = Settings.resolve(explicit={"home": str(tmp_path / "home"), "otel": True})
    scheduler, worker = Recorder(settings), Recorder(settings)
    try:
        run = scheduler.start_run("dag", "manual__1", lease=False)
        in_task = worker.start_run("dag", "manual__1", lease=False)
        assert in_task.run_id == run.run_id
        worker.start_step(in_task, "task_a").finish("success")
        # the scheduler records the run's end again as a fresh start (Airflow's dag run hooks): one span
        again = scheduler.start_run("dag", "manual__1", status="success", lease=False)
        scheduler.finish_run(again, "success")
    finally:
        scheduler.close()
        worker.close()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["run dag", "task_a"]
    root, step = by_name(spans)["run dag"], by_name(spans)["task_a"]
    assert step.parent.span_id == root.context.span_id and step.context.trace_id == root.context.trace_id


def test_a_second_process_starting_the_same_run_keeps_the_first_ones_span(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    settings = Settings.resolve(explicit={"home": str(tmp_path / "home"), "otel": True})
    first, second = Recorder(settings), Recorder(settings)
    try:
        a = first.start_run("flow", "k", lease=False)
        b = second.start_run("flow", "k", lease=False)
        assert (b.span_context.trace_id, b.span_context.span_id) == (a.span_context.trace_id, a.span_context.span_id)
        second.start_step(b, "s").finish("success")
        second.finish_run(b, "success")  # holds no live span of the run: ends none
        assert [s.name for s in exporter.get_finished_spans()] == ["s"]
        first.finish_run(a, "success")
    finally:
        first.close()
        second.close()
    assert [s.name for s in exporter.get_finished_spans()] == ["s", "run flow"]


def test_off_by_default_emits_nothing(tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    rec = Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home")}))
    with rec.run(flow_id="quiet") as run:
        with run.step("s"):
            pass
    assert rec.spans is None and exporter.get_finished_spans() == ()
    assert rec.store.get_run(run.run_id).trace_id is None


def test_a_huge_trace_is_cut_in_the_span_with_a_marker_naming_the_stored_one() -> None:
    text = "".join(f"line {i}\n" for i in range(100_000))
    failure = otel.span_failure("E", "m", text, "file:///blobs/t.txt.gz")
    assert failure.trace_text is not None and len(failure.trace_text) < otel.STACKTRACE_MAX_CHARS + 200
    assert failure.trace_text.startswith("line 0\n") and failure.trace_text.endswith("line 99999\n")
    assert "characters omitted (the whole trace: file:///blobs/t.txt.gz)" in failure.trace_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (PARENT, ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")),
        ("  " + PARENT + " ", ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),  # an all-zero trace id
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_traceparent(value: str | None, expected: tuple[str, str] | None) -> None:
    sc = otel.parse_traceparent(value)
    assert (None if sc is None else (f"{sc.trace_id:032x}", f"{sc.span_id:016x}")) == expected
    if sc is not None:
        assert otel.traceparent_of(sc) == PARENT


def test_otel_on_without_the_extra_is_a_clear_error_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "opentelemetry" else real(name))
    with pytest.raises(ConfigError, match=r"pip install 'rundossier\[otel\]'"):
        Settings.resolve(environ={"RUNDOSSIER_OTEL": "on"})
    assert Settings.resolve(environ={"RUNDOSSIER_OTEL": "off"}).otel is False


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 12, 1, 3, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 12, 1, 4, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 12, 1, 3, 0, 0, 123456),  # naive: UTC
    ],
)
def test_ns_is_exact_to_the_microsecond_whatever_the_zone(ts: datetime) -> None:
    assert otel.ns(ts) == 1796094000_123456_000


def test_ns_takes_datetime_subclasses_whose_differences_are_not_timedeltas() -> None:
    class Odd(datetime):
        def __sub__(self, other):  # type: ignore[no-untyped-def, override]
            raise TypeError("not a timedelta")

    assert otel.ns(Odd(2026, 12, 1, 3, 0, 0, 123456, tzinfo=UTC)) == 1796094000_123456_000
