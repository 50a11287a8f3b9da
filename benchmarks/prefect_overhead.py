"""Benchmark: a Prefect flow of 50 tasks with and without rundossier's hooks, alternating, in one run.

    bash scripts/bootstrap-prefect.sh
    .venv-prefect/bin/python benchmarks/prefect_overhead.py [--rounds 15] [--tasks 50] [--task-hooks] [--json] [--quick]

One temporary Prefect server (prefect_test_harness) for both; SQLite and local files for
rundossier in a temporary directory. Each round runs the plain flow and the hooked flow (the order
alternates between rounds, after warm-up rounds that are not counted) and times the flow call, the
way a user's script sees it; after every run both wait `--settle` seconds, so that Prefect's server
has written the last run's events before the next one starts. After each hooked run, rundossier's
background work (reading the task runs back from Prefect's API, recording them as steps) is waited
for outside the timed call and reported on its own line.

Printed: per-flow medians and p90, the ratio hooked/plain (target: at most 1.05), rundossier's own
time on the flow's thread (the hooks and the log router, summed per run: less noisy than the ratio
on a busy machine), and the median background time. `--task-hooks` also decorates the tasks with
`task_hooks()` (each try recorded live).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import Target, add_flags, emit, row  # noqa: E402


class _OwnTime:
    """Wall time spent inside some methods (the hooks, the log router), summed per flow run."""

    def __init__(self) -> None:
        self.total = 0.0
        self._depth = threading.local()

    def reset(self) -> None:
        self.total = 0.0

    def wrap(self, cls: type, names: tuple[str, ...]) -> None:
        for name in names:
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, fn: Any) -> Any:
        own = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(own._depth, "n", 0)
            own._depth.n = depth + 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                own._depth.n = depth
                if depth == 0:
                    own.total += time.perf_counter() - t0

        return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--task-hooks", action="store_true", help="also decorate the tasks with task_hooks()")
    parser.add_argument("--settle", type=float, default=0.5, help="pause after every run (the server catches up)")
    add_flags(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup, args.tasks, args.settle = 1, 1, 5, 0.1
    try:
        import prefect  # noqa: F401
    except ImportError:
        why = (
            f"Prefect is not installed in {sys.executable} "
            "(bash scripts/bootstrap-prefect.sh; run with .venv-prefect/bin/python)"
        )
        print(f"skipped: {why}")
        emit(args, "prefect_overhead", [], why)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="rd-prefect-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ["RUNDOSSIER_HOME"] = str(tmp / "rd")
    # the console shows warnings only; Prefect's run loggers still emit INFO (to its API and to rundossier)
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")

    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    from rundossier.integrations.prefect import capture
    from rundossier.prefect import RunDossier

    own = _OwnTime()
    own.wrap(RunDossier, ("on_running", "on_completion", "on_failure", "on_crashed", "on_cancellation"))
    own.wrap(capture.RunLogRouter, ("emit",))

    dossier = RunDossier(
        storage_url=f"file://{tmp / 'blobs'}",
        db_url=f"sqlite:///{tmp / 'rundossier.db'}",
        ui_base_url="http://127.0.0.1:8700",
    )

    def step(i: int) -> int:
        return i * 2

    plain_task = task(step, name="step")
    hooked_task = task(step, name="step", **dossier.task_hooks()) if args.task_hooks else plain_task
    n = args.tasks

    @flow(name="bench-plain")
    def plain() -> int:
        return sum(plain_task(i) for i in range(n))

    @flow(name="bench-hooked", **dossier.hooks())
    def hooked() -> int:
        return sum(hooked_task(i) for i in range(n))

    times: dict[str, list[float]] = {"plain": [], "hooked": []}
    background: list[float] = []
    own_times: list[float] = []
    with prefect_test_harness():
        for r in range(args.warmup + args.rounds):
            order = (("plain", plain), ("hooked", hooked)) if r % 2 == 0 else (("hooked", hooked), ("plain", plain))
            for name, fl in order:
                own.reset()
                t0 = time.perf_counter()
                fl()
                elapsed = time.perf_counter() - t0
                if name == "hooked" and r >= args.warmup:
                    own_times.append(own.total)
                if name == "hooked":
                    b0 = time.perf_counter()
                    RunDossier.wait(120)
                    if r >= args.warmup:
                        background.append(time.perf_counter() - b0)
                if r >= args.warmup:
                    times[name].append(elapsed)
                time.sleep(args.settle)

    from rundossier import Recorder

    rec = Recorder(dossier.settings())
    runs = rec.store.list_runs(limit=500).items
    steps = sum(len(rec.store.list_steps(r.run_id)) for r in runs)

    def stats(xs: list[float]) -> str:
        xs = sorted(xs)
        p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        return f"median {statistics.median(xs) * 1000:8.1f} ms   p90 {p90 * 1000:8.1f} ms"

    print(f"prefect flow of {n} tasks, {args.rounds} rounds (+{args.warmup} warm-up), alternating")
    print(f"  plain                   {stats(times['plain'])}")
    label = "hooks + task hooks" if args.task_hooks else "hooks()"
    print(f"  {label:<23} {stats(times['hooked'])}")
    ratio = statistics.median(times["hooked"]) / statistics.median(times["plain"])
    print(f"  ratio hooked/plain      {ratio:.3f}   (target <= 1.05)")
    print(
        f"  rundossier's own time in the hooked flow (hooks + log router, on the flow's thread): "
        f"median {statistics.median(own_times) * 1000:.1f} ms = "
        f"{statistics.median(own_times) / statistics.median(times['plain']) * 100:.1f}% of the plain flow"
    )
    print(f"  background after a run median {statistics.median(background) * 1000:8.1f} ms (not in the flow's time)")
    print(f"  recorded: {len(runs)} runs, {steps} steps")
    plain_ms = statistics.median(times["plain"]) * 1000
    emit(
        args,
        "prefect_overhead",
        [
            row(f"{n}-task flow with {label}", statistics.median(times["hooked"]) * 1000, "ms", floor=plain_ms,
                target=Target("<=", 1.05), note="floor: the plain flow"),
            row("rundossier's own time on the flow's thread", statistics.median(own_times) * 1000, "ms",
                floor=plain_ms),
        ],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
