"""Benchmark: `Masker.mask` and `mask_many` on the texts a recorder masks, in microseconds.

    .venv/bin/python benchmarks/masking.py [--repeat 7]

Texts (all made here, fake secrets):
  log line        a 120-character log line with no secret (the most frequent call: one per line)
  log secret      a log line holding `password=...` and a GitHub token
  trace 10 KB     a 30-frame traceback text with no secret
  trace 10 KB x   the same with a handful of secrets planted in it
  clean 1 MB      1 MiB of log-like prose, no secret (throughput: microseconds per KB)
  dense 1 MB      1 MiB where every line holds a secret-named key (every hit reaches Python)
  many 300        `mask_many` of 300 log lines (a trace's log tail and frames in one call)
  tags            `mask_data` of a run's tags dict (8 entries), where the Masker has it
Each figure is the median of `--repeat` rounds, a round timing enough calls to last ~0.2 s.
Compare two versions by running this script on each (same machine, same moment).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from rundossier.masking import Masker

LOG_LINE = "2026-11-22 03:00:01,123 INFO loader: loaded 1234 rows into warehouse.public.orders in 0.42s (batch 17)"
LOG_SECRET = "connecting with password=hunter2-Xy9 and token ghp_abcdefghijklmnopqrstuvwxyz0123456789 to db"


def _trace(secrets: bool) -> str:
    lines = ["Traceback (most recent call last):"]
    for i in range(30):
        lines.append(f'  File "/opt/pipelines/etl/load_{i}.py", line {10 + i}, in load_{i}')
        lines.append(f"    result = load_{i + 1}(rows + [{i}], batch=batch, retries=3)")
        lines.append("             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^")
    if secrets:
        lines[10] = "    conn = connect('postgresql://etl:s3cr3t-pw@db.internal:5432/warehouse')"
        lines[40] = "    headers = {'Authorization': 'Bearer abcdef0123456789abcdef'}"
        lines[70] = "    client = Client(api_key='sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD')"
    lines.append("WarehouseError: db down")
    return "\n".join(lines)


def _prose(n_bytes: int, secret_every: int = 0) -> str:
    words = "the loader read rows from the source table and wrote them to the warehouse in batches".split()
    out, size, i = [], 0, 0
    while size < n_bytes:
        line = " ".join(words[(i + k) % len(words)] for k in range(14))
        if secret_every and i % secret_every == 0:
            line += f" password=pw{i}x"
        out.append(line)
        size += len(line) + 1
        i += 1
    return "\n".join(out)


def bench(fn: Callable[[], object], repeat: int) -> float:
    """Median microseconds per call."""
    n, t = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - start
        if t >= 0.2:
            break
        n *= 2
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    masker = Masker()
    mask = masker.mask
    clean_mb = _prose(1 << 20)
    dense_mb = _prose(1 << 20, secret_every=1)
    lines = [LOG_LINE] * 290 + [LOG_SECRET] * 10
    tags = {"run_type": "manual", "triggered_by": "ui", "owner": "data-eng", "team": "core",
            "prefect_tags": ["nightly", "etl"], "api_key": "k-123", "env": "prod", "region": "eu-west-1"}
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("log line", lambda: mask(LOG_LINE), 0),
        ("log secret", lambda: mask(LOG_SECRET), 0),
        ("trace 10 KB", lambda: mask(_TRACE), len(_TRACE)),
        ("trace 10 KB x", lambda: mask(_TRACE_X), len(_TRACE_X)),
        ("clean 1 MB", lambda: mask(clean_mb), len(clean_mb)),
        ("dense 1 MB", lambda: mask(dense_mb), len(dense_mb)),
        ("many 300", lambda: masker.mask_many(lines), 0),
    ]
    mask_data = getattr(masker, "mask_data", None)
    if mask_data is not None:
        cases.append(("tags", lambda: mask_data(tags), 0))
    print(f"{'text':<16}{'us/call':>12}{'us/KB':>10}")
    for name, fn, size in cases:
        us = bench(fn, args.repeat)
        per_kb = f"{us / (size / 1024):.2f}" if size else "-"
        print(f"{name:<16}{us:>12.1f}{per_kb:>10}")


_TRACE = _trace(False)
_TRACE_X = _trace(True)

if __name__ == "__main__":
    main()
