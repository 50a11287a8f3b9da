"""Run every benchmark in benchmarks/ and print one table: figure, floor, ratio, target, met, machine.

    nice .venv/bin/python benchmarks/run_all.py [--quick | --full] [--only writers,readers] [--out DIR]

Profiles:
  (default)  sizes that finish in well under an hour on a shared 2-core machine (SIZES below)
  --quick    every script with --quick: a smoke run of a few seconds each (what CI runs)
  --full     every script with its own defaults (1,000,000 runs, 100,000 swept runs: hours)
Each script runs in its own process with `--json`, one after the other (so they do not measure each
other); its output goes to DIR/<name>.log and its JSON to DIR/<name>.json; the table (Markdown, for
benchmarks/README.md) is printed at the end and written to DIR/table.md.
The Airflow and Prefect benchmarks run with their own venvs (.venv-airflow, .venv-prefect, made by
scripts/bootstrap-airflow.sh and bootstrap-prefect.sh); without them their rows say "skipped" and why.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from benchtable import machine, parse, table  # noqa: E402

#: every benchmark script: the venv it needs ("" = this interpreter) and its arguments in the default profile
SCRIPTS: dict[str, tuple[str, list[str]]] = {
    "writers": ("", []),
    "readers": ("", ["--seconds", "45"]),
    "retention_sweep": ("", ["--runs", "10000", "--writers", "8"]),
    "record_failure": ("", ["--n", "500"]),
    "api_runs": ("", ["--db", "postgres", "--repeat", "20"]),
    "dossier": ("", ["--runs", "200000", "--db", "postgres"]),
    "masking": ("", ["--repeat", "3"]),
    "artifacts": ("", ["--n", "20000", "--repeat", "1"]),
    "otel_overhead": ("", ["--n", "1000"]),
    "ui_render": ("", ["--lines", "200000", "--repeat", "3"]),
    "airflow_overhead": (".venv-airflow", ["--rounds", "3"]),
    "prefect_overhead": (".venv-prefect", ["--rounds", "5"]),
}
TIMEOUT_S = 3 * 3600


def interpreter(venv: str) -> tuple[str | None, str | None]:
    """The Python to run a script with, or None and why not."""
    if not venv:
        return sys.executable, None
    python = ROOT / venv / "bin" / "python"
    if python.exists():
        return str(python), None
    script = "bootstrap-airflow.sh" if "airflow" in venv else "bootstrap-prefect.sh"
    return None, f"{venv} is missing (bash scripts/{script})"


def command(name: str, profile: str) -> tuple[list[str] | None, str | None]:
    venv, sized = SCRIPTS[name]
    python, why = interpreter(venv)
    if python is None:
        return None, why
    extra = ["--quick"] if profile == "quick" else [] if profile == "full" else sized
    return [python, str(HERE / f"{name}.py"), "--json", *extra], None


def env_for(name: str) -> dict[str, str]:
    env = dict(os.environ)
    if name == "ui_render":  # as its docstring runs it: the worktree's sources first
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def run_one(name: str, profile: str, out: Path) -> dict[str, Any]:
    cmd, why = command(name, profile)
    if cmd is None:
        return {"benchmark": name, "machine": machine(), "skipped": why, "rows": []}
    t0 = time.perf_counter()
    lines = []
    with open(out / f"{name}.log", "w") as log:  # the output as it comes: `tail -f` shows the progress
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env_for(name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            log.write(line)
            log.flush()
        proc.wait(TIMEOUT_S)
    took = time.perf_counter() - t0
    try:
        doc = parse("".join(lines))
    except ValueError:
        tail = (out / f"{name}.log").read_text().strip().splitlines()[-1:] or [""]
        doc = {
            "benchmark": name,
            "machine": machine(),
            "skipped": f"failed (exit {proc.returncode}): {tail[0][:200]}",
            "rows": [],
        }
    doc["seconds"] = round(took, 1)
    doc["exit"] = proc.returncode
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2))
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every script with --quick (seconds each)")
    size.add_argument("--full", action="store_true", help="every script with its own defaults (hours)")
    ap.add_argument("--only", help=f"comma-separated, from: {', '.join(SCRIPTS)}")
    ap.add_argument("--out", help="folder for the logs, JSON and table (default: a new temporary one)")
    args = ap.parse_args()
    profile = "quick" if args.quick else "full" if args.full else "default"
    names = list(SCRIPTS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rd-bench-all-"))
    out.mkdir(parents=True, exist_ok=True)
    m = machine()
    print(f"{len(names)} benchmarks, profile {profile}, on {m['nproc']} cpus ({m['cpu']}), load {m['load']}")
    print(f"logs and JSON in {out}", flush=True)
    docs = []
    for name in names:
        print(f"- {name} ...", end=" ", flush=True)
        doc = run_one(name, profile, out)
        docs.append(doc)
        state = f"skipped: {doc['skipped']}" if doc.get("skipped") else f"{len(doc['rows'])} figures"
        print(f"{doc.get('seconds', 0):.0f}s, {state}", flush=True)
    text = table(docs)
    (out / "table.md").write_text(text + "\n")
    print()
    print(text)
    missed = sum(1 for d in docs for r in d["rows"] if r.get("met") is False)
    print(f"\n{missed} target(s) not met; machine: {m['nproc']} cpus, {m['cpu']}, python {m['python']}, {m['utc']} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
