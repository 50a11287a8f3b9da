"""Benchmark: `Masker.mask` and `mask_many` on the texts a recorder masks, in microseconds.

    .venv/bin/python benchmarks/masking.py [--repeat 7] [--baseline OLD_MASKING_PY] [--json] [--quick]

`--baseline` loads another version's masking module from a file (for instance the single-file
`masking.py` of an older commit: `git show REV:src/rundossier/masking.py > /tmp/old.py`) and
times its `Masker()` on the same texts, round for round beside this one, so machine noise
weighs on both alike.

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
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import add_flags, emit, row  # noqa: E402

from rundossier.core.masking import Masker  # noqa: E402

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


def _calls(fn: Callable[[], object]) -> int:
    """How many calls of `fn` last about 0.2 s."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= 0.2:
            return n
        n *= 2


def bench(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median microseconds per call of each of `fns`, their rounds interleaved."""
    ns = [_calls(fn) for fn in fns]
    rounds: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, n, out in zip(fns, ns, rounds, strict=True):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - start) / n)
    return [statistics.median(r) * 1e6 for r in rounds]


def _load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("baseline_masking", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # a single-file masking.py imports `.errors`: give it rundossier's package as its parent
    module.__package__ = "rundossier"
    sys.modules["baseline_masking"] = module
    spec.loader.exec_module(module)
    return module


def _cases(masker: Any) -> list[tuple[str, Callable[[], object], int]]:
    mask = masker.mask
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("log line", lambda: mask(LOG_LINE), 0),
        ("log secret", lambda: mask(LOG_SECRET), 0),
        ("trace 10 KB", lambda: mask(_TRACE), len(_TRACE)),
        ("trace 10 KB x", lambda: mask(_TRACE_X), len(_TRACE_X)),
        ("clean 1 MB", lambda: mask(_CLEAN_MB), len(_CLEAN_MB)),
        ("dense 1 MB", lambda: mask(_DENSE_MB), len(_DENSE_MB)),
        ("many 300", lambda: masker.mask_many(_LINES), 0),
    ]
    mask_data = getattr(masker, "mask_data", None)
    if mask_data is not None:
        cases.append(("tags", lambda: mask_data(_TAGS), 0))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", help="path of another version's masking module to compare with")
    add_flags(parser)
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    rows = []
    mine = _cases(Masker())
    theirs = {name: (fn, size) for name, fn, size in _cases(_load(args.baseline).Masker())} if args.baseline else {}
    head = f"{'text':<16}{'us/call':>12}{'us/KB':>10}"
    print(head + (f"{'baseline':>12}{'us/KB':>10}{'ratio':>8}" if theirs else ""))
    for name, fn, size in mine:
        fns = [fn] + ([theirs[name][0]] if name in theirs else [])
        times = bench(fns, args.repeat)
        line = f"{name:<16}{times[0]:>12.1f}" + (f"{times[0] / (size / 1024):>10.2f}" if size else f"{'-':>10}")
        if len(times) > 1:
            line += f"{times[1]:>12.1f}" + (f"{times[1] / (size / 1024):>10.2f}" if size else f"{'-':>10}")
            line += f"{times[0] / times[1]:>8.2f}"
        print(line)
        base = times[1] if len(times) > 1 else None
        if size:
            kb = size / 1024
            rows.append(row(f"mask {name}", times[0] / kb, "us/KB", floor=base / kb if base else None))
        else:
            rows.append(row(f"mask {name}", times[0], "us", floor=base))
    emit(args, "masking", rows)


_TRACE = _trace(False)
_TRACE_X = _trace(True)
_CLEAN_MB = _prose(1 << 20)
_DENSE_MB = _prose(1 << 20, secret_every=1)
_LINES = [LOG_LINE] * 290 + [LOG_SECRET] * 10
_TAGS = {
    "run_type": "manual",
    "triggered_by": "ui",
    "owner": "data-eng",
    "team": "core",
    "prefect_tags": ["nightly", "etl"],
    "api_key": "k-123",
    "env": "prod",
    "region": "eu-west-1",
}

if __name__ == "__main__":
    main()
