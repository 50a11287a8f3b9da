"""Benchmark: recording and reading a big artifact manifest (SQLite in a temporary folder).

    .venv/bin/python benchmarks/artifacts.py [--n 100000] [--repeat 3] [--json] [--quick]

Figures (each the median of `--repeat` rounds):
  record          `StepHandle.artifact` with size and checksum given (no lookup), per artifact,
                  against a floor measured in the same run: the same rows written straight to the
                  store in batches of 500 (`RunStore.write`), with no recorder in between
  peak memory     tracemalloc's peak while one step records n/10 and n artifacts: bounded means
                  the two are about the same
  sha256 lookup   an artifact whose checksum is looked up (a 1 MiB local file, streamed sha256),
                  against hashlib reading the same file
  read page       one page of 500 inputs with their producers (`read.artifacts.run_artifacts`),
                  each input's URI written by a step of another run
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import add_flags, emit, row  # noqa: E402

from rundossier import Recorder  # noqa: E402
from rundossier.read.artifacts import run_artifacts  # noqa: E402
from rundossier.settings import Settings  # noqa: E402
from rundossier.storage.db import WriteBatch  # noqa: E402


def _median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def _recorder(base: Path, name: str) -> Recorder:
    return Recorder(Settings.resolve(explicit={"home": str(base / name)}), live_log_interval=None)


def record(base: Path, n: int, tag: str) -> float:
    rec = _recorder(base, f"rec-{tag}")
    with rec.run("bench") as run, run.step("fan_out", capture_logs=False) as step:
        start = time.perf_counter()
        for i in range(n):
            step.artifact(f"s3://lake/part-{i:07d}.parquet", size=i, checksum=f"etag:{i}")
    seconds = time.perf_counter() - start
    rec.close()
    return seconds / n * 1e6


def floor(base: Path, n: int, tag: str) -> float:
    rec = _recorder(base, f"floor-{tag}")
    with rec.run("bench") as run:
        pass
    store = rec.store
    start = time.perf_counter()
    for first in range(0, n, 500):
        batch = WriteBatch()
        for i in range(first, min(n, first + 500)):
            batch.artifact(
                {
                    "run_id": run.run_id,
                    "step_id": "fan_out",
                    "try_number": 1,
                    "role": "output",
                    "uri": f"s3://lake/part-{i:07d}.parquet",
                    "size": i,
                    "checksum": f"etag:{i}",
                }
            )
        store.write(batch)
    seconds = time.perf_counter() - start
    rec.close()
    return seconds / n * 1e6


def peak(base: Path, n: int, tag: str) -> float:
    rec = _recorder(base, f"peak-{tag}")
    with rec.run("bench") as run, run.step("fan_out", capture_logs=False) as step:
        tracemalloc.start()
        for i in range(n):
            step.artifact(f"s3://lake/part-{i:07d}.parquet", size=i, checksum=f"etag:{i}")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rec.close()
    return top / 2**20


def lookups(base: Path, k: int) -> tuple[float, float]:
    data = base / "file.bin"
    data.write_bytes(b"x" * 2**20)
    rec = _recorder(base, "lookup")
    with rec.run("bench") as run, run.step("s", capture_logs=False) as step:
        start = time.perf_counter()
        for _ in range(k):
            step.artifact(str(data), role="input")
        mine = (time.perf_counter() - start) / k * 1e6
    start = time.perf_counter()
    for _ in range(k):
        with data.open("rb") as f:
            digest = hashlib.sha256()
            while block := f.read(2**20):
                digest.update(block)
    bare = (time.perf_counter() - start) / k * 1e6
    rec.close()
    return mine, bare


def read_page(base: Path) -> float:
    rec = _recorder(base, "read")
    with rec.run("producer") as first, first.step("write", capture_logs=False) as step:
        for i in range(500):
            step.artifact(f"s3://lake/in-{i}", size=1, checksum="etag:x")
    with rec.run("consumer") as second, second.step("read", capture_logs=False) as step:
        for i in range(500):
            step.artifact(f"s3://lake/in-{i}", role="input", size=1, checksum="etag:x")
    run = rec.store.get_run(second.run_id)
    page = run_artifacts(rec.store, run, limit=500)
    assert sum(a.producer is not None for a in page.items) == 500
    start = time.perf_counter()
    for _ in range(5):
        run_artifacts(rec.store, run, limit=500)
    rec.close()
    return (time.perf_counter() - start) / 5 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_flags(parser)
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat = 2000, 1
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rounds = iter(range(10**6))
        mine = _median(lambda: record(base, args.n, str(next(rounds))), args.repeat)
        bare = _median(lambda: floor(base, args.n, str(next(rounds))), args.repeat)
        print(
            f"record {args.n:,} artifacts in one step: {mine:.1f} us each; floor (rows straight to the store) "
            f"{bare:.1f} us; ratio {mine / bare:.2f}"
        )
        small = peak(base, args.n // 10, "small")
        big = peak(base, args.n, "big")
        print(f"peak traced memory while recording: {small:.1f} MiB for {args.n // 10:,}, {big:.1f} MiB for {args.n:,}")
        looked, hashed = lookups(base, 5 if args.quick else 50)
        print(
            f"artifact of a 1 MiB local file (info + streamed sha256): {looked:.0f} us; hashlib alone {hashed:.0f} us; "
            f"ratio {looked / hashed:.2f}"
        )
        page = read_page(base)
        print(f"read one page of 500 inputs with their producers: {page:.1f} ms")
    emit(
        args,
        "artifacts",
        [
            row(
                f"record an artifact ({args.n:,} in a step)",
                mine,
                "us",
                floor=bare,
                note="floor: rows straight to the store",
            ),
            row("peak memory, n vs n/10 artifacts", big, "MiB", floor=small),
            row("artifact of a 1 MiB file with sha256", looked, "us", floor=hashed, note="floor: hashlib alone"),
            row("read a page of 500 inputs", page, "ms"),
        ],
    )


if __name__ == "__main__":
    main()
