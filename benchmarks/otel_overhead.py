"""Benchmark: what RUNDOSSIER_OTEL=on adds to recording a step, against the same step with it off.

    .venv/bin/python benchmarks/otel_overhead.py [--n 2000] [--json] [--quick]

Measured per operation (median and p99), in this process, interleaved (one of each per round):
  off        a successful step of a running run: its start and its finish recorded (SQLite, local blobs)
  on         the same with RUNDOSSIER_OTEL=on: a span started and ended too, through the SDK's
             TracerProvider with a batch span processor whose exporter drops the spans (the export
             runs on the processor's thread, as it does in production)
  span       the floor: one bare SDK span started and ended (same provider), nothing else
Printed: the medians, `on - off` (what a step pays for its span) and `(on - off) / span`, the
overhead against the bare span measured in the same run. Target: (on - off) / span <= 3 (a step's
span costs a few bare spans: its attributes, its parent context, its status).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import Target, add_flags, emit, row  # noqa: E402

from rundossier import Recorder  # noqa: E402
from rundossier.settings import Settings  # noqa: E402


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    add_flags(parser)
    args = parser.parse_args()
    n = 100 if args.quick else args.n
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("bench")
    with tempfile.TemporaryDirectory() as tmp:
        recs = {
            name: Recorder(
                Settings.resolve(explicit={"home": str(Path(tmp) / name), "otel": name == "on"}),
                live_log_interval=None,
            )
            for name in ("off", "on")
        }
        runs = {name: rec.start_run("bench", lease=False) for name, rec in recs.items()}
        times: dict[str, list[float]] = {"off": [], "on": [], "span": []}
        for i in range(n + 50):
            for name, rec in recs.items():
                t = _timed(lambda rec=rec, name=name, i=i: rec.start_step(runs[name], f"s{i}").finish("success"))
                if i >= 50:  # warm-up rounds are not counted
                    times[name].append(t)
            t = _timed(lambda: tracer.start_span("bare").end())
            if i >= 50:
                times["span"].append(t)
        for name, rec in recs.items():
            rec.finish_run(runs[name], "success")
            rec.close()
    provider.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    p99 = {k: sorted(v)[int(len(v) * 0.99)] for k, v in times.items()}
    for k in ("off", "on", "span"):
        print(f"{k:5} median {med[k] * 1e6:9.1f} us   p99 {p99[k] * 1e6:9.1f} us")
    extra = med["on"] - med["off"]
    print(f"on - off: {extra * 1e6:.1f} us per step; on/off {med['on'] / med['off']:.3f}")
    print(f"(on - off) / bare span: {extra / med['span']:.2f} (target <= 3)")
    us = 1e6
    emit(
        args,
        "otel_overhead",
        [
            row("step's span: on - off, median", extra * us, "us", floor=med["span"] * us, target=Target("<=", 3.0),
                note="floor: one bare SDK span"),
            row("successful step with OTEL on, median", med["on"] * us, "us", floor=med["off"] * us, note="floor: off"),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
