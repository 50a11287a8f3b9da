"""What the rundossier Airflow plugin costs a DAG run: `airflow dags test` of a 20-task DAG, with and without.

    bash scripts/bootstrap-airflow.sh
    .venv-airflow/bin/python benchmarks/airflow_overhead.py [--rounds 5] [--json] [--quick]

One throwaway AIRFLOW_HOME (SQLite metadata DB, embedded rundossier defaults under it). Each round
runs the DAG twice, once with the plugin recording and once without, alternating which goes
first; it prints every wall time, the medians and the ratio (target: at most 1.05), and the same
for the CPU time of the `airflow` process (user + system), which other load on the machine
disturbs less than wall time.

"Without" is `AIRFLOW__RUNDOSSIER__ENABLED=False`: the package's entry point still loads the
plugin module (measured separately below, in an Airflow process that already imported Airflow),
but it registers no listener, no app and no views, which is what an installed, disabled plugin costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchtable
from benchtable import Target, add_flags, emit, row  # noqa: E402

AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "rd_bench_twenty"
DAG = textwrap.dedent(
    '''
    """20 small tasks in 4 layers of 5, each logs a few lines and returns."""
    import logging
    from datetime import datetime

    from airflow.sdk import dag, task

    log = logging.getLogger("bench")


    @dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
    def rd_bench_twenty():
        @task
        def work(layer: int, index: int) -> int:
            for i in range(5):
                log.info("layer %d task %d: step %d", layer, index, i)
            print(f"layer {layer} task {index} done")
            return layer * 10 + index

        previous = None
        for layer in range(4):
            current = [work.override(task_id=f"l{layer}_t{i}")(layer, i) for i in range(5)]
            if previous:
                for up in previous:
                    up >> current
            previous = current


    rd_bench_twenty()
    '''
)


def env_for(home: Path, enabled: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RUNDOSSIER_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__RUNDOSSIER__ENABLED=str(enabled),
    )
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(home: Path, enabled: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one `airflow dags test`."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", DAG_ID],
        env=env_for(home, enabled),
        cwd=home,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if proc.returncode != 0 or "state=success" not in proc.stdout + proc.stderr:
        raise SystemExit(f"airflow dags test failed (plugin {'on' if enabled else 'off'}):\n{proc.stdout[-3000:]}")
    return elapsed, cpu


def plugin_import_seconds(home: Path) -> float:
    code = (
        "import time, airflow.models, airflow.sdk.execution_time.task_runner;"
        "t = time.perf_counter(); import rundossier.integrations.airflow.plugin;"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env_for(home, True), capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs with and without the plugin (default 5 each)")
    add_flags(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    if not AIRFLOW.exists():
        why = (
            f"no Airflow beside {sys.executable} (bash scripts/bootstrap-airflow.sh; run with .venv-airflow/bin/python)"
        )
        print(f"skipped: {why}")
        emit(args, "airflow_overhead", [], why)
        return
    home = Path(tempfile.mkdtemp(prefix="rd-airflow-bench-"))
    try:
        (home / "dags").mkdir()
        (home / "dags" / f"{DAG_ID}.py").write_text(DAG)
        subprocess.run(
            [str(AIRFLOW), "db", "migrate"], env=env_for(home, True), capture_output=True, check=True, cwd=home
        )
        run(home, True)  # warm-up: DAG serialized, rundossier database created and migrated
        if not args.quick:
            run(home, False)
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            for enabled in order:
                w, c = run(home, enabled)
                wall[enabled].append(w)
                cpu[enabled].append(c)
                state = "on " if enabled else "off"
                print(f"round {r + 1}: plugin {state}  wall {w:7.2f} s  cpu {c:7.2f} s", flush=True)
        print(f"\n20-task DAG, `airflow dags test`, {args.rounds} runs each (medians)")
        print("                      wall       cpu")
        for label, enabled in (("without the plugin", False), ("with the plugin", True)):
            print(f"  {label:<18}  {statistics.median(wall[enabled]):7.2f} s  {statistics.median(cpu[enabled]):7.2f} s")
        wall_ratio = statistics.median(wall[True]) / statistics.median(wall[False])
        cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
        print(f"  ratio               {wall_ratio:7.3f}    {cpu_ratio:7.3f}    (target <= 1.05)")
        imported = plugin_import_seconds(home) * 1000
        print(f"  plugin module import in an Airflow process: {imported:.0f} ms")
        on, off = statistics.median(wall[True]), statistics.median(wall[False])
        c_on, c_off = statistics.median(cpu[True]), statistics.median(cpu[False])
        emit(
            args,
            "airflow_overhead",
            [
                row("20-task DAG with the plugin, wall", on, "s", floor=off, target=Target("<=", 1.05),
                    note="floor: plugin disabled"),
                row("20-task DAG with the plugin, cpu", c_on, "s", floor=c_off, target=Target("<=", 1.05)),
                row("plugin module import", imported, "ms"),
            ],
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
